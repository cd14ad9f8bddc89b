"""The `interlat` command line: the table of contents of the pipeline, one command per stage.

Each command parses its options and calls one `run_<stage>` of its stage module. Commands never
read config.yaml: every value arrives as an option (Snakemake passes them from the validated
config through `params:`), and every option that is a config key takes its default, range and
choices from workflow/schemas/config.schema.yaml (`interlat.config`), so a stage run by hand
reproduces the pipeline. Bad input exits 2 with one line naming the file, row and field
(`InterlatError`); outputs are written to temporary paths and renamed. Stage modules are
imported inside the commands: `--help` never imports torch.
"""

import logging
import os
from pathlib import Path

import click

from interlat.config import config_option
from interlat.logs import setup_logging
from interlat.options import (
    comma_list,
    common_training_options,
    latency_timing_options,
    opt,
    out_option,
    seeds_type,
    work_dir_option,
)

log = logging.getLogger("interlat")
HELP = dict(help_option_names=["-h", "--help"])
DIR = click.Path(exists=True, file_okay=False, path_type=Path)
FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
BENCHMARK = click.Choice(["math", "alfworld"])


@click.group(context_settings=HELP)
@click.version_option(package_name="interlat", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads of the job, split over torchrun's ranks on the node (default: torch's choice).")
def main(verbose: bool, threads: int | None) -> None:
    """Interlat: latent-space communication between LLM agents (arXiv 2511.09149)."""
    setup_logging(logging.DEBUG if verbose else logging.INFO)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from interlat.hub import network_env  # download rules online, compute rules offline

    network_env(click.get_current_context().invoked_subcommand)
    from interlat.runtime import set_threads

    set_threads(threads)


# ---------------------------------------------------------------------------- data
@main.command()
@opt("--benchmark", type=BENCHMARK, default="math", help="Benchmark to make or download.")
@config_option("--source", key="data.math.source", help="'generated' (embedded, offline), 'hf' (MATH: download with datasets), 'official' (ALFWorld: the release) or a local PATH.")
@config_option("--dataset-id", key="data.math.dataset_id", help="Hugging Face dataset id for --source hf.")
@config_option("--subjects", key="data.math.subjects", help="MATH: comma-separated subject slugs (hendrycks MATH config names).")
@config_option("--task-types", key="data.alfworld.task_types", help="ALFWorld: comma-separated task types.")
@config_option("--n-train", key="data.math.n_train", help="Generated problems per subject (ALFWorld: games per task type), train split.")
@config_option("--n-test", key="data.math.n_test", help="MATH: generated problems per subject, test split.")
@config_option("--n-compress", key="data.math.n_compress", help="MATH: generated problems per subject for the compression student only (split compress, compress.jsonl).")
@config_option("--n-valid-seen", key="data.alfworld.n_valid_seen", help="ALFWorld: generated valid_seen games per task type.")
@config_option("--n-valid-unseen", key="data.alfworld.n_valid_unseen", help="ALFWorld: generated valid_unseen games per task type.")
@config_option("--max-train", key="data.alfworld.max_train", help="ALFWorld: keep at most this many train games per task type (0: all).")
@config_option("--max-test", key="data.math.max_test", help="Keep at most this many test tasks per subject (ALFWorld: per task type and split; 0: all).")
@config_option("--max-steps", key="data.alfworld.max_steps", help="ALFWorld: generated games are solved by the expert within 3/4 of this many steps.")
@config_option("--expert", key="data.alfworld.expert", help="ALFWorld: expert of the training trajectories.")
@config_option("--renamed-copies", key="data.alfworld.renamed_copies", help="ALFWorld: renamed copies of each train episode (its target object renamed; 0: none).")
@config_option("--alfworld-data", key="data.alfworld.alfworld_data", help="ALFWorld --source official: the $ALFWORLD_DATA folder (downloaded there unless it holds json_2.1.1/).")
@opt("--workers", type=click.IntRange(1), default=1, help="ALFWorld: processes generating games and replaying the expert.")
@config_option("--seed", key="data.math.seed", help="Random seed.")
@out_option("Output folder (train.jsonl, test.jsonl; MATH also compress.jsonl, ALFWorld the games).")
def data(benchmark, source, dataset_id, subjects, task_types, n_train, n_test, n_compress, n_valid_seen, n_valid_unseen, max_train, max_test, max_steps, expert, renamed_copies, alfworld_data, workers, seed, out):
    """Make or download a benchmark as records (MATH-format problems, or ALFWorld games).

    \b
    Example: interlat data --source generated --seed 0 --out results/default/data/math
    Example: interlat data --benchmark alfworld --source generated --n-train 10 \\
                 --n-valid-seen 1 --n-valid-unseen 1 --out results/default/data/alfworld
    """
    from interlat.data import run_data

    click.echo(run_data(benchmark, source=source, dataset_id=dataset_id, subjects=comma_list(subjects),
                        task_types=comma_list(task_types), n_train=n_train, n_test=n_test, n_valid_seen=n_valid_seen,
                        n_valid_unseen=n_valid_unseen, max_train=max_train, max_test=max_test, max_steps=max_steps,
                        expert=expert, renamed_copies=renamed_copies, alfworld_data=alfworld_data, workers=workers, seed=seed,
                        n_compress=n_compress, out=out), err=True)


