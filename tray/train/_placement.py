"""Can the cluster ever hold the worker group? (pure: bundles, a strategy, nodes' totals)

A placement group that no node can hold waits forever for nodes to join; Train checks first
and fails at once naming the resources, as Ray does for an infeasible ``ScalingConfig``.
"""

from __future__ import annotations

__all__ = ["infeasible_reason"]


def _fits(bundle: dict[str, float], node: dict[str, float]) -> bool:
    return all(node.get(k, 0.0) + 1e-9 >= v for k, v in bundle.items() if v > 0)


def _fmt(bundle: dict[str, float]) -> str:
    return "{" + ", ".join(f"{k!r}: {v:g}" for k, v in sorted(bundle.items()) if v > 0) + "}"


def infeasible_reason(bundles: list[dict[str, float]], strategy: str, nodes: list[dict[str, float]]) -> str | None:
    """Why ``bundles`` placed with ``strategy`` can never fit on ``nodes`` (their total
    resources), or None when they can once the nodes are free."""
    if not bundles:
        return None
    have = "; ".join(_fmt(n) for n in nodes) or "no alive nodes"
    for b in bundles:
        if not any(_fits(b, n) for n in nodes):
            return f"each worker asks for {_fmt(b)} but no node has that much (nodes: {have})"
    total: dict[str, float] = {}
    for b in bundles:
        for k, v in b.items():
            total[k] = total.get(k, 0.0) + v
    if strategy == "STRICT_PACK":
        if not any(_fits(total, n) for n in nodes):
            return f"STRICT_PACK needs {_fmt(total)} on one node, but no node has that much (nodes: {have})"
        return None
    if strategy == "STRICT_SPREAD":
        if len(bundles) > len(nodes):
            return f"STRICT_SPREAD needs {len(bundles)} nodes, one per worker, but the cluster has {len(nodes)}"
        # each worker on its own node: a greedy match suffices since bundles are identical here
        fit_nodes = [n for n in nodes if _fits(bundles[0], n)]
        if len(set(map(repr, bundles))) == 1 and len(fit_nodes) < len(bundles):
            return (f"STRICT_SPREAD needs {len(bundles)} nodes that hold {_fmt(bundles[0])}, "
                    f"but only {len(fit_nodes)} do (nodes: {have})")
        return None
    # PACK / SPREAD: bundles may share nodes; count how many bundles each node can take
    remaining = [dict(n) for n in nodes]
    for b in sorted(bundles, key=lambda b: -sum(b.values())):
        for n in remaining:
            if _fits(b, n):
                for k, v in b.items():
                    n[k] = n.get(k, 0.0) - v
                break
        else:
            return (f"{len(bundles)} workers of {_fmt(bundles[0])} need {_fmt(total)} in all, "
                    f"more than the cluster can hold (nodes: {have})")
    return None
