"""``python -m tray``: the same CLI as the ``tray`` console script."""

import sys

from tray._cli import main

if __name__ == "__main__":
    sys.exit(main())