# ---------------------------------------------------------------------------- tokenizer, models
@main.command()
@opt("--data", "data_dirs", type=DIR, multiple=True, help="Benchmark folder from `interlat data` (repeatable: one per benchmark; --vocab toy).")
@config_option("--vocab", key="models.sender.vocab", help="toy: train the word-level tokenizer on --data; qwen2.5 / llama3.1: the family's real tokenizer.")
@out_option("Output tokenizer folder.")
def tokenizer(data_dirs, vocab, out):
    """Train the embedded default's word-level tokenizer, or build a paper family's real one.

    \b
    Example: interlat tokenizer --data results/default/data/math \\
                 --data results/default/data/alfworld --out results/default/models/tokenizer
    Example: interlat tokenizer --vocab llama3.1 --out results/shape/models/tokenizer_llama3.1
    """
    from interlat.models import run_tokenizer

    click.echo(run_tokenizer(data_dirs, out, vocab), err=True)


@main.command()
@config_option("--arch", key="models.sender.arch", help="Architecture of the tiny model.")
@opt("--tokenizer", "tok_dir", type=click.Path(path_type=Path), help="Tokenizer folder (tiny models).")
@opt("--snapshot", type=DIR, default=None, help="Downloaded model folder (`interlat download`, resources/hub/...): link it instead of building one.")
@config_option("--hidden-size", key="models.sender.hidden_size", help="Hidden size.")
@config_option("--layers", key="models.sender.layers", help="Decoder layers.")
@config_option("--heads", key="models.sender.heads", help="Attention heads.")
@config_option("--kv-heads", key="models.sender.kv_heads", help="Key/value heads.")
@config_option("--intermediate-size", key="models.sender.intermediate_size", help="MLP width.")
@config_option("--max-positions", key="models.sender.max_positions", help="Maximum sequence length.")
@opt("--pretrain-data", type=click.Path(path_type=Path), multiple=True, help="Benchmark folder: pretrain on its (task -> plan) pairs (repeatable).")
@config_option("--pretrain-steps", key="models.sender.pretrain_steps", help="Pretraining steps (0: random init, e.g. receivers).")
@config_option("--batch-size", key="models.sender.batch_size", help="Pretraining batch size.")
@config_option("--lr", key="models.sender.lr", help="Pretraining peak learning rate.")
@config_option("--seed", key="models.sender.seed", help="Random seed (initialisation and data order).")
@config_option("--shape", key="models.sender.shape", help="A paper model's architecture (replaces --arch and the widths; --layers sets the depth).")
@config_option("--width-divisor", key="models.sender.width_divisor", help="With --shape: widths and head counts divided by this.")
@out_option("Output model folder (HF format).")
def models(arch, tok_dir, snapshot, hidden_size, layers, heads, kv_heads, intermediate_size, max_positions, pretrain_data, pretrain_steps, batch_size, lr, seed, shape, width_divisor, out):
    """Build a tiny Qwen2/LLaMA model (optionally pretrain it as the sender), or download one.

    \b
    Example: interlat models --arch qwen2 --tokenizer results/default/models/tokenizer \\
                 --pretrain-data results/default/data/math --pretrain-data results/default/data/alfworld \\
                 --pretrain-steps 1500 --out results/default/models/sender
    """
    from interlat.errors import InterlatError

    if not snapshot and heads % kv_heads:  # the pipeline's config check (workflow/rules/config.smk) says the same
        raise InterlatError(f"--heads: {heads} is not a multiple of --kv-heads {kv_heads}")
    if not snapshot and hidden_size % heads:
        raise InterlatError(f"--hidden-size: {hidden_size} is not a multiple of --heads {heads}")
    from interlat.models import run_models

    summary = run_models(arch=arch, tok_dir=tok_dir, snapshot=snapshot, hidden_size=hidden_size, layers=layers, heads=heads,
                         kv_heads=kv_heads, intermediate_size=intermediate_size, max_positions=max_positions,
                         pretrain_data=pretrain_data, pretrain_steps=pretrain_steps, batch_size=batch_size, lr=lr,
                         seed=seed, out=out, shape=shape, width_divisor=width_divisor)
    if summary:
        click.echo(summary, err=True)


