"""Schedulers as pure deciders, checked against small models with hypothesis."""

from __future__ import annotations

import math
import random
import statistics

from hypothesis import given, settings
from hypothesis import strategies as st

from tray import tune
from tray.tune.schedulers import TrialScheduler
from tray.tune.schedulers.async_hyperband import _Bracket, quantile
from tray.tune.schedulers.hyperband import _HyperBandBracket
from tray.tune.schedulers.median_stopping_rule import median_decision
from tray.tune.schedulers.pbt import PBTDecider, explore

CONTINUE, STOP, PAUSE = TrialScheduler.CONTINUE, TrialScheduler.STOP, TrialScheduler.PAUSE

scores = st.floats(-100, 100, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(rf=st.sampled_from([2, 3, 4]), events=st.lists(st.tuples(st.integers(0, 5), scores), max_size=40))
def test_asha_matches_a_model(rf: int, events: list[tuple[int, float]]) -> None:
    """Each trial reports at increasing times 1, 2, ...; the model records a trial's score at
    each rung it reaches first, and stops it when below the (1 - 1/rf) quantile so far."""
    max_t = 16
    bracket = _Bracket(min_t=1, max_t=max_t, reduction_factor=rf, s=0)
    milestones = sorted({rf ** k for k in range(10) if rf ** k <= max_t}, reverse=True)
    assert bracket.milestones == milestones
    model: dict[float, dict[str, float]] = {m: {} for m in milestones}
    t_of: dict[str, int] = {}
    stopped: set[str] = set()
    for trial_no, score in events:
        tid = f"t{trial_no}"
        if tid in stopped:
            continue
        t_of[tid] = t_of.get(tid, 0) + 1
        t = t_of[tid]
        expected = CONTINUE
        for m in milestones:
            if t < m or tid in model[m]:
                continue
            rec = list(model[m].values())
            if rec and score < quantile(rec, 1 - 1 / rf):
                expected = STOP
            model[m][tid] = score
            break
        if t >= max_t:
            expected = STOP
        assert bracket.on_result(tid, t, score) == expected
        if expected == STOP:
            stopped.add(tid)


def test_quantile_is_numpy_linear() -> None:
    assert quantile([1, 2, 3, 4], 0.75) == 3.25 and quantile([5], 0.5) == 5


@settings(max_examples=100, deadline=None)
@given(n=st.integers(2, 9), eta=st.sampled_from([2, 3]), data=st.data())
def test_hyperband_bracket_halves_to_the_best(n: int, eta: int, data: st.DataObject) -> None:
    """All n trials reach the milestone: the best floor(n/eta) (at least one) go on, the rest stop."""
    b = _HyperBandBracket(n0=n, r0=1, eta=eta, max_t=100)
    values = data.draw(st.lists(scores, min_size=n, max_size=n, unique=True))
    ids = [f"t{i}" for i in range(n)]
    for tid in ids:
        b.add(tid)
    actions = {}
    stopped: set[str] = set()
    for tid, v in zip(ids, values, strict=True):
        action, stop, _resume = b.on_result(tid, 1, v)
        actions[tid] = action
        stopped |= set(stop)
    keep = max(1, int(n / eta))
    best = set(sorted(ids, key=lambda t: values[ids.index(t)], reverse=True)[:keep])
    last = ids[-1]
    assert all(actions[t] == PAUSE for t in ids[:-1])  # the early ones wait at the milestone
    assert actions[last] == (CONTINUE if last in best else STOP)
    assert stopped | ({last} if actions[last] == STOP else set()) == set(ids) - best
    assert b.resumable == best and b.r == eta


@settings(max_examples=150, deadline=None)
@given(histories=st.dictionaries(st.sampled_from("abcdef"), st.lists(st.tuples(st.integers(0, 10), scores),
                                                                     min_size=1, max_size=6), min_size=1),
       t=st.integers(0, 10), grace=st.integers(0, 5), min_samples=st.integers(1, 4))
def test_median_stopping_matches_a_model(histories: dict[str, list[tuple[int, float]]], t: int, grace: int,
                                         min_samples: int) -> None:
    me = sorted(histories)[0]
    got = median_decision(me, t, histories, grace, min_samples)
    if t < grace:
        assert not got
        return
    others = []
    for tid, h in histories.items():
        if tid == me or max(tt for tt, _ in h) < t:
            continue
        upto = [s for tt, s in h if tt <= t]
        if upto:
            others.append(sum(upto) / len(upto))
    own = [s for tt, s in histories[me] if tt <= t]
    expected = len(others) >= min_samples and bool(own) and max(own) < statistics.median(others)
    assert got == expected


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**16), lr=st.floats(1e-4, 1.0), bs=st.sampled_from([16, 32, 64, 128]),
       resample=st.floats(0, 1))
def test_pbt_explore_stays_in_the_mutation_space(seed: int, lr: float, bs: int, resample: float) -> None:
    rng = random.Random(seed)
    mutations = {"lr": tune.loguniform(1e-4, 1.0), "bs": [16, 32, 64, 128], "opt": {"momentum": [0.8, 0.9, 0.99]}}
    config = {"lr": lr, "bs": bs, "opt": {"momentum": 0.9}, "fixed": "kept"}
    new = explore(config, mutations, resample, (1.2, 0.8), rng)
    assert new["fixed"] == "kept"
    assert new["bs"] in mutations["bs"] and new["opt"]["momentum"] in [0.8, 0.9, 0.99]
    # an unresampled list value moves to a neighbour; a number is scaled by a factor or resampled
    if new["bs"] != bs:
        assert resample > 0 or abs(mutations["bs"].index(new["bs"]) - mutations["bs"].index(bs)) == 1
    assert math.isclose(new["lr"], lr * 1.2) or math.isclose(new["lr"], lr * 0.8) or 1e-4 <= new["lr"] <= 1.0
    assert config["opt"]["momentum"] == 0.9  # the source config is untouched


@settings(max_examples=100, deadline=None)
@given(n=st.integers(2, 12), q=st.sampled_from([0.25, 0.5]), data=st.data())
def test_pbt_bottom_trials_clone_top_ones(n: int, q: float, data: st.DataObject) -> None:
    decider = PBTDecider(perturbation_interval=5, burn_in_period=0, quantile_fraction=q, rng=random.Random(0))
    values = data.draw(st.lists(scores, min_size=n, max_size=n, unique=True))
    ids = [f"t{i}" for i in range(n)]
    for tid, v in zip(ids, values, strict=True):
        assert decider.on_result(tid, 1, v) is None  # before the first interval nobody perturbs
    bottom, top = decider.quantiles()
    k = min(int(math.ceil(n * q)), n // 2)
    ranked = sorted(ids, key=lambda t: values[ids.index(t)])
    assert bottom == ranked[:k] and sorted(top) == sorted(ranked[n - k:])
    for tid, v in zip(ids, values, strict=True):
        clone = decider.on_result(tid, 5, v)
        assert (clone in top) if tid in bottom else clone is None
