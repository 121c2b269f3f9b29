"""Which of a run's checkpoints to keep (pure: no files, no actors).

Checkpoints are kept worst to best by ``checkpoint_score_attribute`` (report order when it is
unset, so "best" means newest); past ``num_to_keep`` the worst go, except the latest, which a
restart resumes from. A checkpoint whose metrics lack the score attribute counts as the worst.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

__all__ = ["CheckpointBook", "Entry"]


@attrs.frozen
class Entry:
    index: int  # report order
    name: str  # directory name under the run's path
    metrics: dict[str, Any]


def _score(entry: Entry, attribute: str | None, order: str) -> tuple[float, int]:
    if attribute is None:
        return (0.0, entry.index)
    value = entry.metrics.get(attribute)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        return (-math.inf, entry.index)
    return (float(value) if order == "max" else -float(value), entry.index)


@attrs.define
class CheckpointBook:
    num_to_keep: int | None = None
    score_attribute: str | None = None
    score_order: str = "max"
    entries: list[Entry] = attrs.field(factory=list)  # kept, worst first
    latest: Entry | None = None

    def register(self, entry: Entry) -> list[Entry]:
        """Record a new checkpoint; return the ones to delete now."""
        self.latest = entry
        self.entries.append(entry)
        self.entries.sort(key=lambda e: _score(e, self.score_attribute, self.score_order))
        if self.num_to_keep is None or len(self.entries) <= self.num_to_keep:
            return []
        drop = [e for e in self.entries[: len(self.entries) - self.num_to_keep] if e is not entry]
        self.entries = [e for e in self.entries if e not in drop]
        return drop

    @property
    def best(self) -> Entry | None:
        return self.entries[-1] if self.entries else None

    def to_json(self) -> dict[str, Any]:
        return {"entries": [attrs.asdict(e) for e in self.entries],
                "latest": attrs.asdict(self.latest) if self.latest is not None else None}

    def load_json(self, data: dict[str, Any]) -> None:
        self.entries = [Entry(**e) for e in data["entries"]]
        self.entries.sort(key=lambda e: _score(e, self.score_attribute, self.score_order))
        self.latest = Entry(**data["latest"]) if data.get("latest") else None
