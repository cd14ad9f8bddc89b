"""MATH-format evaluation of a receiver under one message variant (METHOD.md section 5).

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

from interlat import variants
from interlat.atomic import atomic_path
from interlat.batching import pad_right
from interlat.chat import render_ids
from interlat.decode import Sampling, decode
from interlat.errors import InterlatError
from interlat.grading import extract_boxed, grade
from interlat.model.insertion import insert_message, left_pad
from interlat.model.receiver import marker_positions
from interlat.prompts import MARKER
from interlat.receiver_data import ROLES, chat_messages, pad_messages

log = logging.getLogger(__name__)

#: how a variant's message reaches the receiver: adapted latents, plan text, or nothing
TEXT_VARIANTS = {"text", "cot_full"}
EMPTY_VARIANTS = {"no_comm"}
PLAIN_VARIANTS = {"no_cot"}

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


def task_seed(seed: int, task_id: str) -> int:
    return int(hashlib.sha256(f"{seed}:{task_id}".encode()).hexdigest()[:8], 16)


def variant_message(variant: str, H: torch.Tensor, other: torch.Tensor, seed: int, task_id: str) -> torch.Tensor:
    """The raw message for a latent variant (before the adapter)."""
    base = "interlat" if variant == "cross_family" else variant
    return variants.perturb(base, H, seed=task_seed(seed, task_id), other=other if base == "cross_task" else None)


def is_latent(variant: str) -> bool:
    """Whether the variant's message is a (perturbed) latent message, not text or nothing."""
    return variant not in TEXT_VARIANTS | EMPTY_VARIANTS | PLAIN_VARIANTS


def raw_messages(variant: str, task_ids: list[str], all_ids: list[str], messages: dict, seed: int):
    """Each task's raw message under a latent variant (None for the others).

    `cross_task` takes the message of another task of `all_ids` (sorted), drawn per (seed, task).
    """
    if not is_latent(variant):
        return None
    if variant == "cross_task" and len(all_ids) < 2:
        raise InterlatError(f"variant cross_task: {len(all_ids)} task, needs at least 2")
    raw = []
    for tid in task_ids:
        i = all_ids.index(tid)
        other_id = all_ids[(i + 1 + task_seed(seed, tid) % (len(all_ids) - 1)) % len(all_ids)]
        raw.append(variant_message(variant, messages[tid].H.float(), messages[other_id].H.float(), seed, tid))
    return raw


def prompt_ids(tokenizer, row: dict, plain: bool) -> list[int]:
    msgs = chat_messages(row, "none" if plain else "interlat")
    return render_ids(tokenizer, msgs[:1], generation=True)


@torch.no_grad()
def generate_with_message(receiver, tokenizer, prompts: list[list[int]], plans: list[str], raw, variant: str,
                          cfg: Sampling, generator) -> list[tuple[str, int]]:
    """Generate from rendered chat prompts, each with the variant's message spliced at its marker.

    `prompts` are token ids (one marker each, none for the `no_cot` variant); `plans` the
    plan texts (text variants); `raw` the raw latent messages (latent variants), adapted
    and capped at the receiver's `prepended_length`. Returns (text, generated tokens) per row.
    Shared by MATH answers and ALFWorld steps (any number of turns after the first).
    """
    device = receiver.device
    plain = variant in PLAIN_VARIANTS
    lengths = torch.tensor([len(i) for i in prompts], device=device)
    input_ids, _ = pad_right(prompts, tokenizer.pad_token_id)
    input_ids = input_ids.to(device)
    embeds = receiver.embed(input_ids)
    if not plain:
        marker_pos = marker_positions(input_ids, tokenizer.convert_tokens_to_ids(MARKER), f"variant {variant}: prompt")
        if variant in TEXT_VARIANTS:
            plan, plan_len = pad_right([tokenizer(p, add_special_tokens=False)["input_ids"] for p in plans], tokenizer.pad_token_id)
            msg, msg_len = receiver.embed(plan.to(device)), plan_len.to(device)
        elif variant in EMPTY_VARIANTS:
            msg = embeds.new_zeros(len(prompts), 1, embeds.shape[-1])
            msg_len = torch.zeros(len(prompts), dtype=torch.long, device=device)
        else:
            H, H_len = pad_messages(raw)
            H_len = H_len.clamp(max=receiver.prepended_length).to(device)
            msg = receiver.adapt(H.to(device), H_len)
            msg_len = H_len
        bop, eop = receiver.delimiters()
        labels = torch.zeros_like(input_ids)
        embeds, _, _, lengths = insert_message(embeds, labels, lengths, marker_pos, msg, msg_len, bop, eop)
    embeds, mask = left_pad(embeds, lengths)
    out = decode(receiver.lm, embeds, mask, eos_ids={tokenizer.eos_token_id}, cfg=cfg, generator=generator)
    return [(tokenizer.decode(t, skip_special_tokens=True), len(t)) for t in out.tokens]


def answer_batch(receiver, tokenizer, rows, messages, variant: str, cfg: Sampling, generator) -> list[tuple[str, int]]:
    """Generate answers for a batch; `messages` are raw latent messages (latent variants)."""
    plain = variant in PLAIN_VARIANTS
    prompts = [prompt_ids(tokenizer, r, plain) for r in rows]
    return generate_with_message(receiver, tokenizer, prompts, [r["plan"] for r in rows], messages, variant, cfg, generator)


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


def merge_chunks(work_dir: Path, chunks: list[tuple[int, int]], out_path: Path) -> pl.DataFrame:
    """Concatenate the finished (seed, start) chunk files, sorted, into `out_path` atomically."""
    frames = [pl.read_parquet(work_dir / f"seed{s}-{i:06d}.parquet") for s, i in chunks]
    df = pl.concat(frames).sort(["seed", "task_id"])
    with atomic_path(out_path) as tmp:
        df.write_parquet(tmp)
    return df


__all__ = ["evaluate_math", "answer_batch", "generate_with_message", "raw_messages", "ROLES"]
