"""`interlat bench`: benchmarks that run interlat and the naive approach side by side.

Each subcommand times interlat's way and the reference's way (docs/method.md section 6) in the
same process on the same data, prints a table and writes it to `--out`. Other benchmarks
are added to the `bench` group as further subcommands.
"""

import logging

import click
from rich.console import Console
from rich.table import Table

from interlat.shards import DTYPES


@click.group()
def bench():
    """Benchmarks comparing interlat against the naive approach, side by side in one run."""


@bench.command("shards")
@click.option(
    "--n-messages",
    type=click.IntRange(1),
    default=10000,
    show_default=True,
    help="Number of messages written and read back.",
)
@click.option(
    "--n-tokens",
    type=click.IntRange(1),
    default=200,
    show_default=True,
    help="Rows N of each message H [N, d] (generated plan tokens).",
)
@click.option(
    "--hidden-size",
    type=click.IntRange(1),
    default=896,
    show_default=True,
    help="Hidden size d of each message H [N, d] (896 = Qwen2.5-0.5B).",
)
@click.option(
    "--dtype",
    type=click.Choice(list(DTYPES)),
    default="bfloat16",
    show_default=True,
    help="Stored dtype of the hidden states.",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False),
    required=True,
    help="Folder for the temporary benchmark files (needs ~2.2x the hidden-state bytes "
    "free); they are deleted at the end.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    required=True,
    help="Table to write: CSV if the name ends in .csv, else Markdown.",
)
@click.option(
    "--repeats",
    type=click.IntRange(1),
    default=5,
    show_default=True,
    help="Timed reads per method after one warm-up read; the median is reported.",
)
@click.option(
    "--naive-messages",
    type=click.IntRange(1),
    default=250,
    show_default=True,
    help="Messages read the reference's way (every value becomes a Python float, "
    "~32 bytes each); its time is scaled to --n-messages.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the random hidden states."
)
def shards(n_messages, n_tokens, hidden_size, dtype, workdir, out, repeats, naive_messages, seed):
    """Read latent messages: interlat shards vs nested-list Parquet vs np.fromfile.

    Example (paper-shaped: 10,000 Qwen2.5-0.5B messages of 200 tokens, 3.6 GB in bf16):

        interlat bench shards --workdir /scratch/bench --out p1.md
    """
    from interlat.bench.shards import COLUMNS, bench_shards, describe_setup
    from interlat.bench.table import write_table

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    rows = bench_shards(
        n_messages=n_messages, n_tokens=n_tokens, hidden=hidden_size, dtype=dtype,
        workdir=workdir, repeats=repeats, naive_messages=naive_messages, seed=seed,
    )  # fmt: skip
    caption = describe_setup(n_messages, n_tokens, hidden_size, dtype, repeats)
    table = Table(title="P1: reading messages", caption=caption)
    for column in rows[0]:
        table.add_column(column, justify="left" if column == "method" else "right")
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    Console().print(table)
    write_table(out, rows, COLUMNS, caption)


@bench.command("collect")
@click.option(
    "--shape",
    type=click.Choice(["qwen2.5-0.5b", "tiny"]),
    default="qwen2.5-0.5b",
    show_default=True,
    help="Sender shape: Qwen2.5-0.5B's (hidden 896, 24 layers, 14/2 heads, MLP 4864, vocab "
    "151936) or a tiny one (hidden 64, 2 layers, vocab 1024); random init either way.",
)
@click.option(
    "--layers",
    type=click.IntRange(1),
    default=None,
    help="Use this many decoder layers instead of the shape's (every width is kept); for "
    "CPU runs of the full shape that would take too long.  [default: the shape's]",
)
@click.option(
    "--prompts",
    type=click.IntRange(1),
    default=8,
    show_default=True,
    help="Prompts per run: (a) and (c) decode them as one left-padded batch, (b) one at a time.",
)
@click.option(
    "--new-tokens",
    type=click.IntRange(1),
    default=32,
    show_default=True,
    help="Tokens generated per prompt, for every method (end-of-sequence is ignored).",
)
@click.option(
    "--min-prompt",
    type=click.IntRange(1),
    default=16,
    show_default=True,
    help="Shortest prompt in tokens (lengths are drawn uniformly, so rows need padding).",
)
@click.option(
    "--max-prompt",
    type=click.IntRange(1),
    default=32,
    show_default=True,
    help="Longest prompt in tokens.",
)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "bfloat16"]),
    default="float32",
    show_default=True,
    help="Model dtype (the states are kept in it).",
)
@click.option(
    "--device",
    default="cpu",
    show_default=True,
    help="Torch device for the model, e.g. cpu or cuda:0.",
)
@click.option(
    "--threads",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="CPU threads per method process (more than the free cores slows every method down).",
)
@click.option(
    "--repeats",
    type=click.IntRange(1),
    default=3,
    show_default=True,
    help="Timed runs per method after its cold run, round-robin over methods; median reported.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the weights, prompts and sampling.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    required=True,
    help="Table to write: CSV if the name ends in .csv, else Markdown.",
)
def collect(
    shape,
    layers,
    prompts,
    new_tokens,
    min_prompt,
    max_prompt,
    dtype,
    device,
    threads,
    repeats,
    seed,
    out,
):
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
        raise click.BadParameter(
            f"{min_prompt} > --max-prompt {max_prompt}", param_hint="--min-prompt"
        )
    spec = Spec(
        shape=shape, layers=layers, prompts=prompts, new_tokens=new_tokens, min_prompt=min_prompt,
        max_prompt=max_prompt, dtype=dtype, device=device, threads=threads, repeats=repeats, seed=seed,
    )  # fmt: skip
    rows = bench_collect(spec, log=lambda msg: click.echo(msg, err=True))
    caption = describe_setup(spec)
    table = Table(title="P2: collecting messages", caption=caption)
    for column in rows[0]:
        table.add_column(column, justify="left" if column == "method" else "right")
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    Console().print(table)
    write_table(out, rows, COLUMNS, caption)


