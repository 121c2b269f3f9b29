"""``tray debug``'s side of a session: this terminal forwarded to a paused worker's pdb.

Lines are read here, with readline (history kept in ``~/.tray_debug_history``, tab completion
answered by the remote pdb, which knows the paused frame), and sent one at a time; what pdb
writes is printed as it comes. Ctrl-D detaches and leaves the task paused for the next
``tray debug``; Ctrl-C clears the line being typed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

from ._wire import Channel

HISTORY_FILE = "~/.tray_debug_history"
HISTORY_LENGTH = 1000
PDB_DELIMS = " \t\n`@#$%^&*()=+[{]}\\|;:'\",<>?"  # pdb's own: a dotted name completes as one word


class Detached(Exception):
    """The user detached (Ctrl-D): the session stays open, the task paused."""


class Terminal:
    """One attached session, forwarded to ``out`` with ``read_line(prompt)`` (default: ``input``)."""

    def __init__(self, chan: Channel, out: TextIO | None = None,
                 read_line: Callable[[str], str] | None = None) -> None:
        self.chan = chan
        self.out = out or sys.stdout
        self.read_line = read_line or input
        self.ended: str | None = None  # why the session ended, when it says

    def run(self) -> str | None:
        """Forward until the session ends; the session to follow next (``remote``), if any.
        Raises Detached when the user detached."""
        partial = ""  # the end of pdb's output after its last newline: the prompt, when it asks
        follow = None
        with _readline(self._complete):
            while True:
                msg = self.chan.recv()
                if msg is None:
                    break
                kind = msg["t"]
                if kind == "out":
                    head, newline, partial = (partial + str(msg.get("text", ""))).rpartition("\n")
                    if newline:
                        self.out.write(head + newline)
                        self.out.flush()
                elif kind == "input":
                    line = self._ask(partial)
                    partial = ""
                    self.chan.send("line", text=line)
                elif kind == "follow":
                    follow = str(msg.get("follow"))
                elif kind == "bye":
                    self.ended = str(msg.get("why", "the session ended"))
        if partial:
            self.out.write(partial + "\n")
        return follow

    def _ask(self, prompt: str) -> str:
        while True:
            try:
                return self.read_line(prompt)
            except KeyboardInterrupt:
                self.out.write("\n")
            except EOFError:
                self.out.write("\n")
                raise Detached() from None

    def _complete(self, line: str, begidx: int, endidx: int) -> list[str]:
        self.chan.send("complete", line=line, begidx=begidx, endidx=endidx)
        reply = self.chan.recv()
        if reply is None or reply.get("t") != "matches":
            return []
        return [str(m) for m in reply.get("items", ())]


class _readline:
    """Line editing for the session, when this Python has readline: history from and back to
    ``HISTORY_FILE``, and a completer that asks the remote pdb."""

    def __init__(self, complete: Callable[[str, int, int], list[str]]) -> None:
        self.complete = complete
        self.matches: list[str] = []
        self.saved: tuple[Any, ...] | None = None

    def __enter__(self) -> _readline:
        try:
            import readline
        except ImportError:  # no line editing here: plain input
            return self
        self.readline = readline
        self.saved = (readline.get_completer(), readline.get_completer_delims())
        readline.set_completer(self._completer)
        readline.set_completer_delims(PDB_DELIMS)
        binding = "bind ^I rl_complete" if "libedit" in (readline.__doc__ or "") else "tab: complete"
        readline.parse_and_bind(binding)
        readline.set_history_length(HISTORY_LENGTH)
        try:
            readline.read_history_file(os.path.expanduser(HISTORY_FILE))
        except OSError:
            pass
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.saved is None:
            return
        try:
            self.readline.write_history_file(os.path.expanduser(HISTORY_FILE))
        except OSError:
            pass
        self.readline.set_completer(self.saved[0])
        self.readline.set_completer_delims(self.saved[1])

    def _completer(self, text: str, state: int) -> str | None:
        if state == 0:
            rl = self.readline
            try:
                self.matches = self.complete(rl.get_line_buffer(), rl.get_begidx(), rl.get_endidx())
            except Exception:  # noqa: BLE001 - a completer must not raise into readline
                self.matches = []
        return self.matches[state] if state < len(self.matches) else None