# ---------------------------------------------------------------------------- collect, convert
@main.command()
@opt("--sender", type=DIR, required=True, help="Sender model folder (HF format).")
@opt("--sender-id", default=None, help="Model id recorded in the shards (default: the folder name).")
@opt("--data", "data_dir", type=DIR, required=True, help="Benchmark folder.")
@opt("--benchmark", default="math", help="Benchmark name (selects the planner prompt).")
@opt("--subject", required=True, help="Collect the tasks of this subject (slug, e.g. algebra).")
@config_option("--batch-size", key="collect.batch_size", help="Tasks per generation batch (and per Parquet part).")
@config_option("--temperature", key="collect.temperature.math", help="Sampling temperature (the pipeline: per benchmark).")
@config_option("--top-p", key="collect.top_p", help="Nucleus sampling mass.")
@config_option("--top-k", key="collect.top_k", help="Top-k sampling (0 disables).")
@config_option("--max-new-tokens", key="collect.max_new_tokens", help="Longest plan in tokens.")
@config_option("--dtype", key="collect.dtype", help="Storage dtype of the states.")
@config_option("--seed", key="collect.seed", help="Random seed.")
@work_dir_option()
@out_option("Output shard folder.")
def collect(sender, sender_id, data_dir, benchmark, subject, batch_size, temperature, top_p, top_k, max_new_tokens, dtype, seed, work_dir, out):
    """Collect latent messages: the sender's plans and last-layer states, as Parquet shards.

    Run under `torchrun --nproc_per_node=N` to split tasks across ranks.

    \b
    Example: interlat collect --sender results/default/models/sender \\
                 --data results/default/data/math --subject algebra \\
                 --work-dir work/default/collect/math/algebra \\
                 --out results/default/latents/math/sender/algebra
    """
    from interlat.collect import run_collect
    from interlat.model.decode import Sampling

    click.echo(run_collect(sender=sender, sender_id=sender_id, data_dir=data_dir, benchmark=benchmark, subject=subject,
                           cfg=Sampling(temperature, top_p, top_k, max_new_tokens), batch_size=batch_size, seed=seed,
                           dtype=dtype, work_dir=work_dir, out=out), err=True)


@main.command()
@opt("--latents", type=click.Path(exists=True, path_type=Path), multiple=True, required=True, help="Shard folders (repeatable).")
@opt("--data", "data_dir", type=DIR, required=True, help="Benchmark folder (ground truth).")
@opt("--benchmark", type=BENCHMARK, default="math", help="Benchmark (how the turns after the first are built).")
@config_option("--strict/--no-strict", key="convert.strict", help="Fail on the first join problem instead of writing rejects.")
@out_option("Output folder (train.jsonl, test.jsonl, rejects.csv).")
def convert(latents, data_dir, benchmark, strict, out):
    """Join messages with ground truth by task_id into training conversations (polars).

    Train-split tasks go to train.jsonl, all others (MATH test, ALFWorld valid_seen and
    valid_unseen) to test.jsonl.

    \b
    Example: interlat convert --latents results/default/latents/math/sender/algebra \\
                 --latents results/default/latents/math/sender/prealgebra \\
                 --data results/default/data/math --out results/default/convert/math
    """
    from interlat.convert import run_convert

    click.echo(run_convert(latents=latents, data_dir=data_dir, benchmark=benchmark, strict=strict, out=out), err=True)


