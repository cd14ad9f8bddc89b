"""Latent collection: the sender writes a plan and its last-layer states become the message.

METHOD.md section 1. Tasks are split across ranks (`torchrun`), batched with left padding,
generated with sampling through `interlat.decode.decode` (one state per generated plan token:
h_t is the final-norm output at the position from which token t was sampled, so h_1 comes
from the last prompt position). Each finished batch is written as one Parquet part into a
work folder outside Snakemake's outputs, so a killed run resumes without redoing finished
batches; at the end the parts and a manifest are moved into the output folder.
"""

import hashlib
import logging
import os
import shutil
import time
from pathlib import Path

import torch
from tqdm import tqdm

from interlat import shards
from interlat.chat import render_ids
from interlat.decode import Sampling, decode
from interlat.errors import InterlatError
from interlat.prompts import planner_messages

log = logging.getLogger(__name__)


def batch_seed(seed: int, batch_key: str) -> int:
    """A per-batch seed that does not depend on which rank or run draws the batch."""
    return int(hashlib.sha256(f"{seed}:{batch_key}".encode()).hexdigest()[:15], 16)


def dist_info() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment, (0, 1) without it."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def eos_ids(model) -> set[int]:
    """The model's end-of-sequence ids from its generation config (an int or a list)."""
    ids = getattr(model.generation_config, "eos_token_id", None)
    if ids is None:
        return set()
    return {ids} if isinstance(ids, int) else set(ids)


def make_batches(tasks: list[dict], batch_size: int) -> list[list[dict]]:
    """Fixed batches over tasks sorted by task_id (the same whatever the rank count)."""
    tasks = sorted(tasks, key=lambda t: t["task_id"])
    return [tasks[i : i + batch_size] for i in range(0, len(tasks), batch_size)]


def left_padded_prompts(tokenizer, prompts: list[list[int]], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token rows: (ids [B, S], mask [B, S])."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = torch.tensor(p)
        mask[i, width - len(p) :] = 1
    return ids.to(device), mask.to(device)


def collect_batch(model, tokenizer, batch: list[dict], benchmark: str, cfg: Sampling, seed: int, sender_id: str):
    """Generate plans for one batch and return their shard messages."""
    device = next(model.parameters()).device
    prompts = [render_ids(tokenizer, planner_messages(benchmark, t["problem"]), True) for t in batch]
    ids, mask = left_padded_prompts(tokenizer, prompts, device)
    gen = torch.Generator().manual_seed(seed)
    eos = {tokenizer.eos_token_id} | eos_ids(model)
    out = decode(
        model, model.get_input_embeddings()(ids), mask, eos_ids=eos, cfg=cfg, generator=gen, keep_states=True
    )
    messages = []
    for task, prompt, toks, H in zip(batch, prompts, out.tokens, out.states, strict=True):
        if not toks:
            log.warning("task %s: empty plan (the sender stopped at once); stored as empty", task["task_id"])
        messages.append(
            shards.Message(
                task_id=task["task_id"],
                benchmark=benchmark,
                split=task["split"],
                subject=task["subject"],
                level=int(task.get("level", 0)),
                task=task["problem"],
                plan=tokenizer.decode(toks, skip_special_tokens=False),
                prompt_token_ids=prompt,
                plan_token_ids=toks,
                H=H.float().cpu(),
                sender_id=sender_id,
            )
        )
    return messages


def collect(
    model,
    tokenizer,
    tasks: list[dict],
    *,
    benchmark: str,
    sender_path: str,
    sender_id: str,
    cfg: Sampling,
    batch_size: int,
    seed: int,
    dtype: str,
    work_dir: Path,
    out_dir: Path,
) -> dict:
    """Collect messages for `tasks` (this rank's share), resuming from `work_dir`; see module doc."""
    rank, world = dist_info()
    work_dir.mkdir(parents=True, exist_ok=True)
    batches = make_batches(tasks, batch_size)
    mine = [(i, b) for i, b in enumerate(batches) if i % world == rank]
    done = {int(p.stem.rsplit("-", 1)[1]) for p in work_dir.glob("part-*.parquet")}
    todo = [(i, b) for i, b in mine if i not in done]
    log.info("rank %d/%d: %d batches, %d already done", rank, world, len(mine), len(mine) - len(todo))
    n_tokens = 0
    start = time.perf_counter()
    with tqdm(total=len(todo), desc=f"collect r{rank}", mininterval=2.0) as bar:
        for i, batch in todo:
            messages = collect_batch(
                model, tokenizer, batch, benchmark, cfg, batch_seed(seed, batch[0]["task_id"]), sender_id
            )
            messages = [m for m in messages if m.n_tokens > 0] or messages
            shards.write_part(work_dir / shards.part_name(rank, i), messages, dtype=dtype)
            n_tokens += sum(m.n_tokens for m in messages)
            bar.update(1)
            bar.set_postfix(tok_s=f"{n_tokens / (time.perf_counter() - start):.0f}")
    return {"batches": len(mine), "resumed": len(mine) - len(todo), "tokens": n_tokens}


def publish(work_dir: Path, out_dir: Path, *, n_batches: int, sender_path: str, sender_id: str, dtype: str) -> None:
    """Check every batch's part exists, then move parts + manifest into `out_dir` atomically."""
    parts = sorted(work_dir.glob("part-*.parquet"))
    if len(parts) != n_batches:
        raise InterlatError(f"{work_dir}: {len(parts)} parts, expected {n_batches} (a rank failed?)")
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    entries, hidden, count = {}, None, 0
    for p in parts:
        shutil.copy2(p, tmp / p.name)
        entries[p.name] = hashlib.sha256((tmp / p.name).read_bytes()).hexdigest()
    index = shards.read_index(tmp)
    count = index.height
    hidden = int(index["hidden_size"][0]) if count else 0
    shards.write_manifest(
        tmp,
        sender_path=sender_path,
        sender_id=sender_id,
        dtype=dtype,
        hidden_size=hidden,
        parts=entries,
        counts={"messages": count},
    )
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
