"""Resumable state outside Snakemake's outputs: finished chunks, merged into one output at the end."""

from pathlib import Path

import polars as pl

from interlat.atomic import atomic_path


def merge_chunks(work_dir: Path, chunks: list[tuple[int, int]], out_path: Path) -> pl.DataFrame:
    """Concatenate the finished (seed, start) chunk files, sorted, into `out_path` atomically."""
    frames = [pl.read_parquet(work_dir / f"seed{s}-{i:06d}.parquet") for s, i in chunks]
    df = pl.concat(frames).sort(["seed", "task_id"])
    with atomic_path(out_path) as tmp:
        df.write_parquet(tmp)
    return df