@bench.command("latency")
@click.option(
    "--sender",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Sender model folder (pipeline mode; with --receiver, --conversations and --latents).",
)
@click.option(
    "--receiver",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Trained interlat receiver checkpoint (pipeline mode).",
)
@click.option(
    "--student",
    "students",
    type=click.Path(file_okay=False),
    multiple=True,
    help="Compression student checkpoint from `interlat compress` (repeatable): times compressed_<K>.",
)
@click.option(
    "--conversations",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="test.jsonl from `interlat convert` (pipeline mode): the timed tasks.",
)
@click.option(
    "--latents",
    type=click.Path(exists=True),
    multiple=True,
    help="Shard folders of the test messages (pipeline mode): each task's sender prompt and N.",
)
@click.option(
    "--variants",
    default="",
    show_default=True,
    help="Comma-separated untrained baselines to time as well (truncated_<p>, first_<K>).",
)
@click.option(
    "--random-shape",
    type=click.Choice(sorted(["default", "qwen2.5-0.5b"])),
    default=None,
    help="Random-weight models of this shape instead of checkpoints (P4 benchmark).",
)
@click.option(
    "--layers",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="With --random-shape: decoder layers instead of the shape's (0: the shape's).",
)
@click.option(
    "--prompt-tokens",
    type=click.IntRange(1),
    default=96,
    show_default=True,
    help="With --random-shape: prompt length in tokens.",
)
@click.option(
    "--n-tokens",
    type=click.IntRange(1),
    default=256,
    show_default=True,
    help="With --random-shape: N, the full message's length in tokens (forced, end-of-sequence ignored).",
)
@click.option(
    "--K",
    "ks",
    type=click.IntRange(1),
    multiple=True,
    default=(8,),
    show_default=True,
    help="With --random-shape: latent steps K of the (untrained) students (repeatable).",
)
@click.option(
    "--tasks",
    type=click.IntRange(1),
    default=4,
    show_default=True,
    help="Tasks timed (batch size 1 each).",
)
@click.option(
    "--repeats",
    type=click.IntRange(1),
    default=5,
    show_default=True,
    help="Timed rounds; each (method, task) time is the median over them.",
)
@click.option(
    "--warmup", type=click.IntRange(0), default=1, show_default=True, help="Untimed rounds first."
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of sampling and random workloads."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    required=True,
    help="Table to write: CSV if the name ends in .csv, else Markdown.",
)
def latency(
    sender,
    receiver,
    students,
    conversations,
    latents,
    variants,
    random_shape,
    layers,
    prompt_tokens,
    n_tokens,
    ks,
    tasks,
    repeats,
    warmup,
    seed,
    out,
):
    """Message latency: the sender's full message vs K latent steps, plus the receiver's first token.

    Example (pipeline; a compress rule's student): interlat bench latency --sender results/default/models/sender
    --receiver results/default/train/math/interlat --student results/default/compress/math/K8
    --conversations results/default/convert/math/test.jsonl --latents results/default/latents/math/sender/algebra
    --out results/default/latency/math/K8.csv

    Example (P4, random weights): interlat bench latency --random-shape qwen2.5-0.5b --n-tokens 256 --K 8 --out p4.md
    """
    import csv

    import torch

    from interlat.atomic import atomic_path
    from interlat.errors import InterlatError
    from interlat.evaluate import latency as lat
    from interlat.variants import MESSAGE_VARIANT_PATTERNS

    names = [v.strip() for v in variants.split(",") if v.strip()]
    bad = [v for v in names if not any(p.fullmatch(v) for p in MESSAGE_VARIANT_PATTERNS.values())]
    if bad:
        raise InterlatError(f"--variants: {bad[0]!r}: expected truncated_<p> or first_<K>")
    pipeline = [sender, receiver, conversations]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if random_shape:
        if any(pipeline) or students or latents:
            raise InterlatError(
                "--random-shape: not with --sender/--receiver/--student/--conversations/--latents"
            )
        from interlat.bench.latency import random_setup

        snd, rec, stu, work, spec = random_setup(
            random_shape, layers, tasks, prompt_tokens, n_tokens, list(ks), seed, device
        )
        setup = (
            f"random {random_shape} shape ({spec['num_layers']} layers, hidden {spec['hidden_size']}, "
            f"vocab {spec['vocab_size']}), prompt {prompt_tokens} tokens, N={n_tokens}"
        )
    else:
        if not all(pipeline) or not latents:
            raise InterlatError(
                "--sender, --receiver, --conversations and --latents: all required without --random-shape"
            )
        snd, rec, stu, work = lat.load_pipeline(
            sender, receiver, students, conversations, latents, tasks, device
        )
        setup = f"{sender} -> {receiver}, {len(work)} test tasks, mean N={sum(t.n_tokens for t in work) / len(work):.1f}"
    rows = lat.measure(
        work,
        sender=snd,
        receiver=rec,
        students=stu,
        variants=names,
        repeats=repeats,
        warmup=warmup,
        seed=seed,
    )
    caption = (
        f"{setup}; batch 1, median of {repeats} rounds after {warmup} warm-up, mean over tasks; "
        f"{lat.machine()}"
    )
    with atomic_path(out) as tmp:
        if str(out).endswith(".csv"):
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=lat.COLUMNS)
                writer.writeheader()
                writer.writerows(rows)
        else:
            tmp.write_text(lat.to_markdown(rows, caption))
    click.echo(lat.to_markdown(rows, caption), err=True)


