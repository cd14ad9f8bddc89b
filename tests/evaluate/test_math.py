"""Evaluation bookkeeping: per-(seed, task) seeds, finished chunks kept only for like settings, merging."""

from pathlib import Path

import polars as pl
import torch

from interlat.evaluate.math import discard_stale_chunks
from interlat.evaluate.messages import task_seed
from interlat.model.decode import Sampling
from interlat.workdir import merge_chunks


def test_task_seed_depends_on_seed_and_task_only():
    assert task_seed(0, "a") == task_seed(0, "a")
    assert len({task_seed(s, t) for s in (0, 1) for t in ("a", "b")}) == 4


def stamp(work: Path, model, temperature=0.1, ids=("t0", "t1")):
    discard_stale_chunks(work, model, variant="interlat", cfg=Sampling(temperature, 1.0, 0, 8), batch_size=2,
                         ids=list(ids))


def test_chunks_survive_like_settings_and_go_with_other_settings_or_weights(tmp_path):
    model = torch.nn.Linear(3, 2)
    stamp(tmp_path, model)
    chunk = tmp_path / "seed0-000000.parquet"
    chunk.write_bytes(b"done")
    stamp(tmp_path, model)
    assert chunk.exists()
    stamp(tmp_path, model, temperature=0.7)
    assert not chunk.exists()
    chunk.write_bytes(b"done")
    stamp(tmp_path, model, ids=("t0", "t2"))
    assert not chunk.exists()
    chunk.write_bytes(b"done")
    with torch.no_grad():
        model.weight.add_(1.0)  # a retrained receiver
    stamp(tmp_path, model, ids=("t0", "t2"))
    assert not chunk.exists()


def test_merge_sorts_by_seed_and_task_and_writes_atomically(tmp_path):
    for seed, start, ids in ((1, 0, ["b", "a"]), (0, 0, ["d", "c"])):
        pl.DataFrame({"task_id": ids, "seed": [seed] * 2}).write_parquet(tmp_path / f"seed{seed}-{start:06d}.parquet")
    out = tmp_path / "out" / "x.parquet"
    out.parent.mkdir()
    df = merge_chunks(tmp_path, [(0, 0), (1, 0)], out)
    assert df.rows() == [("c", 0), ("d", 0), ("a", 1), ("b", 1)]
    assert pl.read_parquet(out).equals(df) and [p.name for p in out.parent.iterdir()] == ["x.parquet"]
