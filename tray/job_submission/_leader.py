"""A job's process-group leader: ``python _leader.py PARENT_PID COMMAND``.

Run by path (it imports nothing of tray), in a new session, by the job's supervisor. It
runs COMMAND through the shell as its child, in its own process group, and exits with
its status. It dies with its parent (PR_SET_PDEATHSIG), and when it gets SIGTERM — from
``stop_job`` or its parent's death — it sends SIGTERM to the whole group, then SIGKILL
after a grace period, so no process of the job outlives it.
"""

import ctypes
import os
import signal
import subprocess
import sys
import time

GRACE_S = 3.0


def main() -> int:
    parent, command = int(sys.argv[1]), sys.argv[2]
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the supervisor's stop still reaches the group
        pass
    if os.getppid() != parent:  # the parent died before the death signal was armed
        return 1
    child = subprocess.Popen(command, shell=True)

    def terminate(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        os.killpg(0, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_S
        while time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
        os.killpg(0, signal.SIGKILL)

    signal.signal(signal.SIGTERM, terminate)
    code = child.wait()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
