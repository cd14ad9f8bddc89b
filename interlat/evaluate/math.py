"""MATH-format evaluation of a receiver under one message variant (docs/method.md section 5).

For every test task and seed the receiver gets its first human turn with the variant's
message spliced at the marker (pure latents through the adapter, the plan text, nothing, or
a perturbed message), generates a solution in batches, and the last ``\\boxed{}`` is graded
symbolically (`interlat.grading.grade`). Finished (seed, batch) chunks are kept in a work
folder outside Snakemake's outputs so a killed evaluation resumes; the folder is stamped with
the settings and the contents of the inputs (receiver, conversations, latents and, for
`compressed_<K>`, the student: `interlat.workdir.open_state`), and chunks of other settings
are deleted, never reused. The records of all chunks are written as one Parquet file at the end.
"""

import hashlib
import logging
import time
from dataclasses import asdict
from pathlib import Path

import polars as pl
import torch

from interlat.evaluate.messages import (
    answer_batch,
    prompt_ids,
    raw_messages,
    task_seed,
)
from interlat.grading import extract_boxed, grade
from interlat.model.decode import Sampling
from interlat.workdir import open_state, run_chunks

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
    inputs: dict | None = None,
    constants: dict | None = None,
) -> pl.DataFrame:
    """Evaluate `variant` over `rows` for every seed; see the module docstring.

    `compressed_<K>` variants need `student` (`interlat.load_student`): each task's message is
    the student's K latents for the task's prompt. `inputs` (name -> file or folder: receiver,
    conversations, latents, student) stamp the work folder with the settings.
    """
    rows = sorted(rows, key=lambda r: r["id"])
    ids = [r["id"] for r in rows]
    settings = {"variant": variant, "sampling": asdict(cfg), "batch_size": batch_size,
                "ids": hashlib.sha256("\n".join(ids).encode()).hexdigest()}
    open_state(work_dir, settings, inputs)
    chunks = [(s, i) for s in seeds for i in range(0, len(rows), batch_size)]

    def run_chunk(seed: int, start: int) -> pl.DataFrame:
        batch = rows[start : start + batch_size]
        if variant.startswith("compressed_"):
            from interlat.compress.data import emit

            raw = emit(student, tokenizer, [prompt_ids(tokenizer, r, False) for r in batch], student.K, variant)
        else:
            raw = raw_messages(variant, [r["id"] for r in batch], ids, messages, seed, cap=receiver.prepended_length)
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
        return pl.DataFrame(recs, schema=RECORD_SCHEMA)

    return run_chunks(work_dir, chunks, run_chunk, out_path, desc=f"evaluate {variant}", constants=constants)


__all__ = ["evaluate_math"]
