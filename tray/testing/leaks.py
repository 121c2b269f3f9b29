"""A pytest plugin: no test may leave tray's processes or files behind.

Enable it with ``pytest -p tray.testing.leaks`` or ``pytest_plugins = ["tray.testing.leaks"]``
in a ``conftest.py`` (tray's own suite does); it needs ``psutil``.

After each test, an autouse fixture looks for what the test started and left:

- processes: descendants of this pytest process that did not exist before the test,
  and processes named ``tray::...`` that carry this session's token in their
  environment (so daemonized ones are found too);
- files: entries of ``/dev/shm`` whose name contains ``tray``, and unix sockets named
  ``tray*`` in the temp dir (or inside a ``tray*`` directory there) that appeared during
  the test.

Results of runs that name no ``storage_path`` (a Tuner's, an Algorithm built by hand) would
go to ``~/tray_results``: unless ``TRAY_RESULTS_DIR`` is set already, the session points it
(for every process it starts) at a ``test_results_*`` directory in the temp dir, removed
when the session ends.

Leaks get a short grace (up to ``GRACE_S``) to go away on their own; what is still there
is killed or removed, so one leak does not cascade into later tests, and the test fails
(at teardown) naming what leaked. ``pytest_sessionfinish`` repeats the sweep for the
whole session and turns the exit status into a failure if anything was left.

Files that a process *outside* this pytest process tree holds open are left alone: they
belong to another test session running on the same machine. The common path (nothing
leaked) costs a few milliseconds: two passes over ``/proc`` and a few ``listdir`` calls.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import psutil
import pytest

GRACE_S = 2.0
POLL_S = 0.02
PROC_PREFIX = "tray::"
TOKEN_VAR = "TRAY_TEST_SESSION_TOKEN"
SHM_DIR = Path("/dev/shm")
TMP_DIR = Path(tempfile.gettempdir())
PROC = Path("/proc")
HAVE_PROC = (PROC / "self" / "stat").exists()


# --------------------------------------------------------------------------- processes


class ProcInfo(NamedTuple):
    pid: int
    ppid: int
    start: float  # start time: with pid, identifies a process despite pid reuse
    alive: bool  # running and not a zombie


def _scan_procs() -> dict[int, ProcInfo]:
    """Every process on the machine, cheaply (one read of /proc/PID/stat each on Linux)."""
    out: dict[int, ProcInfo] = {}
    if HAVE_PROC:
        for name in os.listdir(PROC):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    data = f.read()
            except OSError:
                continue
            fields = data[data.rfind(b")") + 2 :].split()
            # fields[0] is field 3 of stat(5): state; ppid is field 4, starttime field 22.
            pid = int(name)
            out[pid] = ProcInfo(pid, int(fields[1]), float(fields[19]), fields[0] not in (b"Z", b"X"))
    else:
        for p in psutil.process_iter(["ppid", "create_time", "status"]):
            i = p.info
            alive = i["status"] not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
            out[p.pid] = ProcInfo(p.pid, i["ppid"] or 0, i["create_time"] or 0.0, alive)
    return out


def _descendants(procs: dict[int, ProcInfo], root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for p in procs.values():
        children.setdefault(p.ppid, []).append(p.pid)
    found: set[int] = set()
    stack = [root]
    while stack:
        for c in children.get(stack.pop(), ()):
            if c not in found:
                found.add(c)
                stack.append(c)
    return found


def _describe(pid: int) -> str:
    try:
        p = psutil.Process(pid)
        cmd = " ".join(p.cmdline()) or p.name()
    except psutil.Error:
        cmd = "?"
    return f"process {pid} ({cmd[:200]})"


def _is_tray_proc_of_ours(pid: int, token: str) -> bool:
    """A ``tray::`` process started by this session (it inherited our token)."""
    try:
        p = psutil.Process(pid)
        cmdline = p.cmdline()
        named = p.name().startswith(PROC_PREFIX) or bool(cmdline and cmdline[0].startswith(PROC_PREFIX))
        return named and p.environ().get(TOKEN_VAR) == token
    except psutil.Error:
        return False


def _leaked_procs(before: dict[int, ProcInfo], token: str) -> set[int]:
    """Live processes, absent from ``before``, that this session started and left."""
    procs = _scan_procs()
    me = os.getpid()
    new = {
        pid
        for pid, p in procs.items()
        if p.alive and pid != me and (pid not in before or before[pid].start != p.start)
    }
    ours = _descendants(procs, me)
    return {pid for pid in new if pid in ours or _is_tray_proc_of_ours(pid, token)}


def _kill(pids: Iterable[int]) -> None:
    procs = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            p.send_signal(signal.SIGKILL)
            procs.append(p)
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=GRACE_S)


# --------------------------------------------------------------------------- files


def _tray_files() -> set[Path]:
    """tray's shared-memory files and socket files that exist now."""
    found: set[Path] = set()
    try:
        found.update(SHM_DIR / n for n in os.listdir(SHM_DIR) if "tray" in n)
    except OSError:
        pass
    try:
        top = [TMP_DIR / n for n in os.listdir(TMP_DIR) if n.startswith("tray")]
    except OSError:
        top = []
    for path in top:
        try:
            mode = path.lstat().st_mode
        except OSError:
            continue
        if stat.S_ISSOCK(mode):
            found.add(path)
        elif stat.S_ISDIR(mode):
            found.update(_sockets_under(path))
    return found


def _sockets_under(root: Path) -> Iterator[Path]:
    for dirpath, _dirs, files in os.walk(root):
        for n in files:
            p = Path(dirpath, n)
            try:
                if stat.S_ISSOCK(p.lstat().st_mode):
                    yield p
            except OSError:
                pass