# ---------------------------------------------------------------------------- train, compress
@main.command()
@opt("--base", type=DIR, required=True, help="Base receiver LM folder (HF format).")
@opt("--conversations", type=FILE, required=True, help="train.jsonl from `interlat convert`.")
@opt("--latents", type=click.Path(exists=True, path_type=Path), multiple=True, help="Shard folders with the messages (mode interlat).")
@opt("--mode", type=click.Choice(["interlat", "text", "none"]), default="interlat", help="Message: latents, plan text (cot_full), none (no_cot).")
@config_option("--steps", key="train.steps", help="Optimizer steps (when --epochs is 0).")
@config_option("--epochs", key="train.epochs", help="Passes over the samples (paper 10; 0: --steps decides).")
@common_training_options("train", what="the receiver's")
@config_option("--prepended-length", key="train.prepended_length", help="Message rows kept (first rows).")
@config_option("--margin", key="train.margin", help="Random-contrast hinge margin (nats).")
@config_option("--contrast/--no-contrast", key="train.contrast", help="Add the plan-similarity and random-contrast terms.")
@config_option("--curriculum", key="train.curriculum", help="Mixing-ratio schedule.")
@config_option("--ramp-start", key="train.ramp_start", help="Training fraction where pure latents start to appear.")
@config_option("--engine", key="train.engine", help="Training engine.")
@config_option("--deepspeed-config", key="train.deepspeed_config", type=click.Path(path_type=Path), help="DeepSpeed JSON (engine deepspeed).")
@config_option("--seed", key="train.seed", help="Random seed.")
@work_dir_option()
@opt("--log-csv", type=click.Path(path_type=Path), required=True, help="Per-step loss log (CSV).")
@out_option("Output receiver checkpoint folder.")
def train(base, conversations, latents, mode, steps, epochs, batch_size, gradient_accumulation, lr, warmup_ratio, weight_decay, max_grad_norm, gradient_checkpointing, checkpoint_every, prepended_length, margin, contrast, curriculum, ramp_start, engine, deepspeed_config, seed, work_dir, log_csv, out):
    """Train a receiver (adapter + LM) on latent messages, plan text, or no plan.

    \b
    Example: interlat train --base results/default/models/sender \\
                 --conversations results/default/convert/math/train.jsonl \\
                 --latents results/default/latents/math/sender/algebra \\
                 --work-dir work/default/train/math/interlat \\
                 --log-csv results/default/train/math/interlat.csv --out results/default/train/math/interlat
    """
    from interlat.train.trainer import TrainConfig, run_training

    cfg = TrainConfig(mode=mode, steps=steps, epochs=epochs, batch_size=batch_size,
                      gradient_accumulation=gradient_accumulation, lr=lr, warmup_ratio=warmup_ratio,
                      weight_decay=weight_decay, max_grad_norm=max_grad_norm, prepended_length=prepended_length,
                      margin=margin, contrast=contrast, curriculum=curriculum, ramp_start=ramp_start, engine=engine,
                      deepspeed_config=str(deepspeed_config) if deepspeed_config else None,
                      gradient_checkpointing=gradient_checkpointing, checkpoint_every=checkpoint_every, seed=seed)
    run_training(cfg, base=base, conversations=conversations, latents=latents, work_dir=work_dir, log_csv=log_csv, out=out)


