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
