"""Reads and writes round-trip, locally and through fsspec; missing paths fail at once."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest


def test_parquet_round_trip_projection_filter_row_groups(rd, tmp_path):
    df = pd.DataFrame({"a": np.arange(1000), "b": np.arange(1000) * 0.5, "c": ["x"] * 1000})
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "one.parquet", row_group_size=100)
    ds = rd.read_parquet(str(tmp_path / "one.parquet"), override_num_blocks=4)
    assert ds.materialize().num_blocks() == 4
    assert ds.to_pandas().equals(df)
    assert rd.read_parquet(str(tmp_path), columns=["b"]).columns() == ["b"]
    got = rd.read_parquet(str(tmp_path), filter=pc.field("a") >= 990, columns=["a"]).to_pandas()
    assert list(got["a"]) == list(range(990, 1000))
    with pytest.raises(ValueError, match="no column 'zz'"):
        rd.read_parquet(str(tmp_path), columns=["zz"])
    out = tmp_path / "out"
    rd.from_pandas(df, override_num_blocks=3).write_parquet(str(out))
    files = sorted(os.listdir(out))
    assert len(files) == 3 and all(f.endswith(".parquet") and f.count("_") == 2 for f in files)
    back = rd.read_parquet(str(out), include_paths=True).to_pandas()
    assert back.drop(columns=["path"]).equals(df) and back["path"].str.endswith(".parquet").all()


def test_csv_json_text_numpy_binary_round_trip(rd, tmp_path):
    df = pd.DataFrame({"a": np.arange(50), "b": np.arange(50) * 2.5})
    ds = rd.from_pandas(df, override_num_blocks=2)
    ds.write_csv(str(tmp_path / "csv"))
    assert rd.read_csv(str(tmp_path / "csv")).to_pandas().equals(df)
    ds.write_json(str(tmp_path / "json"))
    assert rd.read_json(str(tmp_path / "json")).to_pandas().equals(df)
    (tmp_path / "arr.json").write_text('[{"a": 1, "b": 2.0}, {"a": 3, "b": 4.0}]')
    assert rd.read_json(str(tmp_path / "arr.json")).take_all() == [{"a": 1, "b": 2.0}, {"a": 3, "b": 4.0}]
    (tmp_path / "t.txt").write_text("hello\n\nworld\n")
    assert rd.read_text(str(tmp_path / "t.txt")).take_all() == [{"text": "hello"}, {"text": "world"}]
    rd.from_numpy(np.arange(12).reshape(4, 3)).write_numpy(str(tmp_path / "npy"), column="data")
    back = rd.read_numpy(str(tmp_path / "npy")).take_batch(10)["data"]
    assert back.tolist() == np.arange(12).reshape(4, 3).tolist()
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "x.bin").write_bytes(b"\x00\x01")
    got = rd.read_binary_files(str(tmp_path / "bin" / "*.bin"), include_paths=True).take_all()
    assert got[0]["bytes"] == b"\x00\x01" and got[0]["path"].endswith("x.bin")


def test_read_images_and_globs_lists(rd, tmp_path):
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.full((4, 5, 3), i * 40, dtype=np.uint8)).save(tmp_path / f"im{i}.png")
    imgs = rd.read_images(str(tmp_path)).take_batch(3)["image"]
    assert imgs.shape == (3, 4, 5, 3)
    small = rd.read_images([str(tmp_path / "im0.png")], size=(2, 2), mode="L").take_all()
    assert small[0]["image"].shape == (2, 2)


def test_fsspec_filesystem(rd, tmp_path):
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("file")  # tasks run in other processes: an fsspec filesystem they all see
    out = str(tmp_path / "out")
    rd.range(20, override_num_blocks=2).write_parquet(f"file://{out}", filesystem=fs)
    assert len(fs.ls(out)) == 2
    assert sorted(r["id"] for r in rd.read_parquet(out, filesystem=fs).take_all()) == list(range(20))


def test_missing_paths_fail_when_the_dataset_is_made(rd, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        rd.read_csv(str(tmp_path / "nope.csv"))
    with pytest.raises(FileNotFoundError, match="no files match"):
        rd.read_parquet(str(tmp_path / "*.parquet"))
