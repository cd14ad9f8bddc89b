"""MATH-format evaluation of a receiver under one message variant (docs/method.md section 5).

For every test task and seed the receiver gets its first human turn with the variant's
message spliced at the marker (pure latents through the adapter, the plan text, nothing, or
a perturbed message), generates a solution in batches, and the last ``\\boxed{}`` is graded
symbolically (`interlat.grading.grade`). Finished (seed, batch) chunks are kept in a work
folder outside Snakemake's outputs so a killed evaluation resumes; the records of all chunks
are written as one Parquet file at the end.
"""

import hashlib
import logging
import time
from pathlib import Path

import polars as pl
import torch
from tqdm import tqdm

from interlat.atomic import atomic_path
from interlat.evaluate.messages import (
    answer_batch,
    prompt_ids,
    raw_messages,
    task_seed,
)
from interlat.grading import extract_boxed, grade
from interlat.model.decode import Sampling
from interlat.workdir import merge_chunks

log = logging.getLogger(__name__)

#: seconds a single answer may take to grade (math-verify in a worker process)
GRADE_TIMEOUT_S = 10.0

RECORD_SCHEMA = {
    "task_id": pl.String,
    "variant": pl.String,
    "seed": pl.Int64,
    "subject": pl.String,
    "level": pl.Int64,
    "prediction": pl.String,
    "extracted": pl.String,
    "correct": pl.Boolean,
    "n_tokens": pl.Int64,
    "message_rows": pl.Int64,
    "seconds": pl.Float64,
}


def discard_stale_chunks(work_dir: Path, receiver, **settings) -> None:
    """Delete finished chunks made with other settings or another receiver (resume only like with like)."""
    import json
    from dataclasses import asdict

    with torch.no_grad():
        weights = sum(float(p.double().sum()) for p in receiver.parameters())
    settings["cfg"] = asdict(settings["cfg"])
    settings["ids"] = hashlib.sha256("\n".join(settings["ids"]).encode()).hexdigest()
    settings["receiver_weights"] = f"{weights:.10e}"
    text = json.dumps(settings, sort_keys=True)
    stamp = work_dir / "settings.json"
    if stamp.exists() and stamp.read_text() != text:
        for old in work_dir.glob("seed*.parquet"):
            old.unlink()
    stamp.write_text(text)


def evaluate_math(
    receiver,
    tokenizer,
    rows: list[dict],
    messages: dict,
    *,
    variant: str,
    seeds: list[int],
    cfg: Sampling,
    batch_size: int,
    work_dir: Path,
    out_path: Path,
    student=None,
) -> pl.DataFrame:
    """Evaluate `variant` over `rows` for every seed; see the module docstring.

    `compressed_<K>` variants need `student` (`interlat.load_student`): each task's message is
    the student's K latents for the task's prompt.
    """
    rows = sorted(rows, key=lambda r: r["id"])
    ids = [r["id"] for r in rows]
    work_dir.mkdir(parents=True, exist_ok=True)
    discard_stale_chunks(work_dir, receiver, variant=variant, cfg=cfg, batch_size=batch_size, ids=ids)
    chunks = [(s, i) for s in seeds for i in range(0, len(rows), batch_size)]
    for seed, start in tqdm(chunks, desc=f"evaluate {variant}", mininterval=2.0):
        part = work_dir / f"seed{seed}-{start:06d}.parquet"
        if part.exists():
            continue
        batch = rows[start : start + batch_size]
        if variant.startswith("compressed_"):
            from interlat.compress.data import emit

            raw = emit(student, tokenizer, [prompt_ids(tokenizer, r, False) for r in batch], student.K, variant)
        else:
            raw = raw_messages(variant, [r["id"] for r in batch], ids, messages, seed)
        gen = torch.Generator().manual_seed(task_seed(seed, batch[0]["id"]))
        t0 = time.perf_counter()
        answers = answer_batch(receiver, tokenizer, batch, raw, variant, cfg, gen)
        dt = (time.perf_counter() - t0) / len(batch)
        recs = []
        for k, (r, (pred, n)) in enumerate(zip(batch, answers, strict=True)):
            gold = r["conversations"][1]["value"]
            recs.append(
                {
                    "task_id": r["id"],
                    "variant": variant,
                    "seed": seed,
                    "subject": r.get("subject", ""),
                    "level": int(r.get("level", 0)),
                    "prediction": pred,
                    "extracted": extract_boxed(pred) or "",
                    "correct": bool(grade(pred, gold, timeout_s=GRADE_TIMEOUT_S)),
                    "n_tokens": n,
                    "message_rows": int(raw[k].shape[0]) if raw is not None else -1,
                    "seconds": dt,
                }
            )
        with atomic_path(part) as tmp:
            pl.DataFrame(recs, schema=RECORD_SCHEMA).write_parquet(tmp)
    return merge_chunks(work_dir, chunks, out_path)


__all__ = ["evaluate_math"]
