"""Pure dispatch for ``streaming_split(n, equal=True)``: which split each block goes to, as
blocks stream in, so that every split ends with exactly ``total // n`` rows although ``total``
is known only at the end.

A block goes to the split with the fewest rows only while that split stays within
``seen // n`` (``seen``: rows produced so far, a lower bound of the final share), so no split
ever gets more than its share; the blocks that do not fit yet are held (about ``n`` blocks'
worth) and, when the stream ends, cut to top every split up to its share exactly.
"""

from __future__ import annotations

import collections
from typing import Generic, TypeVar

T = TypeVar("T")


class EqualSplit(Generic[T]):
    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError(f"streaming_split needs n >= 1, got {n}")
        self.n = n
        self.assigned = [0] * n
        self.seen = 0
        self.held: collections.deque[tuple[T, int]] = collections.deque()

    def add(self, item: T, rows: int) -> list[tuple[int, T]]:
        """A block of ``rows`` rows arrived: the ``(split, block)`` hand-outs it makes possible."""
        if rows < 0:
            raise ValueError(f"a block has rows >= 0, got {rows}")
        self.seen += rows
        self.held.append((item, rows))
        out: list[tuple[int, T]] = []
        share = self.seen // self.n
        while self.held:
            i = min(range(self.n), key=self.assigned.__getitem__)
            item0, rows0 = self.held[0]
            if self.assigned[i] + rows0 > share:
                break
            self.held.popleft()
            self.assigned[i] += rows0
            out.append((i, item0))
        return out

    def finish(self) -> tuple[list[T], list[int]]:
        """The stream ended: the held blocks, in order, and how many rows of them each split
        still needs (cut consecutively; the rows after them, under ``n``, are dropped)."""
        share = self.seen // self.n
        return [item for item, _ in self.held], [share - a for a in self.assigned]
