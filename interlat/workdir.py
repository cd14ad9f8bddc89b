"""Resumable state outside Snakemake's outputs: the one mechanism every stage uses.

A stage that keeps state (collect, train, compress, evaluate) owns a work folder. Before it
reuses anything there it calls `open_state(work_dir, settings, inputs)`:

- the stamp is the stage's `settings` (JSON values) plus a sha256 of the CONTENTS of each of
  its `inputs` (a file's bytes; a folder's files, each as relative path + bytes, in sorted
  order; a list of either, in order). Nothing is cached: the inputs are hashed on every start;
- the stamp is compared with `state.json` in the work folder; if it differs (or the folder holds
  files but no stamp), everything in the folder is deleted and ONE line is logged, naming the
  changed keys: ``discarding stale state in W: settings/inputs changed (lr, inputs.latents)``;
- the new stamp is written (atomically) and the stage resumes from whatever is left.

Under a process group only rank 0 checks and deletes; the other ranks wait at a barrier.
`finish(work_dir)` removes the state once the stage's output is in place.

Evaluations keep one Parquet file per finished (seed, start) chunk, `seed{s}-{i:06d}.parquet`:
`run_chunks` runs the missing chunks and `merge_chunks` writes all records as one file.
"""

import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import polars as pl

from interlat.atomic import atomic_path, write_json
from interlat.progress import progress

log = logging.getLogger(__name__)

STAMP = "state.json"
_BLOCK = 1 << 20

#: input name -> a file, a folder, a list of these, or None (no such input)
Inputs = dict[str, object]


def _hash_file(h, path: Path) -> None:
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)


def content_digest(path: str | Path | list | tuple | None) -> str:
    """sha256 of a file's bytes, of a folder's files (relative path + bytes, sorted), or of a
    list of these in order. Hidden entries (dot-prefixed, e.g. temporary files) are skipped."""
    h = hashlib.sha256()
    if path is None:
        return "none"
    if isinstance(path, (list, tuple)):
        for p in path:
            h.update(content_digest(p).encode())
        return h.hexdigest()
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not any(
            part.startswith(".") for part in p.relative_to(path).parts))
        for f in files:
            rel = f.relative_to(path).as_posix().encode()
            h.update(len(rel).to_bytes(8, "little") + rel + f.stat().st_size.to_bytes(8, "little"))
            _hash_file(h, f)
    elif path.is_file():
        _hash_file(h, path)
    else:
        return "missing"
    return h.hexdigest()


def stamp(settings: dict, inputs: Inputs | None = None) -> dict:
    """The stamp of a stage: its settings as JSON values and a digest per input."""
    return {
        "settings": json.loads(json.dumps(settings, sort_keys=True, default=str)),
        "inputs": {k: content_digest(v) for k, v in sorted((inputs or {}).items())},
    }


def _changed(old: dict | None, new: dict) -> list[str]:
    if not isinstance(old, dict):
        return ["no stamp"]
    keys = []
    for part, prefix in (("settings", ""), ("inputs", "inputs.")):
        a, b = old.get(part) or {}, new[part]
        keys += [f"{prefix}{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return keys or ["stamp format"]


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def open_state(work_dir: str | Path, settings: dict, inputs: Inputs | None = None, *, rank: int = 0) -> bool:
    """Check the work folder's stamp (see the module docstring); True when its state may be reused."""
    work_dir = Path(work_dir)
    kept = True
    if rank == 0:
        new = stamp(settings, inputs)
        path = work_dir / STAMP
        work_dir.mkdir(parents=True, exist_ok=True)
        try:
            old = json.loads(path.read_text()) if path.is_file() else None
        except json.JSONDecodeError:
            old = None
        if old != new:
            kept = False
            entries = [p for p in work_dir.iterdir() if p.name != STAMP]
            if entries:
                log.warning("discarding stale state in %s: settings/inputs changed (%s)",
                            work_dir, ", ".join(_changed(old, new)))
            for p in entries:
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
            write_json(path, new)
    _barrier()
    return kept


def finish(work_dir: str | Path) -> None:
    """Remove the work folder (the stage's output is in place)."""
    shutil.rmtree(work_dir, ignore_errors=True)


def chunk_path(work_dir: Path, seed: int, start: int) -> Path:
    """The finished-chunk file of (seed, start)."""
    return Path(work_dir) / f"seed{seed}-{start:06d}.parquet"


def run_chunks(work_dir: Path, chunks: list[tuple[int, int]], run_chunk: Callable[[int, int], pl.DataFrame],
               out_path: Path, desc: str = "chunks", constants: dict | None = None) -> pl.DataFrame:
    """Run `run_chunk(seed, start)` for every chunk without a finished file (each written
    atomically as it finishes), then merge all chunks into `out_path` (with `constants` as
    columns, e.g. the receiver's training seed). On SIGTERM it stops after the chunk being run
    and raises `interlat.runtime.Stopped` (exit 143, no `out_path`)."""
    from interlat import runtime

    with runtime.sigterm_stops():
        for k, (seed, start) in enumerate(progress(chunks, desc=desc)):
            part = chunk_path(work_dir, seed, start)
            if not part.exists():
                frame = run_chunk(seed, start)
                with atomic_path(part) as tmp:
                    frame.write_parquet(tmp)
            if runtime.stop_requested() and k + 1 < len(chunks):
                raise runtime.Stopped(f"chunk {k + 1} of {len(chunks)}", work_dir)
    return merge_chunks(work_dir, chunks, out_path, constants)


def merge_chunks(work_dir: Path, chunks: list[tuple[int, int]], out_path: Path,
                 constants: dict | None = None) -> pl.DataFrame:
    """Concatenate the finished (seed, start) chunk files, sorted, into `out_path` atomically."""
    frames = [pl.read_parquet(chunk_path(work_dir, s, i)) for s, i in chunks]
    df = pl.concat(frames).sort(["seed", "task_id"])
    df = df.with_columns(pl.lit(v, dtype=pl.Int64).alias(k) for k, v in (constants or {}).items())
    with atomic_path(out_path) as tmp:
        df.write_parquet(tmp)
    return df