@bench.command("train")
@click.option("--shape", type=click.Choice(["default", "small"]), default="default", show_default=True,
              help="Receiver shape (random init): the embedded default's, or a 4-layer 256-wide one.")
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True, help="Samples per step.")
@click.option("--steps", type=click.IntRange(1), default=10, show_default=True, help="Timed steps per method.")
@click.option("--warmup", type=click.IntRange(0), default=2, show_default=True, help="Untimed steps first.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the table as Markdown here.")
def train(shape, batch_size, steps, warmup, seed, out):
    """P3: the three-pass step batched vs per sample vs a plain CE step, side by side.

    Example: interlat --threads 1 bench train --shape default --batch-size 16 --steps 10
    """
    from interlat.atomic import write_text
    from interlat.bench.train import bench_train

    rows = bench_train(shape, batch_size, steps, warmup, seed)
    lines = [
        f"Receiver shape {shape} (random init, fp32, CPU, {__import__('torch').get_num_threads()} thread(s)), "
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
@click.option("--receiver", type=click.Path(exists=True, file_okay=False), required=True, help="Receiver checkpoint (`interlat train`).")
@click.option("--conversations", type=click.Path(exists=True, dir_okay=False), required=True, help="ALFWorld test conversations (`interlat convert`).")
@click.option("--games", type=click.Path(exists=True, file_okay=False), required=True, help="The games folder (`interlat data --benchmark alfworld`).")
@click.option("--variant", type=click.Choice(["text", "no_comm", "no_cot", "cot_full"]), default="text", show_default=True,
              help="A message variant that needs no latents.")
@click.option("--max-steps", type=click.IntRange(1), default=20, show_default=True, help="Steps before an episode counts as failed.")
@click.option("--temperature", type=click.FloatRange(0, min_open=True), default=0.7, show_default=True, help="Sampling temperature.")
@click.option("--max-new-tokens", type=click.IntRange(1), default=100, show_default=True, help="New tokens per step.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Table to write: CSV if the name ends in .csv, else Markdown.")
def episodes(receiver, conversations, games, variant, max_steps, temperature, max_new_tokens, seed, out):
    """ALFWorld episodes: batched stepping vs one environment at a time, side by side.

    Example: interlat --threads 1 bench episodes --receiver results/default/train/alfworld/interlat
    --conversations results/default/convert/alfworld/test.jsonl --games results/default/data/alfworld
    --out docs/bench/episodes.md
    """
    from pathlib import Path

    import torch

    from interlat.bench.episodes import COLUMNS, bench_episodes
    from interlat.bench.table import to_markdown, write_table

    rows = bench_episodes(Path(receiver), Path(conversations), Path(games), variant=variant, max_steps=max_steps,
                          temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
    caption = (f"ALFWorld episodes, variant {variant}, T={temperature}, {max_new_tokens} new tokens per step, "
               f"cap {max_steps} steps, {torch.get_num_threads()} torch thread(s), real engine (game loading included)")
    write_table(out, rows, COLUMNS, caption)
    click.echo(to_markdown(rows, COLUMNS, caption), err=True)

