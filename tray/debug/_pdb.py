"""pdb in a worker, over a :class:`~._session.Session`: ``breakpoint()``, post mortem, and
the ``remote`` command that follows the next remote call into the worker that runs it.

``c`` continues the task and ends the session (its listing goes away); ``q`` does the same
and also forgets the breakpoints set in it (a remote task is never killed from its debugger,
as in Ray). A breakpoint set with ``b`` opens a new session when it is hit.
"""

from __future__ import annotations

import functools
import linecache
import pdb
import sys
import uuid
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

from tray import lowlevel

from ._session import DYNAMIC, Session, source_file


class RemotePdb(pdb.Pdb):
    """pdb whose terminal is whichever ``tray debug`` client attached to its session."""

    def __init__(self, kind: str = "breakpoint", *, follow: str | None = None, error: str | None = None) -> None:
        self.session = Session(kind, follow=follow, error=error, complete=self.complete_line, banner=self._banner)
        terminal: Any = self.session  # file-like enough for pdb: write, flush, readline
        super().__init__(stdin=terminal, stdout=terminal, nosigint=True, readrc=False)
        self.prompt = "(Pdb) "
        self.dynamic_file: str | None = None  # where the driver's by-value functions' code is

    def canonic(self, filename: str) -> str:
        """By-value functions' code (``<dynamic-code>``) is shown, listed and broken in as the
        file it came from (the driver's script)."""
        if filename == DYNAMIC and self.dynamic_file is not None:
            return self.dynamic_file
        return super().canonic(filename)

    def setup(self, frame: FrameType | None, traceback: TracebackType | None) -> None:
        where: FrameType | None = _innermost(frame, traceback)[0]
        while where is not None and self.dynamic_file is None:
            if where.f_code.co_filename == DYNAMIC and source_file(where) != DYNAMIC:
                self.dynamic_file = source_file(where)
                _cache_lines(DYNAMIC, self.dynamic_file)
            where = where.f_back
        super().setup(frame, traceback)

    def interaction(self, frame: FrameType | None, traceback: TracebackType | None) -> None:
        if not self.session.is_open:  # a breakpoint hit after the session that set it ended
            where, lineno = _innermost(frame, traceback)
            self.session.open(where, lineno)
        super().interaction(frame, traceback)

    def _banner(self) -> str:
        """What a client that attaches again sees: where pdb is, and its prompt (again)."""
        if not getattr(self, "stack", None):
            return self.prompt
        frame, lineno = self.stack[self.curindex]  # not format_stack_entry: reading f_locals would
        filename = self.canonic(frame.f_code.co_filename)  # undo assignments made at this stop
        line = linecache.getline(filename, lineno, frame.f_globals).strip()
        return f"> {filename}({lineno}){frame.f_code.co_name}()\n-> {line}\n{self.prompt}"

    def complete_line(self, line: str, begidx: int, endidx: int) -> list[str]:
        """Tab completion of ``line[begidx:endidx]`` for a remote readline, as ``cmd.Cmd.complete``
        does it for a local one."""
        stripped = len(line) - len(line.lstrip())
        text, line, begidx, endidx = line[begidx:endidx], line.lstrip(), begidx - stripped, endidx - stripped
        if begidx > 0:
            cmd, _args, _rest = self.parseline(line)
            compfunc = getattr(self, "complete_" + cmd, self.completedefault) if cmd else self.completedefault
        else:
            compfunc = self.completenames
        try:
            return list(compfunc(text, line, begidx, endidx) or ())
        except Exception:  # noqa: BLE001 - a completion that fails offers nothing, as readline's do
            return []

    # ------------------------------------------------------------ commands

    def do_continue(self, arg: str) -> bool:
        """c(ont(inue))
        Continue the task and end this debugger session (``tray debug`` detaches)."""
        super().do_continue(arg)
        self.session.close("continued")
        return True

    do_c = do_cont = do_continue

    def do_quit(self, arg: str) -> bool:
        """q(uit) | exit
        Forget this session's breakpoints, continue the task and end the session."""
        self.clear_all_breaks()
        return self.do_continue(arg)

    do_q = do_exit = do_EOF = do_quit

    def do_remote(self, arg: str) -> bool:
        """remote
        Continue, and stop at the start of the next remote task this process submits, in the
        worker that runs it: ``tray debug`` follows it there."""
        follow = uuid.uuid4().hex
        lowlevel.follow_next_task(functools.partial(Follow, follow))
        self.session.send_follow(follow)
        return self.do_continue(arg)


def _cache_lines(name: str, path: str) -> None:
    """Let ``linecache`` (pdb's ``l``, ``ll``, stack entries) read ``path``'s lines as ``name``'s."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except OSError:
        return
    linecache.cache[name] = (sum(map(len, lines)), None, lines, name)  # no mtime: never invalidated


def _innermost(frame: FrameType | None, traceback: TracebackType | None) -> tuple[FrameType, int]:
    """Where a stop is: ``frame``, or the frame the traceback's exception was raised in."""
    if frame is not None:
        return frame, frame.f_lineno
    assert traceback is not None
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    return traceback.tb_frame, traceback.tb_lineno


class Follow:
    """A task followed by ``remote``: it runs its function ``fn`` under a debugger stopped at
    its first line, in a session the client that asked for it attaches to."""

    def __init__(self, follow: str, fn: Callable[..., Any]) -> None:
        self.follow, self.fn = follow, fn
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        debugger = RemotePdb(follow=self.follow)
        try:
            return debugger.runcall(self.fn, *args, **kwargs)
        finally:
            debugger.session.close("the task returned")


def set_trace(frame: FrameType) -> None:
    """Stop ``frame`` (at its next line) in a session of its own."""
    RemotePdb().set_trace(frame)


def post_mortem(exc: BaseException, timeout: float | None) -> None:
    """Stop where ``exc`` was raised until a client attaches (at most ``timeout`` seconds),
    then let it look around; returns when it continues (the task then fails as usual)."""
    traceback = exc.__traceback__
    if traceback is None:
        raise ValueError(f"post_mortem needs an exception that was raised (with a traceback), got {exc!r}")
    debugger = RemotePdb("post_mortem", error=f"{type(exc).__name__}: {exc}")
    where, lineno = _innermost(None, traceback)
    debugger.session.open(where, lineno)
    try:
        if not debugger.session.attach(timeout):
            print(f"tray debugger: nobody attached within {timeout:.0f} s; the task fails as usual",
                  file=sys.stderr, flush=True)
            return
        debugger.reset()
        debugger.interaction(None, traceback)
    finally:
        debugger.session.close("the task goes on to fail")
