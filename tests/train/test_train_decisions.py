"""The pure decisions of Train: which checkpoints to keep, whether a group can ever be placed,
whether to restart after a failure (hypothesis against simple models)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tray.train._checkpoint_book import CheckpointBook, Entry
from tray.train._controller import should_retry
from tray.train._placement import infeasible_reason

scores = st.lists(st.one_of(st.none(), st.integers(-5, 5)), min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(scores, st.one_of(st.none(), st.integers(1, 4)), st.sampled_from(["max", "min"]))
def test_book_keeps_the_best_and_the_latest(values, keep, order):
    book = CheckpointBook(keep, "score", order)
    deleted: list[str] = []
    for i, v in enumerate(values):
        metrics = {} if v is None else {"score": v}
        deleted += [e.name for e in book.register(Entry(i, f"c{i}", metrics))]
    kept = {e.name for e in book.entries}
    names = [f"c{i}" for i in range(len(values))]
    assert kept | set(deleted) == set(names) and not kept & set(deleted)  # each one kept or deleted once
    assert book.latest is not None and book.latest.name == names[-1] and names[-1] in kept
    if keep is None:
        assert not deleted
        return
    assert len(kept) in (keep, keep + 1) if len(values) > keep else len(kept) == len(values)

    def rank(i: int) -> tuple[float, int]:
        v = values[i]
        if v is None:
            return (float("-inf"), i)
        return (v if order == "max" else -v, i)

    # the model: the best `keep` (ties: the newer), plus the latest
    best = sorted(range(len(values)), key=rank)[-keep:]
    assert kept == {f"c{i}" for i in best} | {names[-1]}


def test_book_without_a_score_keeps_the_newest():
    book = CheckpointBook(2)
    gone = []
    for i in range(5):
        gone += book.register(Entry(i, f"c{i}", {"x": i}))
    assert [e.name for e in book.entries] == ["c3", "c4"] and [e.name for e in gone] == ["c0", "c1", "c2"]
    again = CheckpointBook(2)
    again.load_json(book.to_json())
    assert again.entries == book.entries and again.latest == book.latest


@given(st.integers(1, 20), st.integers(-1, 5))
def test_should_retry(failures, max_failures):
    assert should_retry(failures, max_failures) == (max_failures == -1 or failures <= max_failures)


node = st.dictionaries(st.sampled_from(["CPU", "GPU", "acc"]), st.integers(0, 4).map(float), min_size=1)


@settings(max_examples=300, deadline=None)
@given(st.lists(node, min_size=1, max_size=4), st.dictionaries(st.sampled_from(["CPU", "GPU", "acc"]),
       st.integers(1, 3).map(float), min_size=1), st.integers(1, 4),
       st.sampled_from(["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"]))
def test_feasibility_matches_a_brute_force_placement(nodes, bundle, n, strategy):
    import itertools

    def fits(assign: tuple[int, ...]) -> bool:
        if strategy == "STRICT_PACK" and len(set(assign)) > 1:
            return False
        if strategy == "STRICT_SPREAD" and len(set(assign)) < len(assign):
            return False
        for j, cap in enumerate(nodes):
            k = assign.count(j)
            if any(cap.get(r, 0.0) < v * k for r, v in bundle.items()):
                return False
        return True

    possible = any(fits(a) for a in itertools.product(range(len(nodes)), repeat=n))
    reason = infeasible_reason([bundle] * n, strategy, nodes)
    assert (reason is None) == possible, reason


def test_infeasible_names_the_resources():
    reason = infeasible_reason([{"CPU": 1.0, "GPU": 2.0}] * 2, "PACK", [{"CPU": 4.0}])
    assert reason is not None and "'GPU': 2" in reason and "'CPU': 4" in reason