@main.command()
@opt("--teacher", type=DIR, required=True, help="Trained interlat receiver checkpoint: the frozen teacher.")
@opt("--student", type=DIR, required=True, help="Initial student LM folder, HF format (config compress.student names it: the sender, or the --teacher folder itself to start from its LM).")
@opt("--conversations", type=FILE, multiple=True, required=True, help="train.jsonl from `interlat convert`, and compress.jsonl where the data has problems for the student alone (repeatable).")
@opt("--latents", type=click.Path(exists=True, path_type=Path), multiple=True, required=True, help="Shard folders with the full messages (path D; repeatable).")
@opt("--K", "k", type=click.IntRange(1), required=True, help="Latent vectors the student emits.")
@config_option("--epochs", key="compress.epochs", help="Passes over the training tasks (paper 3).")
@config_option("--max-steps", key="compress.max_steps", help="Cap on optimizer steps (0: --epochs decides).")
@common_training_options("compress", what="the student LM's")
@config_option("--eval-fraction", key="compress.eval_fraction", help="Held-out share of tasks for early stopping (paper 0.05).")
@config_option("--eval-every", key="compress.eval_every", help="Steps between held-out evaluations.")
@config_option("--patience", key="compress.patience", help="Evaluations without improvement before stopping (paper 5).")
@config_option("--select", key="compress.select", help="What early stopping keeps: the lowest held-out loss or the most held-out answers right (greedy).")
@config_option("--kl-weight", key="compress.kl_weight", help="Weight of the uncertainty-weighted KL term.")
@config_option("--align-weight", key="compress.align_weight", help="Weight of the latent alignment term.")
@config_option("--temperature", key="compress.temperature", help="Distillation temperature T of the KL term.")
@config_option("--engine", key="compress.engine", help="Training engine of the student (deepspeed: ZeRO-2/3 over torchrun's ranks).")
@config_option("--deepspeed-config", key="compress.deepspeed_config", type=click.Path(path_type=Path), help="DeepSpeed JSON (engine deepspeed).")
@config_option("--cache-reference/--no-cache-reference", key="compress.cache_reference", help="Compute the teacher's paths D and B once per task instead of every step (memory: one hidden row per answer token).")
@config_option("--seed", key="compress.seed", help="Random seed (initialisation, data order, held-out split).")
@work_dir_option()
@out_option("Output student checkpoint folder.")
def compress(teacher, student, conversations, latents, k, epochs, max_steps, batch_size, gradient_accumulation, lr, warmup_ratio, weight_decay, max_grad_norm, gradient_checkpointing, checkpoint_every, eval_fraction, eval_every, patience, select, kl_weight, align_weight, temperature, engine, deepspeed_config, cache_reference, seed, work_dir, out):
    """Train a compression student that emits K latents in place of the sender's plan.

    \b
    Example: interlat compress --teacher results/default/train/math/interlat \\
                 --student results/default/models/sender \\
                 --conversations results/default/convert/math/train.jsonl \\
                 --latents results/default/latents/math/sender/algebra \\
                 --K 8 --work-dir work/default/compress/math/K8 --out results/default/compress/math/K8
    """
    from interlat.compress.trainer import CompressConfig, run_compression

    cfg = CompressConfig(K=k, epochs=epochs, max_steps=max_steps, batch_size=batch_size,
                         gradient_accumulation=gradient_accumulation, lr=lr, warmup_ratio=warmup_ratio,
                         weight_decay=weight_decay, max_grad_norm=max_grad_norm, eval_fraction=eval_fraction,
                         eval_every=eval_every, patience=patience, select=select, kl_weight=kl_weight, align_weight=align_weight,
                         temperature=temperature, gradient_checkpointing=gradient_checkpointing,
                         checkpoint_every=checkpoint_every, seed=seed, engine=engine, cache_reference=cache_reference,
                         deepspeed_config=str(deepspeed_config) if deepspeed_config else None)
    summary = run_compression(cfg, teacher_dir=teacher, student_dir=student, conversations=conversations,
                              latents=latents, work_dir=work_dir, out=out)
    click.echo(f"K={k}: {summary} -> {out}", err=True)


# ---------------------------------------------------------------------------- latency, evaluate, tables
@main.command()
@opt("--sender", type=DIR, required=True, help="Sender model folder.")
@opt("--receiver", type=DIR, required=True, help="Trained interlat receiver checkpoint.")
@opt("--student", "students", type=click.Path(file_okay=False, path_type=Path), multiple=True, help="Compression student checkpoint from `interlat compress` (repeatable): times compressed_<K>.")
@opt("--conversations", type=FILE, required=True, help="test.jsonl from `interlat convert`: the timed tasks.")
@opt("--latents", type=click.Path(exists=True, path_type=Path), multiple=True, required=True, help="Shard folders of the test messages: each task's sender prompt and N.")
@latency_timing_options(pipeline=True)
def latency(sender, receiver, students, conversations, latents, variants, tasks, action_tokens, repeats, warmup, seed, out):
    """Message latency: the sender's full message vs K latent steps, plus the receiver's first token.

    \b
    Example: interlat latency --sender results/default/models/sender \\
                 --receiver results/default/train/math/interlat --student results/default/compress/math/K8 \\
                 --conversations results/default/convert/math/test.jsonl \\
                 --latents results/default/latents/math/sender/algebra --out results/default/latency/math/K8.csv
    """
    from interlat.evaluate.latency import run_latency

    click.echo(run_latency(sender=sender, receiver=receiver, students=students, conversations=conversations,
                           latents=latents, variants=comma_list(variants), tasks=tasks, repeats=repeats,
                           warmup=warmup, seed=seed, out=out, action_tokens=action_tokens), err=True)


