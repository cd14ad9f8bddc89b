"""Evaluation bookkeeping: per-(seed, task) seeds, finished chunks kept only for like settings, merging."""

import logging
from pathlib import Path

import polars as pl
import pytest

from interlat.evaluate.messages import task_seed
from interlat.workdir import merge_chunks
from tests.helpers import run_cli


def test_task_seed_depends_on_seed_and_task_only():
    assert task_seed(0, "a") == task_seed(0, "a")
    assert len({task_seed(s, t) for s in (0, 1) for t in ("a", "b")}) == 4


def evaluate(tiny, work: Path, out: Path, temperature: float):
    run_cli("evaluate", "--receiver", tiny["receiver_ckpt"], "--conversations",
            tiny["convert"] / "test.jsonl", "--latents", tiny["latents"], "--variant", "interlat", "--seeds", "0,1",
            "--batch-size", 4, "--max-new-tokens", 6, "--temperature", temperature, "--work-dir", work, "--out", out)
    return pl.read_parquet(out).drop("seconds")


@pytest.mark.slow
def test_rerun_with_other_decoding_discards_chunks_and_equals_a_fresh_run(tiny, tmp_path, caplog):
    work = tmp_path / "work"
    first = evaluate(tiny, work, tmp_path / "a.parquet", 0.1)
    with caplog.at_level(logging.WARNING, logger="interlat.workdir"):
        rerun = evaluate(tiny, work, tmp_path / "b.parquet", 1.5)
    assert f"discarding stale state in {work}: settings/inputs changed (sampling)" in caplog.messages
    fresh = evaluate(tiny, tmp_path / "fresh", tmp_path / "c.parquet", 1.5)
    assert rerun.equals(fresh)
    assert not rerun.equals(first)  # the rerun did not reuse a chunk of the first decoding


def test_merge_sorts_by_seed_and_task_and_writes_atomically(tmp_path):
    for seed, start, ids in ((1, 0, ["b", "a"]), (0, 0, ["d", "c"])):
        pl.DataFrame({"task_id": ids, "seed": [seed] * 2}).write_parquet(tmp_path / f"seed{seed}-{start:06d}.parquet")
    out = tmp_path / "out" / "x.parquet"
    out.parent.mkdir()
    df = merge_chunks(tmp_path, [(0, 0), (1, 0)], out)
    assert df.rows() == [("c", 0), ("d", 0), ("a", 1), ("b", 1)]
    assert pl.read_parquet(out).equals(df) and [p.name for p in out.parent.iterdir()] == ["x.parquet"]
