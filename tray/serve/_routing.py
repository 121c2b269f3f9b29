"""Which replica gets the next request: power of two choices on queue lengths (pure).

Ray's router samples two replicas and sends to the one with fewer requests in flight, skipping
replicas already at ``max_ongoing_requests``. Here the counts are the router's own (it knows
what it sent and what came back), so the choice costs no message; requests that find every
replica full wait in the router's queue, which refuses new ones beyond ``max_queued_requests``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any


def choose(inflight: Mapping[str, int], max_ongoing: int, rng: random.Random,
           prefer: Sequence[str] = ()) -> str | None:
    """A replica id with room (fewer than ``max_ongoing`` in flight), or None if all are full.

    ``prefer``: replicas to use first when one of them has room (model multiplexing's affinity)."""
    for rid in prefer:
        if inflight.get(rid, max_ongoing) < max_ongoing:
            return rid
    free = [rid for rid, n in inflight.items() if n < max_ongoing]
    if not free:
        return None
    if len(free) == 1:
        return free[0]
    a, b = rng.sample(free, 2)
    return a if inflight[a] <= inflight[b] else b


def may_queue(queued: int, max_queued: int) -> bool:
    """Can one more request wait for a replica (-1: no limit)?"""
    return max_queued < 0 or queued < max_queued


def match_route(routes: Mapping[str, Any], path: str) -> str | None:
    """The longest route prefix that ``path`` falls under ("/a" covers "/a" and "/a/b", not "/ab")."""
    best: str | None = None
    for prefix in routes:
        if prefix == "/" or path == prefix or path.startswith(prefix + "/"):
            if best is None or len(prefix) > len(best):
                best = prefix
    return best
