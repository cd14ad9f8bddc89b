"""The `interlat` command line: one command per pipeline stage, each a thin wrapper.

Commands never read config.yaml: every value arrives as an option (Snakemake passes them
from the validated config through `params:`). Bad input exits 2 with one line naming the
file, row and field (`InterlatError`); outputs are written to temporary paths and renamed.
"""

import json
import logging
import os
import re
from pathlib import Path

import click

from interlat.data.alfworld.scenes import TASK_TYPES as ALFWORLD_TASK_TYPES
from interlat.errors import InterlatError
from interlat.jsonl import read_jsonl

log = logging.getLogger("interlat")
CTX = {"show_default": True}


def opt(*names, **kw):
    """click.option with show_default on."""
    return click.option(*names, show_default=True, **kw)


def seeds_type(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in str(text).split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected comma-separated integers") from None
    if not seeds:
        raise click.BadParameter("empty seed list")
    return seeds


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for torch (default: torch's choice).")
def main(verbose: bool, threads: int | None) -> None:
    """Interlat: latent-space communication between LLM agents (arXiv 2511.09149)."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if threads:
        import torch

        torch.set_num_threads(threads)


def load_tasks(data_dir: Path) -> list[dict]:
    """All records of a benchmark folder (train.jsonl + test.jsonl)."""
    return read_jsonl(data_dir / "train.jsonl") + read_jsonl(data_dir / "test.jsonl")


# ---------------------------------------------------------------------------- data
@main.command()
@opt("--benchmark", type=click.Choice(["math", "alfworld"]), default="math", help="Benchmark to make or download.")
@opt("--source", default="generated", help="'generated' (embedded, offline), 'hf' (MATH: download with datasets), 'official' (ALFWorld: the release) or a local PATH.")
@opt("--dataset-id", default="EleutherAI/hendrycks_math", help="Hugging Face dataset id for --source hf.")
@opt("--subjects", default="algebra,prealgebra", help="MATH: comma-separated subject slugs (hendrycks MATH config names).")
@opt("--task-types", default=",".join(ALFWORLD_TASK_TYPES), help="ALFWorld: comma-separated task types.")
@opt("--n-train", type=click.IntRange(1), default=400, help="Generated problems per subject (ALFWorld: games per task type), train split.")
@opt("--n-test", type=click.IntRange(1), default=60, help="MATH: generated problems per subject, test split.")
@opt("--n-valid-seen", type=click.IntRange(1), default=2, help="ALFWorld: generated valid_seen games per task type.")
@opt("--n-valid-unseen", type=click.IntRange(1), default=2, help="ALFWorld: generated valid_unseen games per task type.")
@opt("--max-train", type=click.IntRange(0), default=0, help="ALFWorld: keep at most this many train games per task type (0: all).")
@opt("--max-test", type=click.IntRange(0), default=0, help="Keep at most this many test tasks per subject (ALFWorld: per task type and split; 0: all).")
@opt("--max-steps", type=click.IntRange(4), default=20, help="ALFWorld: generated games are solved by the expert within 3/4 of this many steps.")
@opt("--expert", type=click.Choice(["handcoded", "planner"]), default="handcoded", help="ALFWorld: expert of the training trajectories.")
@opt("--alfworld-data", default=None, help="ALFWorld --source official: the $ALFWORLD_DATA folder (downloaded there unless it holds json_2.1.1/).")
@opt("--workers", type=click.IntRange(1), default=1, help="ALFWorld: processes generating games and replaying the expert.")
@opt("--seed", type=int, default=0, help="Random seed.")
@opt("--out", type=click.Path(path_type=Path), required=True, help="Output folder (train.jsonl, test.jsonl; ALFWorld also the games).")
def data(benchmark, source, dataset_id, subjects, task_types, n_train, n_test, n_valid_seen, n_valid_unseen, max_train, max_test, max_steps, expert, alfworld_data, workers, seed, out):
    """Make or download a benchmark as records (MATH-format problems, or ALFWorld games).

    Example: interlat data --source generated --seed 0 --out results/default/data/math

    Example: interlat data --benchmark alfworld --source generated --n-train 10 --out results/default/data/alfworld
    """
    from interlat.atomic import atomic_dir, write_jsonl

    if benchmark == "alfworld":
        from interlat.data.alfworld import records as alfworld_records

        types = [t.strip() for t in task_types.split(",") if t.strip()]
        with atomic_dir(out) as tmp:
            records = alfworld_records.build(
                tmp, source=source, task_types=types, n_train=n_train, n_valid_seen=n_valid_seen,
                n_valid_unseen=n_valid_unseen, max_train=max_train, max_test=max_test, max_steps=max_steps,
                expert=expert, alfworld_data=alfworld_data, seed=seed, workers=workers,
            )  # fmt: skip
            train = sorted((r for r in records if r["split"] == "train"), key=lambda r: r["task_id"])
            write_jsonl(tmp / "train.jsonl", train)
            write_jsonl(tmp / "test.jsonl", sorted((r for r in records if r["split"] != "train"), key=lambda r: r["task_id"]))
        click.echo(f"{len(records)} ALFWorld games ({len(train)} train) -> {out}", err=True)
        return
    from interlat.data.math import generated as math_generated
    from interlat.data.math import records as math_records

    slugs = [s.strip() for s in subjects.split(",") if s.strip()]
    if source == "generated":
        names = [math_records.SUBJECT_CONFIGS.get(s, s) for s in slugs]
        unknown = [s for s in names if s not in math_generated.SUBJECTS]
        if unknown:
            raise InterlatError(f"--subjects: {unknown[0]!r}: generated subjects are {math_generated.SUBJECTS}")
        records = math_generated.generate(seed=seed, n_train=n_train, n_test=n_test, subjects=tuple(names))
    elif source == "hf":
        records = math_records.load_hf(dataset_id, slugs)
    else:
        records = math_records.load_local(source)
    if max_test:
        kept, seen = [], {}
        for r in sorted(records, key=lambda r: r["task_id"]):
            if r["split"] == "test":
                seen[r["subject"]] = seen.get(r["subject"], 0) + 1
                if seen[r["subject"]] > max_test:
                    continue
            kept.append(r)
        records = kept
    with atomic_dir(out) as tmp:
        for split in ("train", "test"):
            write_jsonl(tmp / f"{split}.jsonl", sorted((r for r in records if r["split"] == split), key=lambda r: r["task_id"]))
    click.echo(f"{len(records)} records -> {out}", err=True)


# ---------------------------------------------------------------------------- tokenizer
def record_text(r: dict) -> str:
    """All text of a benchmark record: task, plan, solution, (ALFWorld) observation and expert turns."""
    parts = [str(r.get(k, "")) for k in ("problem", "plan", "solution", "observation")]
    return " ".join(parts + [t["value"] for t in r.get("trajectory", [])])


@main.command()
@opt("--data", "data_dirs", type=click.Path(exists=True, file_okay=False, path_type=Path), multiple=True, required=True, help="Benchmark folder from `interlat data` (repeatable: one per benchmark).")
@opt("--out", type=click.Path(path_type=Path), required=True, help="Output tokenizer folder.")
def tokenizer(data_dirs, out):
    """Train the embedded default's word-level tokenizer (digits split, chat template).

    Example: interlat tokenizer --data results/default/data/math --data results/default/data/alfworld
    --out results/default/models/tokenizer
    """
    from interlat.atomic import atomic_dir
    from interlat.text.prompts import (
        ALFWORLD_PHRASES,
        PLAN_SENTENCE,
        PLANNER_INSTRUCTION,
        STUDENT_PREFIX,
    )
    from interlat.text.tokenizer import build_tokenizer

    corpus = [record_text(r) for d in data_dirs for r in load_tasks(d)]
    corpus += [*PLANNER_INSTRUCTION.values(), PLAN_SENTENCE, STUDENT_PREFIX, *ALFWORLD_PHRASES]
    tok = build_tokenizer(corpus)
    with atomic_dir(out) as tmp:
        tok.save_pretrained(tmp)
    click.echo(f"vocabulary {len(tok)} -> {out}", err=True)


# ---------------------------------------------------------------------------- models
@main.command()
@opt("--arch", type=click.Choice(["qwen2", "llama"]), default="qwen2", help="Architecture of the tiny model.")
@opt("--tokenizer", "tok_dir", type=click.Path(path_type=Path), help="Tokenizer folder (tiny models).")
@opt("--hf-id", default=None, help="Download this Hugging Face model instead of building one (paper scale).")
@opt("--hidden-size", type=click.IntRange(8), default=128, help="Hidden size.")
@opt("--layers", type=click.IntRange(1), default=2, help="Decoder layers.")
@opt("--heads", type=click.IntRange(1), default=4, help="Attention heads.")
@opt("--kv-heads", type=click.IntRange(1), default=2, help="Key/value heads.")
@opt("--intermediate-size", type=click.IntRange(8), default=256, help="MLP width.")
@opt("--max-positions", type=click.IntRange(16), default=512, help="Maximum sequence length.")
@opt("--pretrain-data", type=click.Path(path_type=Path), multiple=True, help="Benchmark folder: pretrain on its (task -> plan) pairs (repeatable).")
@opt("--pretrain-steps", type=click.IntRange(0), default=0, help="Pretraining steps (0: random init, e.g. receivers).")
@opt("--batch-size", type=click.IntRange(1), default=32, help="Pretraining batch size.")
@opt("--lr", type=float, default=3e-3, help="Pretraining peak learning rate.")
@opt("--seed", type=int, default=0, help="Random seed (initialisation and data order).")
@opt("--out", type=click.Path(path_type=Path), required=True, help="Output model folder (HF format).")
def models(arch, tok_dir, hf_id, hidden_size, layers, heads, kv_heads, intermediate_size, max_positions, pretrain_data, pretrain_steps, batch_size, lr, seed, out):
    """Build a tiny Qwen2/LLaMA model (optionally pretrain it as the sender), or download one.

    Example: interlat models --arch qwen2 --tokenizer results/default/models/tokenizer
    --pretrain-data results/default/data/math --pretrain-data results/default/data/alfworld
    --pretrain-steps 1500 --out results/default/models/sender
    """
    from interlat.atomic import atomic_dir
    from interlat.text.tokenizer import load_tokenizer

    if hf_id:
        from huggingface_hub import snapshot_download

        with atomic_dir(out) as tmp:
            snapshot_download(hf_id, local_dir=tmp, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken"])
        return
    if tok_dir is None or not (tok_dir / "tokenizer_config.json").is_file():
        raise InterlatError(f"{tok_dir}: file \"tokenizer_config.json\": missing (--tokenizer)")
    from interlat.model.build import build_model
    from interlat.models import plan_conversations, pretrain

    tok = load_tokenizer(tok_dir)
    model = build_model(
        arch, vocab_size=len(tok), pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
        hidden_size=hidden_size, num_layers=layers, num_heads=heads, num_kv_heads=kv_heads,
        intermediate_size=intermediate_size, max_positions=max_positions, seed=seed,
    )
    losses = []
    if pretrain_steps:
        if not pretrain_data:
            raise InterlatError("--pretrain-data: required with --pretrain-steps > 0")
        conversations = []
        for folder in pretrain_data:
            records = [r for r in read_jsonl(Path(folder) / "train.jsonl") if r.get("plan")]
            if not records:
                raise InterlatError(f"{folder}/train.jsonl: field \"plan\": no record has a reference plan")
            for bench in sorted({r.get("benchmark", "math") for r in records}):  # each with its planner prompt
                conversations += plan_conversations([r for r in records if r.get("benchmark", "math") == bench], bench)
        losses = pretrain(model, tok, conversations, steps=pretrain_steps, batch_size=batch_size, lr=lr, seed=seed)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / "pretrain_loss.json").write_text(json.dumps([round(x, 5) for x in losses]))
    click.echo(f"{arch} {sum(p.numel() for p in model.parameters())} parameters -> {out}", err=True)


# ---------------------------------------------------------------------------- collect
@main.command()
@opt("--sender", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True, help="Sender model folder (HF format).")
@opt("--sender-id", default=None, help="Model id recorded in the shards (default: the folder name).")
@opt("--data", "data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True, help="Benchmark folder.")
@opt("--benchmark", default="math", help="Benchmark name (selects the planner prompt).")
@opt("--subject", required=True, help="Collect the tasks of this subject (slug, e.g. algebra).")
@opt("--batch-size", type=click.IntRange(1), default=64, help="Tasks per generation batch (and per Parquet part).")
@opt("--temperature", type=float, default=0.8, help="Sampling temperature.")
@opt("--top-p", type=float, default=0.9, help="Nucleus sampling mass.")
@opt("--top-k", type=int, default=50, help="Top-k sampling.")
@opt("--max-new-tokens", type=click.IntRange(1), default=96, help="Longest plan in tokens.")
@opt("--dtype", type=click.Choice(["bfloat16", "float16", "float32"]), default="bfloat16", help="Storage dtype of the states.")
@opt("--seed", type=int, default=0, help="Random seed.")
@opt("--work-dir", type=click.Path(path_type=Path), required=True, help="Resumable state (outside Snakemake's outputs).")
@opt("--out", type=click.Path(path_type=Path), required=True, help="Output shard folder.")
def collect(sender, sender_id, data_dir, benchmark, subject, batch_size, temperature, top_p, top_k, max_new_tokens, dtype, seed, work_dir, out):
    """Collect latent messages: the sender's plans and last-layer states, as Parquet shards.

    Run under `torchrun --nproc_per_node=N` to split tasks across ranks.

    Example: interlat collect --sender results/default/models/sender --data results/default/data/math
    --subject Algebra --work-dir work/default/collect/math/Algebra --out results/default/latents/math/sender/Algebra
    """
    import torch
    from transformers import AutoModelForCausalLM

    from interlat import collect as col
    from interlat.data.math.records import SUBJECT_CONFIGS
    from interlat.model.decode import Sampling
    from interlat.text.tokenizer import load_tokenizer

    name = SUBJECT_CONFIGS.get(subject, subject)
    tasks = [t for t in load_tasks(data_dir) if t["subject"] == name]
    if not tasks:
        raise InterlatError(f"{data_dir}: field \"subject\": no task of subject {subject!r}")
    rank, world = col.dist_info()
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
    dt = torch.bfloat16 if device.startswith("cuda") else torch.float32
    tok = load_tokenizer(sender)
    if not tok.chat_template:
        raise InterlatError(f"{sender}: field \"chat_template\": the sender's tokenizer has none")
    model = AutoModelForCausalLM.from_pretrained(sender, dtype=dt).to(device).eval()
    cfg = Sampling(temperature, top_p, top_k, max_new_tokens)
    sid = sender_id or sender.name
    stats = col.collect(model, tok, tasks, benchmark=benchmark, sender_path=str(sender), sender_id=sid, cfg=cfg,
                        batch_size=batch_size, seed=seed, dtype=dtype, work_dir=work_dir, out_dir=out)
    if world > 1:
        dist.barrier()
    if rank == 0:
        n_batches = len(col.make_batches(tasks, batch_size))
        col.publish(work_dir, out, n_batches=n_batches, sender_path=str(sender), sender_id=sid, dtype=dtype)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    click.echo(f"rank {rank}: {stats} -> {out}", err=True)


# ---------------------------------------------------------------------------- convert
@main.command()
@opt("--latents", type=click.Path(exists=True, path_type=Path), multiple=True, required=True, help="Shard folders (repeatable).")
@opt("--data", "data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True, help="Benchmark folder (ground truth).")
@opt("--benchmark", type=click.Choice(["math", "alfworld"]), default="math", help="Benchmark (how the turns after the first are built).")
@opt("--strict/--no-strict", default=True, help="Fail on the first join problem instead of writing rejects.")
@opt("--out", type=click.Path(path_type=Path), required=True, help="Output folder (train.jsonl, test.jsonl, rejects.csv).")
def convert(latents, data_dir, benchmark, strict, out):
    """Join messages with ground truth by task_id into training conversations (polars).

    Train-split tasks go to train.jsonl, all others (MATH test, ALFWorld valid_seen and
    valid_unseen) to test.jsonl.

    Example: interlat convert --latents results/default/latents/math/sender/Algebra
    --data results/default/data/math --out results/default/convert/math
    """
    import polars as pl

    from interlat import convert as conv
    from interlat import shards
    from interlat.atomic import atomic_dir, write_jsonl

    index = pl.concat([shards.read_index(p) for p in latents], how="vertical_relaxed")
    manifests = [shards.read_manifest(p) for p in latents]
    hidden = int(manifests[0]["hidden_size"])
    truth = pl.concat([conv.truth_frame(read_jsonl(data_dir / name), benchmark, str(data_dir / name))
                       for name in ("train.jsonl", "test.jsonl")], how="vertical_relaxed")
    rows, rejects = conv.convert(index, truth, hidden_size=hidden, strict=strict, where=str(latents[0]), benchmark=benchmark)
    with atomic_dir(out) as tmp:
        write_jsonl(tmp / "train.jsonl", [r for r in rows if r["split"] == "train"])
        write_jsonl(tmp / "test.jsonl", [r for r in rows if r["split"] != "train"])
        rejects.write_csv(tmp / "rejects.csv")
    click.echo(f"{len(rows)} conversations, {rejects.height} rejects -> {out}", err=True)


# ---------------------------------------------------------------------------- train
@main.command()
@opt("--base", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True, help="Base receiver LM folder (HF format).")
@opt("--conversations", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True, help="train.jsonl from `interlat convert`.")
@opt("--latents", type=click.Path(exists=True, path_type=Path), multiple=True, help="Shard folders with the messages (mode interlat).")
@opt("--mode", type=click.Choice(["interlat", "text", "none"]), default="interlat", help="Message: latents, plan text (cot_full), none (no_cot).")
@opt("--steps", type=click.IntRange(1), default=1000, help="Optimizer steps.")
@opt("--batch-size", type=click.IntRange(1), default=16, help="Samples per rank per step.")
@opt("--lr", type=float, default=1e-3, help="Peak learning rate.")
@opt("--warmup-ratio", type=click.FloatRange(0, 1), default=0.03, help="Linear warm-up fraction, then linear decay.")
@opt("--weight-decay", type=float, default=0.0, help="AdamW weight decay.")
@opt("--max-grad-norm", type=float, default=3.0, help="Gradient clipping norm.")
@opt("--prepended-length", type=click.IntRange(1), default=800, help="Message rows kept (first rows).")
@opt("--margin", type=float, default=0.69, help="Random-contrast hinge margin (nats).")
@opt("--contrast/--no-contrast", default=True, help="Add the plan-similarity and random-contrast terms.")
@opt("--curriculum", type=click.Choice(["uniform", "ramp_to_pure"]), default="ramp_to_pure", help="Mixing-ratio schedule.")
@opt("--ramp-start", type=click.FloatRange(0, 0.99), default=0.5, help="Training fraction where pure latents start to appear.")
@opt("--engine", type=click.Choice(["single", "ddp", "deepspeed"]), default="single", help="Training engine.")
@opt("--deepspeed-config", type=click.Path(path_type=Path), default=None, help="DeepSpeed JSON (engine deepspeed).")
@opt("--gradient-checkpointing/--no-gradient-checkpointing", default=False, help="Recompute activations in backward.")
@opt("--checkpoint-every", type=click.IntRange(1), default=200, help="Steps between resumable checkpoints.")
@opt("--seed", type=int, default=0, help="Random seed.")
@opt("--work-dir", type=click.Path(path_type=Path), required=True, help="Resumable state (outside Snakemake's outputs).")
@opt("--log-csv", type=click.Path(path_type=Path), required=True, help="Per-step loss log (CSV).")
@opt("--out", type=click.Path(path_type=Path), required=True, help="Output receiver checkpoint folder.")
def train(base, conversations, latents, mode, steps, batch_size, lr, warmup_ratio, weight_decay, max_grad_norm, prepended_length, margin, contrast, curriculum, ramp_start, engine, deepspeed_config, gradient_checkpointing, checkpoint_every, seed, work_dir, log_csv, out):
    """Train a receiver (adapter + LM) on latent messages, plan text, or no plan.

    Example: interlat train --base results/default/models/receiver --conversations results/default/convert/math/train.jsonl
    --latents results/default/latents/math/sender/Algebra --work-dir work/default/train/math/interlat
    --log-csv results/default/train/math/interlat.csv --out results/default/train/math/interlat
    """
    import torch
    from transformers import AutoModelForCausalLM

    from interlat import shards
    from interlat.conversations import read_conversations
    from interlat.text.tokenizer import load_tokenizer
    from interlat.train import trainer as tr
    from interlat.train.samples import build_samples

    if engine == "deepspeed":
        if deepspeed_config is None or not deepspeed_config.is_file():
            raise InterlatError(f"{deepspeed_config}: no such DeepSpeed config (--deepspeed-config)")
        try:
            json.loads(deepspeed_config.read_text())
        except json.JSONDecodeError as e:
            raise InterlatError(f"{deepspeed_config}: line {e.lineno}: not valid JSON") from None
    cfg = tr.TrainConfig(mode=mode, steps=steps, batch_size=batch_size, lr=lr, warmup_ratio=warmup_ratio,
                         weight_decay=weight_decay, max_grad_norm=max_grad_norm, prepended_length=prepended_length,
                         margin=margin, contrast=contrast, curriculum=curriculum, ramp_start=ramp_start, engine=engine,
                         deepspeed_config=str(deepspeed_config) if deepspeed_config else None,
                         gradient_checkpointing=gradient_checkpointing, checkpoint_every=checkpoint_every, seed=seed)
    torch.manual_seed(seed)
    tok = load_tokenizer(base)
    lm = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    messages, sender_dim = {}, lm.config.hidden_size
    if mode == "interlat":
        if not latents:
            raise InterlatError("--latents: required with --mode interlat")
        messages = shards.load_messages_of(latents)
        sender_dim = int(shards.read_manifest(latents[0])["hidden_size"])
    rows = read_conversations(conversations)
    receiver = tr.build_receiver(lm, tok, sender_dim, cfg)
    samples = build_samples(rows, messages, tok, mode, str(conversations), prepended_length)
    trainer = tr.Trainer(cfg, receiver, tok, samples, work_dir)
    trainer.setup()
    trainer.train(log_csv)
    log_csv.parent.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(out, log_csv, {"mode": mode, "base": str(base)})
    trainer.cleanup()


# ---------------------------------------------------------------------------- evaluate
@main.command()
@opt("--benchmark", type=click.Choice(["math", "alfworld"]), default="math", help="Benchmark: MATH answers or ALFWorld episodes.")
@opt("--receiver", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True, help="Receiver checkpoint folder.")
@opt("--conversations", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True, help="test.jsonl from `interlat convert`.")
@opt("--latents", type=click.Path(exists=True, path_type=Path), multiple=True, help="Shard folders with the test messages.")
@opt("--student", type=click.Path(path_type=Path), default=None, help="Compression student checkpoint (`interlat compress`), for --variant compressed_<K>.")
@opt("--variant", required=True, help="Message variant (interlat, text, no_comm, cross_task, randomrot, truncated_50, compressed_8, ...).")
@opt("--seeds", type=seeds_type, default="0", help="Comma-separated evaluation seeds.")
@opt("--temperature", type=float, default=0.1, help="Receiver sampling temperature (0: greedy).")
@opt("--max-new-tokens", type=click.IntRange(1), default=16, help="Longest answer in tokens.")
@opt("--batch-size", type=click.IntRange(1), default=64, help="Tasks per generation batch (ALFWorld: episodes stepped together).")
@opt("--games", "games_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None, help="ALFWorld: the benchmark folder from `interlat data` (holds the games).")
@opt("--max-steps", type=click.IntRange(1), default=20, help="ALFWorld: steps before an episode counts as failed.")
@opt("--work-dir", type=click.Path(path_type=Path), required=True, help="Resumable state (outside Snakemake's outputs).")
@opt("--out", type=click.Path(path_type=Path), required=True, help="Output Parquet of per-example (ALFWorld: per-episode) records.")
def evaluate(benchmark, receiver, conversations, latents, student, variant, seeds, temperature, max_new_tokens, batch_size, games_dir, max_steps, work_dir, out):
    """Evaluate a receiver under one message variant; writes per-example records.

    MATH: one answer per task and seed, graded symbolically. ALFWorld: one episode per test
    game and seed, the receiver generating once per step for all unfinished episodes.

    Example: interlat evaluate --receiver results/default/train/math/interlat
    --conversations results/default/convert/math/test.jsonl --latents results/default/latents/math/sender/Algebra
    --variant interlat --seeds 0,1,2 --work-dir work/default/evaluate/math/interlat --out results/default/evaluate/math/interlat.parquet

    Example: interlat evaluate --benchmark alfworld --receiver results/default/train/alfworld/interlat
    --conversations results/default/convert/alfworld/test.jsonl --games results/default/data/alfworld
    --latents results/default/latents/alfworld/sender/pick_and_place_simple --variant text --temperature 0.7
    --max-new-tokens 100 --max-steps 20 --work-dir work/default/evaluate/alfworld/text --out results/default/evaluate/alfworld/text.parquet
    """
    import polars as pl

    import interlat
    from interlat import shards, variants
    from interlat.compress.checkpoint import student_for_variant
    from interlat.conversations import read_conversations
    from interlat.evaluate.math import evaluate_math
    from interlat.evaluate.messages import EMPTY_VARIANTS, PLAIN_VARIANTS, TEXT_VARIANTS
    from interlat.model.decode import Sampling

    latent = variant not in TEXT_VARIANTS | EMPTY_VARIANTS | PLAIN_VARIANTS
    compressed = re.fullmatch(r"compressed_[1-9]\d*", variant) is not None
    if latent and variant != "cross_family" and not compressed and not variants.is_message_variant(variant):
        raise InterlatError(f"--variant: {variant!r}: unknown variant")
    model, tok = interlat.load_receiver(receiver)
    student_model = student_for_variant(student, variant, model, tok)
    messages = {}
    if latent:
        messages = shards.load_messages_of(latents, hidden_size=model.adapter.sender_dim,
                                           reader="the receiver's adapter (no projection)")
    rows = read_conversations(conversations)
    cfg = Sampling(temperature, 1.0, 0, max_new_tokens)
    if benchmark == "alfworld":
        from interlat.evaluate.alfworld import evaluate_alfworld

        if games_dir is None:
            raise InterlatError("--games: required with --benchmark alfworld")
        df = evaluate_alfworld(model, tok, rows, messages, games_dir=games_dir, variant=variant, seeds=seeds, cfg=cfg,
                               max_steps=max_steps, batch_size=batch_size, work_dir=work_dir, out_path=out,
                               where=str(conversations), receiver_dir=receiver)
        won = df.filter(pl.col("won"))
        click.echo(f"{variant}: success {df['won'].mean() * 100:.2f}% over {df.height} episodes, mean steps "
                   f"{won['steps'].mean() or float('nan'):.2f} / {df['steps'].mean():.2f} -> {out}", err=True)
        return
    df = evaluate_math(model, tok, rows, messages, variant=variant, seeds=seeds,
                       cfg=cfg, batch_size=batch_size, work_dir=work_dir, out_path=out, student=student_model)
    click.echo(f"{variant}: accuracy {df['correct'].mean() * 100:.2f}% over {df.height} answers -> {out}", err=True)


# ---------------------------------------------------------------------------- tables
@main.command()
@opt("--evaluations", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True, required=True, help="Per-example (MATH) or per-episode (ALFWorld) Parquet files.")
@opt("--train-logs", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True, help="Training CSV logs, <benchmark>/<receiver>.csv (for the loss plot).")
@opt("--compress-evaluations", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True, help="Per-example Parquet files of Table 3 (interlat, compressed_<K>, first_<K>, truncated_<p>).")
@opt("--latency", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True, help="`interlat bench latency` CSV files for Table 3 (the full-message file first).")
@opt("--out", type=click.Path(path_type=Path), required=True, help="Output folder.")
def tables(evaluations, train_logs, compress_evaluations, latency, out):
    """Paper-layout tables (CSV + Markdown, bootstrap intervals, seed mean/std) and plots.

    MATH records give Table 2 (table2_math, math_subjects, accuracy.png); ALFWorld records
    give Table 1 (table1_alfworld, alfworld_task_types, alfworld_success.png).

    Example: interlat tables --evaluations results/default/evaluate/math/interlat.parquet --out results/default/tables
    """
    import polars as pl

    from interlat import plots
    from interlat import tables as tb
    from interlat.atomic import atomic_dir

    frames: dict[str, list] = {}
    for p in evaluations:
        df = pl.read_parquet(p)
        frames.setdefault(tb.benchmark_of(df), []).append(df)
    logs = {f"{p.parent.name}/{p.stem}": pl.read_csv(p) for p in train_logs}
    shown = []
    with atomic_dir(out) as tmp:
        if "math" in frames:
            records = pl.concat(frames["math"])
            order = list(dict.fromkeys(records["variant"].to_list()))
            t2 = tb.math_table(records, order)
            t2.write_csv(tmp / "table2_math.csv", float_precision=4)
            shown.append(tb.to_markdown(t2, ["overall", "level3", "level4", "level5"], "Table 2: MATH accuracy"))
            (tmp / "table2_math.md").write_text(shown[-1])
            tb.subject_table(records).write_csv(tmp / "math_subjects.csv", float_precision=4)
            plots.accuracy_plot(t2, tmp / "accuracy.png", "MATH-format accuracy per variant")
        if "alfworld" in frames:
            records = pl.concat(frames["alfworld"])
            order = list(dict.fromkeys(records["variant"].to_list()))
            t1 = tb.alfworld_table(records, order)
            types = tb.task_type_table(records)
            t1.write_csv(tmp / "table1_alfworld.csv", float_precision=4)
            shown.append(tb.alfworld_markdown(t1, types))
            (tmp / "table1_alfworld.md").write_text(shown[-1])
            types.write_csv(tmp / "alfworld_task_types.csv", float_precision=4)
            plots.success_plot(t1, tmp / "alfworld_success.png", "ALFWorld success per variant")
        if logs:
            plots.training_plot(logs, tmp / "training.png")
        if compress_evaluations:
            lat = pl.concat([pl.read_csv(p) for p in latency], how="diagonal_relaxed") if latency else None
            t3 = tb.compression_table(pl.concat([pl.read_parquet(p) for p in compress_evaluations]), lat)
            t3.write_csv(tmp / "table3_compression.csv", float_precision=4)
            shown.append(tb.compression_markdown(t3))
            (tmp / "table3_compression.md").write_text(shown[-1])
            plots.compression_plot(t3, tmp / "compression.png")
    click.echo("\n".join(shown), err=True)


# ---------------------------------------------------------------------------- compress
@main.command()
@opt("--teacher", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True, help="Trained interlat receiver checkpoint: the frozen teacher.")
@opt("--student", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True, help="Initial student LM folder, HF format (config compress.student names it, e.g. the sender).")
@opt("--conversations", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True, help="train.jsonl from `interlat convert`.")
@opt("--latents", type=click.Path(exists=True, path_type=Path), multiple=True, required=True, help="Shard folders with the full messages (path D; repeatable).")
@opt("--K", "k", type=click.IntRange(1), required=True, help="Latent vectors the student emits.")
@opt("--epochs", type=click.FloatRange(0, min_open=True), default=10.0, help="Passes over the training tasks (paper 3).")
@opt("--max-steps", type=click.IntRange(0), default=0, help="Cap on optimizer steps (0: --epochs decides).")
@opt("--batch-size", type=click.IntRange(1), default=16, help="Tasks per step (paper 2).")
@opt("--lr", type=click.FloatRange(0, min_open=True), default=3e-3, help="Peak learning rate (paper 5e-5).")
@opt("--warmup-ratio", type=click.FloatRange(0, 1), default=0.03, help="Linear warm-up fraction, then linear decay.")
@opt("--weight-decay", type=click.FloatRange(0), default=0.0, help="AdamW weight decay.")
@opt("--max-grad-norm", type=click.FloatRange(0, min_open=True), default=1.0, help="Gradient clipping norm.")
@opt("--eval-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.05, help="Held-out share of tasks for early stopping (paper 0.05).")
@opt("--eval-every", type=click.IntRange(1), default=20, help="Steps between held-out evaluations.")
@opt("--patience", type=click.IntRange(1), default=10, help="Evaluations without improvement before stopping (paper 5).")
@opt("--kl-weight", type=click.FloatRange(0), default=0.1, help="Weight of the uncertainty-weighted KL term.")
@opt("--align-weight", type=click.FloatRange(0), default=0.1, help="Weight of the latent alignment term.")
@opt("--temperature", type=click.FloatRange(0, min_open=True), default=4.0, help="Distillation temperature T of the KL term.")
@opt("--gradient-checkpointing/--no-gradient-checkpointing", default=False, help="Recompute the student LM's activations in backward.")
@opt("--checkpoint-every", type=click.IntRange(1), default=50, help="Steps between resumable checkpoints.")
@opt("--seed", type=int, default=0, help="Random seed (initialisation, data order, held-out split).")
@opt("--work-dir", type=click.Path(path_type=Path), required=True, help="Resumable state (outside Snakemake's outputs).")
@opt("--out", type=click.Path(path_type=Path), required=True, help="Output student checkpoint folder.")
def compress(teacher, student, conversations, latents, k, epochs, max_steps, batch_size, lr, warmup_ratio, weight_decay, max_grad_norm, eval_fraction, eval_every, patience, kl_weight, align_weight, temperature, gradient_checkpointing, checkpoint_every, seed, work_dir, out):
    """Train a compression student that emits K latents in place of the sender's plan.

    Example: interlat compress --teacher results/default/train/math/interlat --student results/default/models/sender
    --conversations results/default/convert/math/train.jsonl --latents results/default/latents/math/sender/algebra
    --K 8 --work-dir work/default/compress/math/K8 --out results/default/compress/math/K8
    """
    from interlat.compress.trainer import CompressConfig, run_compression

    cfg = CompressConfig(K=k, epochs=epochs, max_steps=max_steps, batch_size=batch_size, lr=lr, warmup_ratio=warmup_ratio,
                         weight_decay=weight_decay, max_grad_norm=max_grad_norm, eval_fraction=eval_fraction,
                         eval_every=eval_every, patience=patience, kl_weight=kl_weight, align_weight=align_weight,
                         temperature=temperature, gradient_checkpointing=gradient_checkpointing,
                         checkpoint_every=checkpoint_every, seed=seed)
    summary = run_compression(cfg, teacher_dir=teacher, student_dir=student, conversations=conversations,
                              latents=latents, work_dir=work_dir, out=out)
    click.echo(f"K={k}: {summary} -> {out}", err=True)


def _register_groups() -> None:
    """Attach the command groups that live in their own modules (benchmarks)."""
    from interlat.bench.commands import bench

    main.add_command(bench)


_register_groups()
