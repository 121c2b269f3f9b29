"""``python -m tray.dashboard``: the dashboard's server process."""

import sys

from ._server import main

sys.exit(main())
