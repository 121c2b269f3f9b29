"""Pure row arithmetic for splits and partitions (hypothesis-tested)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def even_sizes(total: int, n: int) -> list[int]:
    """``n`` sizes summing to ``total``, differing by at most one (larger first)."""
    if n < 1:
        raise ValueError(f"the number of parts must be positive, got {n}")
    base, extra = divmod(total, n)
    return [base + (1 if i < extra else 0) for i in range(n)]


def cut(counts: Sequence[int], sizes: Sequence[int]) -> list[list[tuple[int, int, int]]]:
    """For blocks of ``counts`` rows, the pieces ``(block, start, length)`` making consecutive
    outputs of ``sizes`` rows (``sum(sizes) <= sum(counts)``; rows past them are dropped)."""
    if sum(sizes) > sum(counts):
        raise ValueError(f"cannot cut {sum(sizes)} rows from {sum(counts)}")
    out: list[list[tuple[int, int, int]]] = []
    b, off = 0, 0
    for size in sizes:
        pieces = []
        need = size
        while need > 0:
            while counts[b] - off == 0:
                b, off = b + 1, 0
            take = min(need, counts[b] - off)
            pieces.append((b, off, take))
            off += take
            need -= take
        out.append(pieces)
    return out


def boundaries(samples: np.ndarray, parts: int) -> np.ndarray:
    """At most ``parts - 1`` increasing cut points splitting ``samples`` into even ranges."""
    if parts <= 1 or len(samples) == 0:
        return samples[:0]
    s = np.sort(samples, kind="stable")
    idx = [int(len(s) * i / parts) for i in range(1, parts)]
    cuts = s[idx]
    keep = [0] + [i for i in range(1, len(cuts)) if cuts[i] != cuts[i - 1]]
    return cuts[keep]


def split_indices(total: int, indices: Sequence[int]) -> list[int]:
    """Sizes of the parts ``split_at_indices(indices)`` makes of ``total`` rows."""
    prev = 0
    sizes = []
    for i in indices:
        if i < prev:
            raise ValueError(f"indices must be sorted, got {list(indices)}")
        if i < 0:
            raise ValueError(f"indices must be non-negative, got {list(indices)}")
        i = min(i, total)
        sizes.append(i - prev)
        prev = i
    sizes.append(total - prev)
    return sizes


def proportion_sizes(total: int, proportions: Sequence[float]) -> list[int]:
    """Sizes for ``split_proportionately``: each proportion of ``total`` (rounded down), the rest last."""
    if not proportions or any(p <= 0 for p in proportions) or sum(proportions) >= 1:
        raise ValueError(f"proportions must be positive and sum to less than 1, got {list(proportions)}")
    sizes = [int(total * p) for p in proportions]
    sizes.append(total - sum(sizes))
    return sizes
