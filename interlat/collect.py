"""Latent collection: the sender writes a plan and its last-layer states become the message.

docs/method.md section 1. Tasks are split across ranks (`torchrun`), batched with left padding,
generated with sampling through `interlat.model.decode.decode` (one state per generated plan token:
h_t is the final-norm output at the position from which token t was sampled, so h_1 comes
from the last prompt position). Each finished batch is written as one Parquet part into a
work folder outside Snakemake's outputs, so a killed run resumes without redoing finished
batches; at the end rank 0 hard-links (or copies) the parts into the output folder with a
manifest, which appears whole or not at all. On SIGTERM (a SLURM time limit) each rank stops
after the batch it is collecting, the ranks agree, and the job exits 143 without publishing
(`interlat.runtime.Stopped`); the rerun collects only the missing batches.
`INTERLAT_FAIL_RANK` is a fault-injection hook for tests (see `FAIL_RANK_ENV`).

The work folder is stamped with the settings and the sender's file contents
(`interlat.workdir.open_state`); parts made with other settings (a changed seed, batch size,
sampling, sender or task list) are deleted before collecting, never reused. A task whose plan is empty (the sender stopped at once) has
no message, since a message needs N >= 1 rows; it is listed in an `empty-*.json` record next
to its batch's part, and a batch with no message at all is finished by that record alone.
"""

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import torch

from interlat import runtime, shards
from interlat.atomic import atomic_dir, write_json
from interlat.errors import InterlatError
from interlat.model.decode import Sampling, decode
from interlat.progress import progress
from interlat.text.batching import left_padded_prompts
from interlat.text.chat import render_ids, stop_ids
from interlat.text.prompts import planner_messages
from interlat.workdir import open_state

log = logging.getLogger(__name__)

#: Fault-injection hook for tests: the rank named here raises right after writing its first
#: part, as a crashed rank would (a distributed run must then fail and publish nothing).
FAIL_RANK_ENV = "INTERLAT_FAIL_RANK"


def batch_seed(seed: int, batch_key: str) -> int:
    """A per-batch seed that does not depend on which rank or run draws the batch."""
    return int(hashlib.sha256(f"{seed}:{batch_key}".encode()).hexdigest()[:15], 16)


def dist_info() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment, (0, 1) without it."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def make_batches(tasks: list[dict], batch_size: int) -> list[list[dict]]:
    """Fixed batches over tasks sorted by task_id (the same whatever the rank count). Tasks only
    the compression student uses (split `compress`) are batched after all others, so adding
    them changes no other task's batch, and so none of the plans the receivers train on."""
    batches = []
    for student_only in (False, True):
        group = sorted((t for t in tasks if (t.get("split") == "compress") == student_only), key=lambda t: t["task_id"])
        batches += [group[i : i + batch_size] for i in range(0, len(group), batch_size)]
    return batches


def collect_batch(
    model, tokenizer, batch: list[dict], benchmark: str, cfg: Sampling, seed: int, sender_id: str
):
    """Generate plans for one batch and return their shard messages."""
    device = next(model.parameters()).device
    prompts = [
        render_ids(tokenizer, planner_messages(benchmark, t["problem"]), True) for t in batch
    ]
    ids, mask = left_padded_prompts(tokenizer, prompts, device)
    gen = torch.Generator().manual_seed(seed)
    out = decode(
        model,
        model.get_input_embeddings()(ids),
        mask,
        eos_ids=stop_ids(tokenizer, model),
        cfg=cfg,
        generator=gen,
        keep_states=True,
    )
    messages = []
    for task, prompt, toks, H in zip(batch, prompts, out.tokens, out.states, strict=True):
        if not toks:
            log.warning(
                "task %s: empty plan (the sender stopped at once); stored as empty", task["task_id"]
            )
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


def _empty_name(rank: int, index: int) -> str:
    """Record of the tasks of batch `index` (written by `rank`) whose plan came out empty."""
    return f"empty-r{rank:02d}-{index:05d}.json"


def _batch_index(path: Path) -> int:
    """Batch index of a part or empty record: the last dash-separated field of its stem."""
    return int(path.stem.rsplit("-", 1)[1])


def finished_batches(work_dir: Path) -> dict[int, list[Path]]:
    """Batch index -> the files that finish it (its part, or an all-empty record).

    Dot-prefixed temporary files are never matched: they are not finished work.
    """
    found: dict[int, list[Path]] = {}
    for p in sorted(work_dir.glob("part-*.parquet")):
        found.setdefault(_batch_index(p), []).append(p)
    for p in sorted(work_dir.glob("empty-*.json")):
        if json.loads(p.read_text())["all"]:
            found.setdefault(_batch_index(p), []).append(p)
    return found


