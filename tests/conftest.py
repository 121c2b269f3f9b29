"""Every test of the suite runs under tray's leak checker (tray.testing.leaks)."""

pytest_plugins = ["tray.testing.leaks"]