@main.command()
@opt("--benchmark", type=BENCHMARK, default="math", help="Benchmark: MATH answers or ALFWorld episodes.")
@opt("--receiver", type=DIR, required=True, help="Receiver checkpoint folder.")
@opt("--conversations", type=FILE, required=True, help="test.jsonl from `interlat convert`.")
@opt("--latents", type=click.Path(exists=True, path_type=Path), multiple=True, help="Shard folders with the test messages.")
@opt("--student", type=click.Path(path_type=Path), default=None, help="Compression student checkpoint (`interlat compress`), for --variant compressed_<K>.")
@opt("--variant", required=True, help="Message variant (interlat, text, no_comm, cross_task, randomrot, truncated_50, compressed_8, ...).")
@config_option("--seeds", key="seeds", type=seeds_type, help="Comma-separated evaluation seeds.")
@config_option("--temperature", key="evaluate.temperature", help="Receiver sampling temperature (0: greedy; ALFWorld: config evaluate.alfworld.temperature).")
@config_option("--max-new-tokens", key="evaluate.max_new_tokens", help="Longest answer in tokens (ALFWorld: per step).")
@config_option("--batch-size", key="evaluate.batch_size", help="Tasks per generation batch (ALFWorld: episodes stepped together).")
@opt("--games", "games_dir", type=DIR, default=None, help="ALFWorld: the benchmark folder from `interlat data` (holds the games).")
@config_option("--max-steps", key="evaluate.alfworld.max_steps", help="ALFWorld: steps before an episode counts as failed.")
@work_dir_option()
@out_option("Output Parquet of per-example (ALFWorld: per-episode) records.")
def evaluate(benchmark, receiver, conversations, latents, student, variant, seeds, temperature, max_new_tokens, batch_size, games_dir, max_steps, work_dir, out):
    """Evaluate a receiver under one message variant; writes per-example records.

    MATH: one answer per task and seed, graded symbolically. ALFWorld: one episode per test
    game and seed, the receiver generating once per step for all unfinished episodes.

    \b
    Example: interlat evaluate --receiver results/default/train/math/interlat \\
                 --conversations results/default/convert/math/test.jsonl \\
                 --latents results/default/latents/math/sender/algebra --variant interlat --seeds 0 \\
                 --work-dir work/default/evaluate/math/interlat --out results/default/evaluate/math/interlat.parquet
    Example: interlat evaluate --benchmark alfworld --receiver results/default/train/alfworld/interlat \\
                 --conversations results/default/convert/alfworld/test.jsonl --games results/default/data/alfworld \\
                 --variant text --temperature 0.7 --max-new-tokens 100 --max-steps 20 \\
                 --work-dir work/default/evaluate/alfworld/text --out results/default/evaluate/alfworld/text.parquet
    """
    from interlat.evaluate.run import run_evaluation
    from interlat.model.decode import Sampling

    click.echo(run_evaluation(benchmark=benchmark, receiver=receiver, conversations=conversations, latents=latents,
                              student=student, variant=variant, seeds=seeds,
                              cfg=Sampling(temperature, 1.0, 0, max_new_tokens), batch_size=batch_size,
                              games_dir=games_dir, max_steps=max_steps, work_dir=work_dir, out=out), err=True)


@main.command()
@opt("--evaluations", type=FILE, multiple=True, required=True, help="Per-example (MATH) or per-episode (ALFWorld) Parquet files.")
@opt("--train-logs", type=FILE, multiple=True, help="Training CSV logs, <benchmark>/<receiver>.csv (for the loss plot).")
@opt("--compress-evaluations", type=FILE, multiple=True, help="Per-example Parquet files of Table 3 (interlat, compressed_<K>, first_<K>, truncated_<p>).")
@opt("--latency", type=FILE, multiple=True, help="`interlat latency` CSV files for Table 3 (the full-message file first).")
@out_option("Output folder.")
def tables(evaluations, train_logs, compress_evaluations, latency, out):
    """Paper-layout tables (CSV + Markdown, bootstrap intervals, seed mean/std) and plots.

    MATH records give Table 2 (table2_math, math_subjects, accuracy.png); ALFWorld records
    give Table 1 (table1_alfworld, alfworld_task_types, alfworld_success.png).

    \b
    Example: interlat tables --evaluations results/default/evaluate/math/interlat.parquet \\
                 --evaluations results/default/evaluate/math/text.parquet --out results/default/tables
    """
    from interlat.tables import run_tables

    click.echo(run_tables(evaluations=evaluations, train_logs=train_logs, compress_evaluations=compress_evaluations,
                          latency=latency, out=out), err=True)


def _register_groups() -> None:
    """Attach the command groups that live in their own modules (benchmarks)."""
    from interlat.bench.cli import bench
    from interlat.hub import download_command
    from interlat.plan import plan_command
    from interlat.schema_docs import docs
    from interlat.versions import versions_command

    main.add_command(bench)
    main.add_command(download_command)
    main.add_command(plan_command)
    main.add_command(docs)
    main.add_command(versions_command)


_register_groups()


if __name__ == "__main__":
    main()