def run_settings(tasks, *, benchmark, sender_id, cfg, batch_size, seed, dtype) -> dict:
    """The settings that decide the content of the parts (the sender's files are an input)."""
    ids = "\n".join(sorted(t["task_id"] for t in tasks))
    return {
        "benchmark": benchmark,
        "sender_id": sender_id,
        "sampling": asdict(cfg),
        "batch_size": batch_size,
        "seed": seed,
        "dtype": dtype,
        "tasks": hashlib.sha256(ids.encode()).hexdigest(),
    }


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
    settings = run_settings(
        tasks, benchmark=benchmark, sender_id=sender_id, cfg=cfg, batch_size=batch_size, seed=seed, dtype=dtype,
    )  # fmt: skip
    open_state(work_dir, settings, {"sender": sender_path}, rank=rank)
    batches = make_batches(tasks, batch_size)
    mine = [(i, b) for i, b in enumerate(batches) if i % world == rank]
    done = finished_batches(work_dir)
    todo = [(i, b) for i, b in mine if i not in done]
    log.info(
        "rank %d/%d: %d batches, %d already done", rank, world, len(mine), len(mine) - len(todo)
    )
    n_tokens = n_empty = n_done = 0
    start = time.perf_counter()
    with progress(total=len(todo), desc=f"collect r{rank}") as bar:
        for i, batch in todo:
            messages = collect_batch(
                model,
                tokenizer,
                batch,
                benchmark,
                cfg,
                batch_seed(seed, batch[0]["task_id"]),
                sender_id,
            )
            for old in work_dir.glob(f"empty-r*-{i:05d}.json"):  # of an interrupted try
                old.unlink()
            kept = [m for m in messages if m.n_tokens > 0]
            empty = [m.task_id for m in messages if m.n_tokens == 0]
            if empty:  # written first: a part on disk always has its record
                record = {"task_ids": empty, "all": not kept}
                write_json(work_dir / _empty_name(rank, i), record)
            if kept:
                shards.write_part(work_dir / shards.part_name(rank, i), kept, dtype=dtype)
            if os.environ.get(FAIL_RANK_ENV) == str(rank):
                raise RuntimeError(f"rank {rank}: failure injected by {FAIL_RANK_ENV} (tests)")
            n_tokens += sum(m.n_tokens for m in kept)
            n_empty += len(empty)
            n_done += 1
            bar.update(1)
            bar.set_postfix(tok_s=f"{n_tokens / (time.perf_counter() - start):.0f}")
            if runtime.stop_requested():  # SIGTERM: this rank stops; the ranks agree in run_collect
                break
    return {
        "batches": len(mine),
        "resumed": len(mine) - len(todo),
        "done": len(mine) - len(todo) + n_done,
        "tokens": n_tokens,
        "empty": n_empty,
    }


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link `src` to `dst` (parts are never modified in place), copying across devices."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def publish(
    work_dir: Path, out_dir: Path, *, n_batches: int, sender_path: str, sender_id: str, dtype: str
) -> None:
    """Check every batch is finished, then put its parts + a manifest in `out_dir` atomically.

    The work folder is left as it is (deleting it is the caller's choice).
    """
    found = finished_batches(work_dir)
    missing = sorted(set(range(n_batches)) - set(found))
    if missing:
        raise InterlatError(
            f"{work_dir}: batches {missing[:10]} of {n_batches} have no part (a rank failed?)"
        )
    twice = {i: [p.name for p in ps] for i, ps in found.items() if len(ps) > 1}
    if twice:
        raise InterlatError(f"{work_dir}: batches finished more than once: {twice}")
    parts = sorted(p for ps in found.values() for p in ps if p.suffix == ".parquet")
    n_empty = sum(len(json.loads(p.read_text())["task_ids"]) for p in work_dir.glob("empty-*.json"))
    with atomic_dir(out_dir) as tmp:
        entries = {}
        for p in parts:
            _link_or_copy(p, tmp / p.name)
            entries[p.name] = shards.sha256_file(tmp / p.name)
        index = shards.read_index(tmp) if parts else None
        count = 0 if index is None else index.height
        shards.write_manifest(
            tmp,
            sender_path=sender_path,
            sender_id=sender_id,
            dtype=dtype,
            hidden_size=int(index["hidden_size"][0]) if count else 0,
            parts=entries,
            counts={"messages": count, "empty_plans": n_empty},
        )


def run_collect(*, sender: Path, sender_id: str | None, data_dir: Path, benchmark: str, subject: str,
                cfg: Sampling, batch_size: int, seed: int, dtype: str, work_dir: Path, out: Path) -> str:
    """The collect stage: one subject's tasks, split across torchrun's ranks; rank 0 publishes the shards."""
    from interlat.data import load_tasks
    from interlat.data.math.records import SUBJECT_CONFIGS
    from interlat.model.folders import load_lm
    from interlat.text.tokenizer import load_tokenizer

    name = SUBJECT_CONFIGS.get(subject, subject)
    tasks = [t for t in load_tasks(data_dir) if t["subject"] == name]
    if not tasks:
        raise InterlatError(f"{data_dir}: field \"subject\": no task of subject {subject!r}")
    rank, world = dist_info()
    runtime.init_process_group(world)
    device = runtime.local_device()
    tok = load_tokenizer(sender)
    if not tok.chat_template:
        raise InterlatError(f"{sender}: field \"chat_template\": the sender's tokenizer has none")
    model = load_lm(sender, runtime.compute_dtype(device), "sender model").to(device).eval()
    sid = sender_id or sender.name
    with runtime.sigterm_stops():  # SIGTERM: stop after the batch being collected (its part is kept), exit 143
        stats = collect(model, tok, tasks, benchmark=benchmark, sender_path=str(sender), sender_id=sid, cfg=cfg,
                        batch_size=batch_size, seed=seed, dtype=dtype, work_dir=work_dir, out_dir=out)
        if runtime.stop_requested(world):  # agreed by every rank, once each has left its loop
            runtime.destroy_process_group(world)
            raise runtime.Stopped(f"batch {stats['done']} of {stats['batches']} (rank {rank})", work_dir)
    runtime.barrier(world)
    if rank == 0:
        n_batches = len(make_batches(tasks, batch_size))
        publish(work_dir, out, n_batches=n_batches, sender_path=str(sender), sender_id=sid, dtype=dtype)
    runtime.barrier(world)
    runtime.destroy_process_group(world)
    return f"rank {rank}: {stats} -> {out}"
