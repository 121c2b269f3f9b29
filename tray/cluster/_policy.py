"""Which node a lease request goes to, as pure logic: Ray's default for actors and the
label-selector filter. The node scheduler (``_scheduler``) feeds these its view of the
cluster — each node's total and free resources in integer units, and its labels — and
acts on the answer.

Ray's default strategy for actors (its GCS actor scheduler, then the owner's raylet):

- An actor that asks for no resources at all (``num_cpus=0``, the default for actors)
  goes to a node picked at random among the alive ones, so such actors spread over the
  cluster.
- One that asks for resources is placed by the *hybrid* policy from its owner's node: the
  owner's node while it has room and its utilization is below ``SPREAD_THRESHOLD``
  (0.5, Ray's ``scheduler_spread_threshold``), otherwise the node with room that is least
  utilized (ties: the owner's node, then the smaller id). Utilization is the largest
  used fraction over the resources the request names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ._labels import Selector, matches

__all__ = ["SPREAD_THRESHOLD", "NodeState", "choose_labelled", "hybrid", "utilization"]

SPREAD_THRESHOLD = 0.5

Units = Mapping[str, int]
NodeState = tuple[Units, Units, Mapping[str, str]]  # (total, free, labels)


def _fits(have: Units, shape: Units) -> bool:
    return all(have.get(k, 0) >= v for k, v in shape.items())


def utilization(total: Units, free: Units, names: Sequence[str]) -> float:
    """The largest used fraction of the resources ``names`` the node has (0 when none)."""
    used = [(total[r] - free.get(r, 0)) / total[r] for r in names if total.get(r, 0) > 0]
    return max(used, default=0.0)


def hybrid(shape: Units, here: str, nodes: Mapping[str, tuple[Units, Units]],
           threshold: float = SPREAD_THRESHOLD) -> str | None:
    """The node with room for ``shape`` by Ray's hybrid policy (see the module's doc), or
    None if no node has room now."""
    names = sorted(shape) or ["CPU"]
    util = {n: utilization(total, free, names) for n, (total, free) in nodes.items()}
    room = [n for n, (_total, free) in nodes.items() if _fits(free, shape)]
    if here in room and util[here] < threshold:
        return here
    if not room:
        return None
    return min(room, key=lambda n: (util[n], n != here, n))


def choose_labelled(shape: Units, selectors: Sequence[Selector], here: str, nodes: Mapping[str, NodeState],
                    prefer: Selector = ()) -> tuple[str, bool, int] | None:
    """Where a request with label selectors goes: ``(node, has_room_now, which)``, where
    ``which`` is the index of the selector that matched (0: ``label_selector``, then each
    ``fallback_strategy`` entry in order). The first selector matched by a node that could
    ever hold ``shape`` wins; among its nodes, one with room now, then those matching
    ``prefer`` (a soft selector), then here, then the one with the most free. None if no
    node that could hold ``shape`` matches any selector."""
    for which, selector in enumerate(selectors):
        able = sorted(n for n, (total, _free, labels) in nodes.items()
                      if _fits(total, shape) and matches(labels, selector))
        if not able:
            continue
        soft = {n: bool(prefer) and matches(nodes[n][2], prefer) for n in able}
        room = [n for n in able if _fits(nodes[n][1], shape)]
        names = sorted(shape) or ["CPU"]
        pool = room or able
        best = min(pool, key=lambda n: (not soft[n], n != here,
                                        utilization(nodes[n][0], nodes[n][1], names), n))
        return best, bool(room), which
    return None
