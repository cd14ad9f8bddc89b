"""`interlat bench`: benchmarks that run interlat and the naive approach side by side.

Each subcommand times interlat's way and the reference's way (METHOD.md section 6) in the
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
    from interlat.bench.shards import bench_shards, describe_setup, write_table

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
    write_table(out, rows, caption)


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
    from interlat.bench.collect import Spec, bench_collect, describe_setup, write_table

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
    write_table(out, rows, caption)
