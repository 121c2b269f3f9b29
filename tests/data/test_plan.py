"""The pure parts: fusion of the logical plan, row arithmetic (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tray.data import _plan, _rows


def _add(k):
    def t(blocks):
        for b in blocks:
            yield [x + k for x in b]
    return t


def _keep_even(blocks):
    for b in blocks:
        yield [x for x in b if x % 2 == 0]


def _dup(blocks):
    for b in blocks:
        yield b
        yield list(b)


def _read(n):
    return lambda: iter([list(range(n))])


ops = st.lists(st.one_of(
    st.tuples(st.just("add"), st.integers(-3, 3), st.sampled_from([(), (("num_cpus", 2),)])),
    st.tuples(st.just("even"), st.just(0), st.just(())),
    st.tuples(st.just("dup"), st.just(0), st.just(())),
    st.tuples(st.just("actor"), st.integers(0, 2), st.just(())),
), max_size=8)


def _build(spec):
    out = []
    for kind, k, args in spec:
        if kind == "add":
            out.append(_plan.MapOp(f"add{k}", _add(k), _plan.TaskCompute(), args))
        elif kind == "even":
            out.append(_plan.MapOp("even", _keep_even))
        elif kind == "dup":
            out.append(_plan.MapOp("dup", _dup))
        else:
            out.append(_plan.MapOp("actor", _plan.TaskCompute().__class__ and _identity_transform,
                                   _plan.ActorCompute(1, 2), (), lambda k=k: _add(k)))
    return out


def _identity_transform(blocks):
    return blocks


def _run_stage(stage, items):
    chain = [t if init is None else init() for t, init in zip(stage.transforms, stage.inits, strict=False)]
    out = []
    for item in items:
        blocks = item() if stage.reads else iter([item])
        blocks = _plan.compose(chain)(blocks)
        out.append([x for b in blocks for x in b])
    return out


def _reference(n, ops_):
    blocks = [list(range(n))]
    for op in ops_:
        t = op.init() if op.init is not None else op.transform
        blocks = list(t(iter(blocks)))
    return [x for b in blocks for x in b]


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 20), spec=ops)
def test_fused_stages_compute_what_the_operators_do_one_by_one(n, spec):
    op_list = _build(spec)
    plan = _plan.Plan(_plan.Source("Read", read_tasks=(_read(n),)), tuple(op_list))
    stages = _plan.fuse(plan)
    items = [_read(n)]
    for stage in stages:
        items = _run_stage(stage, items)
    assert [x for item in items for x in item] == _reference(n, op_list)
    # every map lands in exactly one stage, in order
    assert [nm for s in stages for nm in s.names][1:] == [op.name for op in op_list]
    # no stage could absorb the next one
    for a, b in zip(stages, stages[1:], strict=False):
        assert isinstance(a.compute, _plan.ActorCompute) or a.remote_args != b.remote_args
    # an actor pool is never fused into another actor stage's work after it
    for s in stages:
        assert sum(isinstance(s.compute, _plan.ActorCompute) for _ in [0]) <= 1
        if isinstance(s.compute, _plan.ActorCompute):
            assert s.names[-1] == "actor"


def test_barrier_pre_map_fuses_and_barrier_splits_stages():
    pre = _plan.MapOp("Partial", _identity_transform)
    plan = _plan.Plan(_plan.Source("Read", read_tasks=(_read(3),)),
                      (_plan.MapOp("m", _identity_transform), _plan.AllToAll("Agg", lambda b: b, pre),
                       _plan.Limit(2)))
    stages = _plan.fuse(plan)
    assert [type(s).__name__ for s in stages] == ["MapStage", "BarrierStage", "LimitStage"]
    assert stages[0].name == "Read->m->Partial"


def test_bad_actor_pool_sizes_are_refused():
    import pytest

    with pytest.raises(ValueError, match="min_size"):
        _plan.ActorCompute(3, 2)
    with pytest.raises(ValueError, match="limit"):
        _plan.Limit(-1)


@given(counts=st.lists(st.integers(0, 30), max_size=8), data=st.data())
def test_cut_covers_rows_in_order(counts, data):
    total = sum(counts)
    k = data.draw(st.integers(1, 6))
    sizes = data.draw(st.lists(st.integers(0, 10), min_size=k, max_size=k).filter(lambda s: sum(s) <= total))
    plan = _rows.cut(counts, sizes)
    offsets = np.cumsum([0] + counts)
    rows = [int(offsets[b] + s + i) for pieces in plan for b, s, n in pieces for i in range(n)]
    assert rows == list(range(sum(sizes)))
    assert [sum(n for _, _, n in p) for p in plan] == sizes
    assert all(0 <= s and s + n <= counts[b] for p in plan for b, s, n in p)


@given(total=st.integers(0, 1000), n=st.integers(1, 50))
def test_even_sizes(total, n):
    sizes = _rows.even_sizes(total, n)
    assert sum(sizes) == total and max(sizes) - min(sizes) <= 1


@given(samples=st.lists(st.integers(-5, 5), max_size=50), parts=st.integers(1, 8))
def test_boundaries_increase_and_are_few(samples, parts):
    b = _rows.boundaries(np.array(samples), parts)
    assert len(b) <= max(parts - 1, 0)
    assert all(x < y for x, y in zip(b, b[1:], strict=False))


@given(total=st.integers(0, 100), idx=st.lists(st.integers(0, 120), max_size=5))
def test_split_indices(total, idx):
    idx = sorted(idx)
    sizes = _rows.split_indices(total, idx)
    assert sum(sizes) == total and len(sizes) == len(idx) + 1


@given(st.lists(st.integers(0, 50), max_size=40), st.integers(1, 5))
def test_equal_split_gives_every_split_its_share_exactly(counts, n):
    from tray.data._split import EqualSplit

    sp: EqualSplit[int] = EqualSplit(n)
    got = [0] * n
    share_so_far = 0
    for i, c in enumerate(counts):
        for split, block in sp.add(i, c):
            got[split] += counts[block]
        share_so_far += c
        assert all(g <= share_so_far // n for g in got)  # never more than a share
        assert sum(counts[b] for b, _ in sp.held) <= n * 50 + 50  # about n blocks held
    held, need = sp.finish()
    share = sum(counts) // n
    assert all(k >= 0 for k in need) and sum(need) <= sum(counts[b] for b in held)
    assert [g + k for g, k in zip(got, need, strict=True)] == [share] * n
