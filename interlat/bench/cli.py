"""`interlat bench`: benchmarks that run interlat and the naive approach side by side.

Each subcommand times interlat's way and the reference's way (docs/method.md section 6) in the
same process on the same data, prints a table and writes it to `--out`. Other benchmarks
are added to the `bench` group as further subcommands.
"""

import logging

import click

from interlat.options import (
    latency_timing_options,
    opt,
    repeats_option,
    seed_option,
    table_out_option,
)

HELP = dict(help_option_names=["-h", "--help"])


def print_table(title: str, rows: list[dict], caption: str | None = None, stderr: bool = False) -> None:
    """A rich table of `rows` (the method column left-aligned) on stdout or stderr."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, caption=caption)
    for column in rows[0]:
        table.add_column(column, justify="left" if column == "method" else "right")
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    Console(stderr=stderr).print(table)


@click.group(context_settings=HELP)
def bench():
    """Benchmarks comparing interlat against the naive approach, side by side in one run."""


@bench.command("shards")
@opt("--n-messages", type=click.IntRange(1), default=10000, help="Number of messages written and read back.")
@opt("--n-tokens", type=click.IntRange(1), default=200, help="Rows N of each message H [N, d] (generated plan tokens).")
@opt("--hidden-size", type=click.IntRange(1), default=896, help="Hidden size d of each message H [N, d] (896 = Qwen2.5-0.5B).")
@opt("--dtype", type=click.Choice(["bfloat16", "float16", "float32"]), default="bfloat16", help="Stored dtype of the hidden states.")
@click.option("--work-dir", type=click.Path(file_okay=False), required=True,
              help="Folder for the temporary benchmark files (needs ~2.2x the hidden-state bytes free); they are deleted at the end.")
@table_out_option()
@repeats_option(5, "Timed reads per method after one warm-up read; the median is reported.")
@opt("--naive-messages", type=click.IntRange(1), default=250,
     help="Messages read the reference's way (every value becomes a Python float, ~32 bytes each); its time is scaled to --n-messages.")
@seed_option("Seed of the random hidden states.")
def shards(n_messages, n_tokens, hidden_size, dtype, work_dir, out, repeats, naive_messages, seed):
    """Read latent messages: interlat shards vs nested-list Parquet vs np.fromfile.

    Example (paper-shaped: 10,000 Qwen2.5-0.5B messages of 200 tokens, 3.6 GB in bf16):

    \b
        interlat bench shards --work-dir /scratch/bench --out p1.md
    """
    from interlat.bench.shards import COLUMNS, bench_shards, describe_setup
    from interlat.bench.table import write_table

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    rows = bench_shards(n_messages=n_messages, n_tokens=n_tokens, hidden=hidden_size, dtype=dtype,
                        workdir=work_dir, repeats=repeats, naive_messages=naive_messages, seed=seed)
    caption = describe_setup(n_messages, n_tokens, hidden_size, dtype, repeats)
    print_table("P1: reading messages", rows, caption)
    write_table(out, rows, COLUMNS, caption)


@bench.command("collect")
@opt("--shape", type=click.Choice(["qwen2.5-0.5b", "tiny"]), default="qwen2.5-0.5b",
     help="Sender shape: Qwen2.5-0.5B's (hidden 896, 24 layers, 14/2 heads, MLP 4864, vocab 151936) or a tiny one "
     "(hidden 64, 2 layers, vocab 1024); random init either way.")
@click.option("--layers", type=click.IntRange(1), default=None,
              help="Use this many decoder layers instead of the shape's (every width is kept); for CPU runs of the full "
              "shape that would take too long.  [default: the shape's]")
@opt("--prompts", type=click.IntRange(1), default=8, help="Prompts per run: (a) and (c) decode them as one left-padded batch, (b) one at a time.")
@opt("--new-tokens", type=click.IntRange(1), default=32, help="Tokens generated per prompt, for every method (end-of-sequence is ignored).")
@opt("--min-prompt", type=click.IntRange(1), default=16, help="Shortest prompt in tokens (lengths are drawn uniformly, so rows need padding).")
@opt("--max-prompt", type=click.IntRange(1), default=32, help="Longest prompt in tokens.")
@opt("--dtype", type=click.Choice(["float32", "bfloat16"]), default="float32", help="Model dtype (the states are kept in it).")
@opt("--device", default="cpu", help="Torch device for the model, e.g. cpu or cuda:0.")
@opt("--threads", type=click.IntRange(1), default=1, help="CPU threads per method process (more than the free cores slows every method down).")
@repeats_option(3, "Timed runs per method after its cold run, round-robin over methods; median reported.")
@seed_option("Seed of the weights, prompts and sampling.")
@table_out_option()
def collect(shape, layers, prompts, new_tokens, min_prompt, max_prompt, dtype, device, threads, repeats, seed, out):
    """Generate plans with state capture: interlat decode vs batch-1 generate vs plain generate.

    Each method runs in its own process on the same random-init sender and prompts; the
    table gives tokens/s, the speedup over the reference's batch-1 generate with every
    layer's states, the time against plain batched generate (no capture) and peak memory.

    Example (Qwen2.5-0.5B-shaped sender, 8 prompts, 32 new tokens each, on the CPU):

    \b
        interlat bench collect --shape qwen2.5-0.5b --prompts 8 --new-tokens 32 --out docs/p2.md
    """  # fmt: skip
    from interlat.bench.collect import COLUMNS, Spec, bench_collect, describe_setup
    from interlat.bench.table import write_table

    if min_prompt > max_prompt:
        raise click.BadParameter(f"{min_prompt} > --max-prompt {max_prompt}", param_hint="--min-prompt")
    spec = Spec(
        shape=shape, layers=layers, prompts=prompts, new_tokens=new_tokens, min_prompt=min_prompt,
        max_prompt=max_prompt, dtype=dtype, device=device, threads=threads, repeats=repeats, seed=seed,
    )  # fmt: skip
    rows = bench_collect(spec, log=lambda msg: click.echo(msg, err=True))
    print_table("P2: collecting messages", rows, describe_setup(spec))
    write_table(out, rows, COLUMNS, describe_setup(spec))


@bench.command("latency")
@opt("--random-shape", type=click.Choice(["default", "qwen2.5-0.5b"]), required=True,
     help="Random-weight models of this shape (the embedded default's, or Qwen2.5-0.5B's).")
@opt("--layers", type=click.IntRange(0), default=0, help="Decoder layers instead of the shape's (0: the shape's).")
@opt("--prompt-tokens", type=click.IntRange(1), default=96, help="Prompt length in tokens.")
@opt("--n-tokens", type=click.IntRange(1), default=256, help="N, the full message's length in tokens (forced, end-of-sequence ignored).")
@opt("--K", "ks", type=click.IntRange(1), multiple=True, default=(8,), help="Latent steps K of the (untrained) students (repeatable).")
@latency_timing_options(pipeline=False)
def latency(random_shape, layers, prompt_tokens, n_tokens, ks, variants, tasks, repeats, warmup, seed, out):
    """P4: message latency on random-weight models: the full message vs K latent steps.

    The pipeline's latency stage (a run's checkpoints) is `interlat latency`.

    Example (P4, random weights):

    \b
        interlat bench latency --random-shape qwen2.5-0.5b --n-tokens 256 --K 8 --out p4.md
    """
    from interlat.bench.latency import run_random_latency
    from interlat.options import comma_list

    text = run_random_latency(shape=random_shape, layers=layers, prompt_tokens=prompt_tokens, n_tokens=n_tokens,
                              ks=list(ks), variants=comma_list(variants), tasks=tasks, repeats=repeats,
                              warmup=warmup, seed=seed, out=out)
    click.echo(text, err=True)


@bench.command("train")
@opt("--shape", type=click.Choice(["default", "small", "qwen2.5-0.5b"]), default="default",
     help="Receiver shape (random init): the embedded default's, a 4-layer 256-wide one, or Qwen2.5-0.5B's widths and "
     "151,936-row vocabulary with --layers layers.")
@opt("--compare", type=click.Choice(["methods", "chunking"]), default="methods",
     help="methods (P3): batched vs per-sample vs plain CE; chunking (P3b): the losses in chunks of tokens vs from full logits.")
@opt("--batch-size", type=click.IntRange(1), default=16, help="Samples per step.")
@opt("--steps", type=click.IntRange(1), default=10, help="Timed steps per method.")
@opt("--warmup", type=click.IntRange(0), default=2, help="Untimed steps first (P3 only).")
@opt("--layers", type=click.IntRange(1), default=2, help="Decoder layers of the qwen2.5-0.5b shape (P3b).")
@opt("--tokens", type=click.IntRange(1), default=1024, help="Supervised answer tokens per sample (P3b).")
@opt("--message-rows", type=click.IntRange(1), default=64, help="Rows of each sample's message and plan (P3b).")
@opt("--loss-chunk", type=click.IntRange(1), default=128, help="Tokens per chunk of method (a) (P3b).")
@seed_option("Random seed.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the table as Markdown here.")
def train(shape, compare, batch_size, steps, warmup, layers, tokens, message_rows, loss_chunk, seed, out):
    """P3: the three-pass step batched vs per sample vs a plain CE step, side by side.

    With --compare chunking (P3b), one forward + backward of the three-pass step with its
    vocabulary-sized losses in chunks of tokens vs from full logits: time, peak memory, and
    the two methods' largest loss and gradient differences.

    Examples:

    \b
        interlat --threads 1 bench train --shape default --batch-size 16 --steps 10
        interlat --threads 2 bench train --compare chunking --shape qwen2.5-0.5b --layers 2 --batch-size 2 --tokens 1024 --steps 1
    """
    import torch
    from rich.console import Console
    from rich.table import Table

    from interlat.atomic import write_text
    from interlat.bench.train import bench_train

    if compare == "chunking":
        from interlat.bench.chunking import COLUMNS, bench_chunking
        from interlat.bench.table import to_markdown

        rows = bench_chunking(shape, layers, batch_size, tokens, message_rows, loss_chunk, steps, seed)
        caption = (f"Receiver shape {shape} ({layers} layer(s), random init, fp32, CPU, {torch.get_num_threads()} thread(s)), "
                   f"batch {batch_size}, {tokens} supervised tokens and a {message_rows}-row message per sample, "
                   f"one forward + backward of passes N, P, R; median of {steps} step(s)")
        text = to_markdown(rows, COLUMNS, caption)
        click.echo(text, err=True)
        if out:
            write_text(out, text)
        return
    if shape == "qwen2.5-0.5b":
        raise click.BadParameter("qwen2.5-0.5b is for --compare chunking (P3b)", param_hint="--shape")

    rows = bench_train(shape, batch_size, steps, warmup, seed)
    lines = [
        f"Receiver shape {shape} (random init, fp32, CPU, {torch.get_num_threads()} thread(s)), "
        f"batch {batch_size}, median of {steps} steps after {warmup} warm-up steps",
        "",
        "| method | s/step | samples/s | speedup vs (b) | time vs CE (c) | peak RSS growth MB |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    table = Table(title="P3: receiver training step")
    for col in ("method", "s/step", "samples/s", "speedup vs (b)", "time vs CE", "peak RSS MB"):
        table.add_column(col)
    for r in rows:
        cells = [r["method"], f"{r['seconds_per_step']:.4g}", f"{r['samples_per_s']:.4g}",
                 f"{r['speedup_vs_b']:.2f}x", f"{r['time_vs_ce']:.2f}x", f"{r['peak_rss_growth_mb']:.0f}"]
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    Console(stderr=True).print(table)
    if out:
        write_text(out, "\n".join(lines) + "\n")


@bench.command("episodes")
@opt("--games", type=click.Path(exists=True, file_okay=False), required=True,
     help="An ALFWorld data folder (`interlat data --benchmark alfworld`): its test.jsonl and games.")
@click.option("--receiver", type=click.Path(exists=True, file_okay=False), default=None,
              help="Receiver checkpoint (`interlat train`); instead of --random-shape.")
@opt("--random-shape", type=click.Choice(["default", "qwen2.5-0.5b"]), default="default",
     help="Without --receiver: random weights of this shape (the embedded default's, or Qwen2.5-0.5B's: hidden 896, "
     "14/2 heads, MLP 4864, vocab 151936) over a word-level tokenizer of the games' text padded to the vocabulary.")
@opt("--layers", type=click.IntRange(0), default=0, help="Decoder layers of the random shape (0: the shape's).")
@opt("--episodes", type=click.IntRange(0), default=0, help="Play the first N test games by task id (0: all).")
@opt("--variant", type=click.Choice(["text", "no_comm", "no_cot", "cot_full"]), default="text", help="A message variant that needs no latents.")
@opt("--max-steps", type=click.IntRange(1), default=20, help="Steps before an episode counts as failed.")
@opt("--temperature", type=click.FloatRange(0), default=0.0, help="Sampling temperature (0: greedy, so every method takes the same actions).")
@opt("--max-new-tokens", type=click.IntRange(1), default=100, help="New tokens per step.")
@seed_option("Random seed (weights and sampling).")
@table_out_option()
def episodes(games, receiver, random_shape, layers, episodes, variant, max_steps, temperature, max_new_tokens, seed, out):
    """P8: ALFWorld episodes batched with cached prefixes vs one at a time re-encoding, side by side.

    Example (Qwen2.5-0.5B's widths and vocabulary, 2 layers, random weights):

    \b
        interlat --threads 1 bench episodes --games results/default/data/alfworld \\
            --random-shape qwen2.5-0.5b --layers 2 --episodes 6 --max-steps 6 --out p8_qwen.md
    """
    from pathlib import Path

    import torch

    import interlat
    from interlat.bench.episodes import COLUMNS, bench_episodes, episode_rows, random_receiver
    from interlat.bench.table import to_markdown, write_table
    from interlat.model.decode import Sampling

    rows = episode_rows(Path(games), episodes)
    if receiver:
        model, tok = interlat.load_receiver(receiver)
        what = f"receiver {receiver}"
    else:
        model, tok = random_receiver(random_shape, layers, rows, seed)
        cfg = model.lm.config
        what = (f"random {random_shape} shape ({cfg.num_hidden_layers} layers, hidden {cfg.hidden_size}, "
                f"{cfg.num_attention_heads}/{cfg.num_key_value_heads} heads, MLP {cfg.intermediate_size}, vocab {cfg.vocab_size})")
    rows_out = bench_episodes(model, tok, rows, Path(games), variant=variant, max_steps=max_steps,
                              cfg=Sampling(temperature, 1.0, 0, max_new_tokens), seed=seed)
    caption = (f"ALFWorld episodes, {what}, variant {variant}, T={temperature}, {max_new_tokens} new tokens per step, "
               f"cap {max_steps} steps, {torch.get_num_threads()} torch thread(s), real engine (game loading included)")
    write_table(out, rows_out, COLUMNS, caption)
    click.echo(to_markdown(rows_out, COLUMNS, caption), err=True)


@bench.command("pipeline")
@opt("--benchmarks", required=True, help="The run's benchmark folder, benchmarks/<run> (one Snakemake `benchmark:` TSV per job).")
@opt("--logs", required=True, help="The run's log folder, logs/<run> (a job ends at the later of its log's and its TSV's modification times).")
@opt("--workflow-dir", default=".", help="Folder the run was started in: Snakemake builds the job DAG there, as `snakemake --dag` does (nothing runs).")
@opt("--snakefile", default=None, help="The Snakefile.  [default: workflow/Snakefile or Snakefile in --workflow-dir]")
@opt("--configfile", "configfiles", multiple=True, help="A --configfile the run was started with (repeatable).")
@opt("--config", "config_entries", multiple=True, help="A KEY=VALUE the run was started with, as for snakemake --config (repeatable).")
@opt("--out", type=click.Path(dir_okay=False), required=True, help="Markdown file: the per-rule table, the totals and the critical path.")
@opt("--rules-csv", type=click.Path(dir_okay=False), default=None, help="CSV of the per-rule rows (last row: total).")
@opt("--path-csv", type=click.Path(dir_okay=False), default=None, help="CSV of the critical path, job by job.")
def pipeline(benchmarks, logs, workflow_dir, snakefile, configfiles, config_entries, out, rules_csv, path_csv):
    """P5b: where a finished Snakemake run's time went: per rule, the wall time and the critical path.

    Example (a finished default run, started with `snakemake --cores 2` in the repository root):

    \b
        interlat bench pipeline --benchmarks benchmarks/default --logs logs/default --out p5b.md
    """
    from pathlib import Path

    from interlat.atomic import write_csv, write_text
    from interlat.bench.pipeline import (
        PATH_COLUMNS,
        RULE_COLUMNS,
        job_costs,
        summarize,
        to_markdown,
    )
    from interlat.bench.snakejobs import dag_jobs, parse_config_entries
    from interlat.errors import InterlatError

    for folder, option in ((benchmarks, "--benchmarks"), (logs, "--logs")):
        if not Path(folder).is_dir():
            raise InterlatError(f"{folder}: no such folder ({option})")
    jobs = dag_jobs(workflow_dir, snakefile, configfiles, parse_config_entries(config_entries))
    costs, left_out = job_costs(jobs, Path(benchmarks), Path(logs))
    summary = summarize(jobs, costs)
    text = to_markdown(summary, benchmarks, left_out)
    write_text(out, text)
    if rules_csv:
        write_csv(rules_csv, summary["rules"], RULE_COLUMNS)
    if path_csv:
        write_csv(path_csv, summary["path"], PATH_COLUMNS)
    click.echo(text, err=True)
