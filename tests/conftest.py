"""Every test of the suite runs under tray's leak checker (tray.testing.leaks).

Tests interrupt the command line tools they start (Ctrl-C to ``tray debug``, SIGINT to
``tray logs --follow``) and expect them to stop. A run started as a shell's background job
(``bash .ci/run &``) inherits SIGINT ignored, and so would every process it starts: a
tool that ignores Ctrl-C never stops. So the run takes Python's default handling back,
which the processes it starts then have too.
"""

import signal

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

pytest_plugins = ["tray.testing.leaks"]