def _held_by_others(paths: set[Path], ours: set[int]) -> set[Path]:
    """The ``paths`` that a live process outside ``ours`` has open, mapped or bound.

    Slow (reads every process's fds and maps) but only runs when something looks leaked.
    Without /proc, claims nothing.
    """
    if not paths or not HAVE_PROC:
        return set()
    by_name = {str(p): p for p in paths}
    socket_inodes: dict[str, Path] = {}
    try:
        with open("/proc/net/unix") as f:
            next(f)
            for line in f:
                parts = line.split()
                if len(parts) >= 8 and parts[7] in by_name:
                    socket_inodes[f"socket:[{parts[6]}]"] = by_name[parts[7]]
    except OSError:
        pass
    held: set[Path] = set()
    for name in os.listdir(PROC):
        if not name.isdigit() or int(name) in ours:
            continue
        try:
            for fd in os.listdir(f"/proc/{name}/fd"):
                try:
                    target = os.readlink(f"/proc/{name}/fd/{fd}")
                except OSError:
                    continue
                if target in by_name:
                    held.add(by_name[target])
                elif target in socket_inodes:
                    held.add(socket_inodes[target])
            with open(f"/proc/{name}/maps") as f:
                for line in f:
                    if "tray" in line:
                        path = line.split(maxsplit=5)[-1].strip()
                        if path in by_name:
                            held.add(by_name[path])
        except OSError:
            continue
    return held


def _remove(paths: Iterable[Path]) -> None:
    for p in paths:
        try:
            p.unlink()
        except OSError:
            pass


# --------------------------------------------------------------------------- the check


class Snapshot(NamedTuple):
    procs: dict[int, ProcInfo]
    files: set[Path]

    @classmethod
    def take(cls) -> Snapshot:
        return cls(_scan_procs(), _tray_files())


def sweep(before: Snapshot, token: str) -> list[str]:
    """Find what appeared since ``before`` and is still there after the grace period;
    kill and remove it, and return a description of each leak (empty: nothing leaked)."""
    deadline = time.monotonic() + GRACE_S
    while True:
        pids = _leaked_procs(before.procs, token)
        files = _tray_files() - before.files
        if files:
            ours = {os.getpid()} | _descendants(_scan_procs(), os.getpid())
            files -= _held_by_others(files, ours)
        if not (pids or files) or time.monotonic() >= deadline:
            break
        time.sleep(POLL_S)
    leaks = [f"{_describe(pid)}, killed" for pid in sorted(pids)]
    _kill(pids)
    leaks += [f"file {p}, removed" for p in sorted(files)]
    _remove(files)
    return leaks


_TOKEN = pytest.StashKey[str]()
_RESULTS_DIR = pytest.StashKey[str]()
RESULTS_VAR = "TRAY_RESULTS_DIR"  # tray._air.config's default results dir (not imported: it would import tray)
_SESSION_BEFORE = pytest.StashKey[Snapshot]()
_SESSION_LEAKS = pytest.StashKey[list[str]]()


def pytest_configure(config: pytest.Config) -> None:
    # Every process this session starts inherits the token, so even a daemonized
    # tray:: process can be told apart from another session's.
    token = uuid.uuid4().hex
    os.environ[TOKEN_VAR] = token
    config.stash[_TOKEN] = token
    if not os.environ.get(RESULTS_VAR):
        results = tempfile.mkdtemp(prefix="test_results_")
        os.environ[RESULTS_VAR] = results
        config.stash[_RESULTS_DIR] = results


def pytest_unconfigure(config: pytest.Config) -> None:
    results = config.stash.get(_RESULTS_DIR, None)
    if results is not None:
        shutil.rmtree(results, ignore_errors=True)
        if os.environ.get(RESULTS_VAR) == results:
            del os.environ[RESULTS_VAR]


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_SESSION_BEFORE] = Snapshot.take()


@pytest.fixture(autouse=True)
def _tray_leak_check(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test (at teardown) if it left tray processes or files behind.

    While a tray runtime started by a module- or session-scoped fixture is still up,
    its workers and socket files are that fixture's, not the test's: the check is left
    to the fixture's own teardown and to the end of the session.
    """
    before = Snapshot.take()
    yield
    import tray

    if tray.is_initialized():
        return
    leaks = sweep(before, request.config.stash[_TOKEN])
    if leaks:
        pytest.fail("test leaked " + "; ".join(leaks), pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if _SESSION_BEFORE not in config.stash:
        return
    leaks = sweep(config.stash[_SESSION_BEFORE], config.stash[_TOKEN])
    holders = _token_holders(config.stash[_TOKEN])
    leaks += [f"{_describe(pid)}, killed" for pid in holders]
    _kill(holders)
    if not leaks:
        return
    config.stash[_SESSION_LEAKS] = leaks
    if config.pluginmanager.get_plugin("terminalreporter") is None:
        print(_session_report(leaks), file=sys.stderr)
    if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    # Called by the terminal reporter after pytest_sessionfinish, before the last line.
    leaks = config.stash.get(_SESSION_LEAKS, None)
    if leaks:
        terminalreporter.write_sep("=", "leaks", red=True)
        terminalreporter.write_line(_session_report(leaks))


def _session_report(leaks: list[str]) -> str:
    return "tray leak check: the session left behind:\n  " + "\n  ".join(leaks)


def _token_holders(token: str) -> list[int]:
    """Every live process, whatever its name, that carries our token (so we started it).

    Reads every process's environment, so it runs once, at the end of the session.
    """
    me = os.getpid()
    found = []
    for p in psutil.process_iter():
        if p.pid == me:
            continue
        try:
            if p.status() != psutil.STATUS_ZOMBIE and p.environ().get(TOKEN_VAR) == token:
                found.append(p.pid)
        except psutil.Error:
            continue
    return found
