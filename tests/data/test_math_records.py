"""The real MATH path on local copies (no network): JSON Lines, Parquet and a save_to_disk folder."""

import json

import datasets
import polars as pl

from tests.conftest import run_cli

ROWS = [
    {"problem": "What is $1+1$?", "solution": "It is $\\boxed{2}$.", "level": "Level 1", "type": "Prealgebra"},
    {"problem": "Simplify $\\sqrt{8}$.", "solution": "$\\boxed{2\\sqrt{2}}$", "level": "Level 3", "type": "Algebra"},
    {"problem": "How many ways?", "solution": "\\boxed{6}", "level": "Level 5", "type": "Counting & Probability"},
]


def records(out):
    return [json.loads(x) for f in ("train.jsonl", "test.jsonl") for x in (out / f).read_text().splitlines()]


def check(recs, split):
    assert len(recs) == 3
    assert {r["subject"] for r in recs} == {"Prealgebra", "Algebra", "Counting & Probability"}
    assert sorted(r["level"] for r in recs) == [1, 3, 5]
    assert all(r["split"] == split and len(r["task_id"]) == 16 for r in recs)


def test_local_jsonl_and_parquet_copies_normalise_to_our_schema(tmp_path):
    src = tmp_path / "math"
    src.mkdir()
    (src / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    run_cli("data", "--source", src, "--out", tmp_path / "a")
    check(records(tmp_path / "a"), "test")
    pq = tmp_path / "math_train.parquet"
    pl.DataFrame(ROWS).write_parquet(pq)
    run_cli("data", "--source", pq, "--out", tmp_path / "b")
    check(records(tmp_path / "b"), "train")
    # same problem -> same content-derived id, whatever the file format
    assert {r["task_id"] for r in records(tmp_path / "a")} == {r["task_id"] for r in records(tmp_path / "b")}


def test_save_to_disk_folder(tmp_path):
    datasets.DatasetDict({"test": datasets.Dataset.from_list(ROWS)}).save_to_disk(str(tmp_path / "hf"))
    run_cli("data", "--source", tmp_path / "hf", "--out", tmp_path / "out")
    check(records(tmp_path / "out"), "test")
