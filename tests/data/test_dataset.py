"""Every operator against pandas/numpy on the same data, on a real 2-CPU node."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tray


def frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"k": rng.integers(0, 5, n), "x": rng.normal(size=n), "s": rng.choice(["a", "b", "c"], n)})


def test_range_and_basic_consumption(rd):
    ds = rd.range(1000, override_num_blocks=7)
    assert ds.count() == 1000
    assert ds.take(3) == [{"id": 0}, {"id": 1}, {"id": 2}]
    assert [r["id"] for r in ds.take_all()] == list(range(1000))
    assert ds.schema().names == ["id"] and ds.columns() == ["id"]
    assert ds.sum("id") == sum(range(1000))
    assert ds.min("id") == 0 and ds.max("id") == 999
    assert ds.mean("id") == pytest.approx(499.5)
    assert ds.std("id") == pytest.approx(np.std(np.arange(1000), ddof=1))
    assert ds.materialize().num_blocks() == 7
    batch = ds.take_batch(5)
    assert list(batch["id"]) == [0, 1, 2, 3, 4]


def test_map_batches_formats_and_row_ops_match_pandas(rd):
    df = frame(500)
    ds = rd.from_pandas(df, override_num_blocks=4)

    def np_fn(b):
        return {"k": b["k"], "y": b["x"] * 2}

    got = ds.map_batches(np_fn, batch_size=33).to_pandas()
    assert np.allclose(got["y"], df["x"] * 2) and (got["k"] == df["k"]).all()
    got = ds.map_batches(lambda d: d.assign(y=d.x + 1), batch_format="pandas", batch_size=None).to_pandas()
    assert np.allclose(got["y"], df["x"] + 1)
    got = ds.map_batches(lambda t: t.select(["s"]), batch_format="pyarrow").to_pandas()
    assert list(got["s"]) == list(df["s"])
    got = ds.map(lambda r: {"z": r["k"] * 10}).to_pandas()
    assert list(got["z"]) == list(df["k"] * 10)
    got = ds.flat_map(lambda r: [{"v": r["k"]}] * 2).to_pandas()
    assert list(got["v"]) == list(np.repeat(df["k"].to_numpy(), 2))
    got = ds.filter(lambda r: r["x"] > 0).to_pandas()
    assert np.allclose(got["x"], df[df.x > 0]["x"])
    got = ds.filter(expr="x > 0 and k < 3").to_pandas()
    assert np.allclose(got["x"], df.query("x > 0 and k < 3")["x"])
    got = ds.add_column("w", lambda d: d["k"] + 1).drop_columns(["s"]).rename_columns({"x": "xx"}).to_pandas()
    assert list(got.columns) == ["k", "xx", "w"] and list(got["w"]) == list(df["k"] + 1)
    assert list(ds.select_columns(["s", "k"]).to_pandas().columns) == ["s", "k"]
    assert ds.limit(17).count() == 17
    assert sorted(ds.unique("s")) == sorted(df["s"].unique())


def test_batch_size_and_generator_udfs(rd):
    sizes = rd.range(100, override_num_blocks=3).map_batches(
        lambda b: {"n": np.array([len(b["id"])])}, batch_size=16).to_pandas()["n"]
    assert sum(sizes) == 100 and max(sizes) == 16

    def gen(b):
        for i in range(2):
            yield {"id": b["id"] + i}

    assert rd.range(10).map_batches(gen).count() == 20


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 300), seed=st.integers(0, 100), blocks=st.integers(1, 5))
def test_groupby_aggregations_match_pandas(rd, n, seed, blocks):
    from tray.data.aggregate import Count, Max, Mean, Min, Std, Sum

    df = frame(n, seed)
    ds = rd.from_pandas(df, override_num_blocks=blocks)
    got = ds.groupby("k").aggregate(Count(), Sum("x"), Min("x"), Max("x"), Mean("x"), Std("x")).to_pandas()
    want = df.groupby("k").x.agg(["count", "sum", "min", "max", "mean", "std"]).reset_index()
    assert list(got["k"]) == list(want["k"])
    assert list(got["count()"]) == list(want["count"])
    for a in ("sum", "min", "max", "mean"):
        assert np.allclose(got[f"{a}(x)"], want[a])
    assert np.allclose(got["std(x)"].astype(float), want["std"], equal_nan=True)


def test_groupby_multi_key_map_groups_and_custom_aggregate(rd):
    from tray.data.aggregate import AggregateFn

    df = frame(400, 3)
    ds = rd.from_pandas(df, override_num_blocks=3)
    got = ds.groupby(["k", "s"]).sum("x").to_pandas()
    want = df.groupby(["k", "s"]).x.sum().reset_index()
    assert np.allclose(got["sum(x)"], want["x"]) and list(got["s"]) == list(want["s"])
    mg = ds.groupby("k").map_groups(lambda g: {"k": g["k"][:1], "n": np.array([len(g["k"])])}).to_pandas()
    assert list(mg["n"]) == list(df.groupby("k").size())
    total = AggregateFn(init=lambda k: 0, accumulate_row=lambda a, r: a + r["k"], merge=lambda a, b: a + b,
                        name="ksum")
    assert ds.aggregate(total) == {"ksum": int(df["k"].sum())}
    assert ds.groupby("k").count().to_pandas()["count()"].tolist() == df.groupby("k").size().tolist()


def test_sort_shuffle_repartition_exact(rd):
    df = frame(1000, 5)
    ds = rd.from_pandas(df, override_num_blocks=6)
    assert np.allclose(ds.sort("x").to_pandas()["x"], np.sort(df["x"]))
    assert np.allclose(ds.sort("x", descending=True).to_pandas()["x"], np.sort(df["x"])[::-1])
    got = ds.sort(["k", "x"], descending=[True, False]).to_pandas()
    want = df.sort_values(["k", "x"], ascending=[False, True])
    assert list(got["k"]) == list(want["k"]) and np.allclose(got["x"], want["x"])
    sh = ds.random_shuffle(seed=7).to_pandas()
    assert not np.allclose(sh["x"], df["x"]) and np.allclose(np.sort(sh["x"]), np.sort(df["x"]))
    assert ds.random_shuffle(seed=7).to_pandas().equals(sh)  # seeded: reproducible
    assert sorted(ds.randomize_block_order(seed=1).to_pandas()["x"]) == sorted(df["x"])
    rp = ds.repartition(4).materialize()
    assert rp.num_blocks() == 4 and np.allclose(rp.to_pandas()["x"], df["x"])
    assert rd.range(100).repartition(3, shuffle=True).count() == 100


def test_splits_union_zip_join(rd):
    ds = rd.range(100, override_num_blocks=4)
    parts = ds.split(3)
    assert [p.count() for p in parts] == [34, 33, 33]
    assert sum((p.take_all() for p in parts), []) == ds.take_all()
    assert [p.count() for p in ds.split(3, equal=True)] == [33, 33, 33]
    assert [p.count() for p in ds.split_at_indices([10, 60])] == [10, 50, 40]
    assert [p.count() for p in ds.split_proportionately([0.2, 0.5])] == [20, 50, 30]
    tr, te = ds.train_test_split(0.25, shuffle=True, seed=1)
    assert tr.count() == 75 and te.count() == 25
    assert sorted(r["id"] for r in tr.take_all() + te.take_all()) == list(range(100))
    assert ds.union(rd.range(5)).count() == 105
    z = ds.zip(ds.map(lambda r: {"id": r["id"] * 2})).take_all()
    assert z[7] == {"id": 7, "id_1": 14}
    left = rd.from_items([{"id": i, "a": i * 10} for i in range(10)])
    right = rd.from_items([{"id": i, "b": -i} for i in range(5, 15)])
    j = left.join(right, "inner", 2, on=("id",)).to_pandas().sort_values("id")
    assert list(j["id"]) == [5, 6, 7, 8, 9] and list(j["b"]) == [-5, -6, -7, -8, -9]
    outer = left.join(right, "full_outer", 2, on=("id",)).count()
    assert outer == 15
    s = ds.random_sample(0.5, seed=0).count()
    assert 20 < s < 80


def test_from_sources_and_tensors(rd):
    assert rd.from_items([1, 2]).take_all() == [{"item": 1}, {"item": 2}]
    arr = np.arange(24).reshape(6, 2, 2)
    rows = rd.from_numpy(arr).take_all()
    assert len(rows) == 6 and np.array_equal(rows[3]["data"], arr[3])
    t = rd.range_tensor(10, shape=(3, 2)).take_batch(10)["data"]
    assert t.shape == (10, 3, 2) and (t[4] == 4).all()
    tab = pa.table({"a": [1, 2, 3]})
    assert rd.from_arrow(tab).take_all() == [{"a": 1}, {"a": 2}, {"a": 3}]
    doubled = rd.range_tensor(8, shape=(2,)).map_batches(lambda b: {"data": b["data"] * 2}).take_batch(8)["data"]
    assert doubled.shape == (8, 2) and doubled[3].tolist() == [6, 6]
    import torch

    tds = torch.utils.data.TensorDataset(torch.arange(4))
    assert rd.from_torch(tds).count() == 4
    ref = rd.range(10, override_num_blocks=2).to_numpy_refs(column="id")
    assert np.concatenate(tray.get(ref)).tolist() == list(range(10))
    assert pa.concat_tables(tray.get(rd.range(10).to_arrow_refs())).num_rows == 10


def test_iteration(rd):
    ds = rd.range(1000, override_num_blocks=3)
    batches = list(ds.iter_batches(batch_size=300))
    assert [len(b["id"]) for b in batches] == [300, 300, 300, 100]
    assert np.concatenate([b["id"] for b in batches]).tolist() == list(range(1000))
    assert len(list(ds.iter_batches(batch_size=300, drop_last=True))) == 3
    pdb = list(ds.iter_batches(batch_size=400, batch_format="pandas"))
    assert isinstance(pdb[0], pd.DataFrame) and len(pdb[0]) == 400
    sh = np.concatenate([b["id"] for b in ds.iter_batches(batch_size=100, local_shuffle_buffer_size=200,
                                                           local_shuffle_seed=1)])
    assert sorted(sh.tolist()) == list(range(1000)) and sh.tolist() != list(range(1000))
    import torch

    tb = list(ds.iter_torch_batches(batch_size=128, dtypes=torch.float32))
    assert tb[0]["id"].dtype == torch.float32 and sum(len(b["id"]) for b in tb) == 1000
    col = list(ds.iter_torch_batches(batch_size=500, collate_fn=lambda b: torch.as_tensor(b["id"]) + 1))
    assert col[0][0].item() == 1
    assert sum(1 for _ in ds.iter_rows()) == 1000


def test_actor_pool_builds_each_udf_once(rd):
    import os

    class Tag:
        def __init__(self, offset):
            self.offset = offset
            self.calls = 0
            self.made = os.getpid()

        def __call__(self, b):
            self.calls += 1
            return {"id": b["id"] + self.offset, "pid": np.full(len(b["id"]), self.made),
                    "calls": np.full(len(b["id"]), self.calls)}

    out = rd.range(400, override_num_blocks=8).map_batches(
        Tag, fn_constructor_args=(5,), compute=rd.ActorPoolStrategy(size=2), batch_size=50,
        num_cpus=0.5).to_pandas()
    assert sorted(out["id"]) == list(range(5, 405))
    assert out["pid"].nunique() <= 2
    # one instance per actor: its call counter runs past the batches of one block
    assert out["calls"].max() > 1 and out.groupby("pid")["calls"].max().sum() == 8
    out = rd.range(100).map_batches(Tag, fn_constructor_args=(0,), concurrency=(1, 2), num_cpus=0.5).count()
    assert out == 100


def test_errors_are_clear(rd):
    class Boom(Exception):
        pass

    def bad(b):
        raise Boom("no good")

    with pytest.raises(Boom, match="no good") as info:
        rd.range(10).map_batches(bad).take_all()
    assert "MapBatches(bad)" in str(info.value) + "".join(getattr(info.value, "__notes__", []))
    with pytest.raises(ValueError, match="batch_format"):
        rd.range(10).map_batches(lambda b: b, batch_format="arrowz")
    with pytest.raises(ValueError, match="no column 'nope'"):
        rd.range(10).select_columns(["nope"])
    with pytest.raises(ValueError, match="no column 'nope'"):
        rd.range(10).groupby("nope")
    with pytest.raises(ValueError, match="callable class"):
        rd.range(10).map_batches(type("C", (), {"__call__": lambda s, b: b}))
    with pytest.raises(TypeError, match="a row must be a dict"):
        rd.range(3).map(lambda r: 5).take_all()
    with pytest.raises(TypeError, match="Dataset is not iterable"):
        iter(rd.range(3))


def test_stats_names_each_operator(rd):
    ds = rd.range(1000, override_num_blocks=4).map_batches(lambda b: b).filter(lambda r: r["id"] % 2 == 0)
    assert ds.count() == 500
    s = ds.stats()
    assert "ReadRange->MapBatches(<lambda>)->Filter(<lambda>): 4 tasks executed" in s
    assert "Remote wall time" in s and "Output num rows per block" in s
