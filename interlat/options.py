"""Option decorators shared by several commands (`interlat` and `interlat bench`).

Options that correspond to a config key take default, range and choices from the schema
(`interlat.config.config_option`); the rest use `opt` (click.option with show_default).
"""

from pathlib import Path

import click

from interlat.config import config_option


def opt(*names, **kw):
    """click.option with show_default on."""
    return click.option(*names, show_default=True, **kw)


def stack(*decorators):
    """One decorator applying `decorators` in the order listed (first = first in --help)."""

    def apply(f):
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


def seeds_type(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in str(text).split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected comma-separated integers") from None
    if not seeds:
        raise click.BadParameter("empty seed list")
    return seeds


def comma_list(text: str) -> list[str]:
    """'a, b,c' -> ['a', 'b', 'c']."""
    return [s.strip() for s in str(text).split(",") if s.strip()]


def work_dir_option():
    return opt("--work-dir", type=click.Path(path_type=Path), required=True, help="Resumable state (outside Snakemake's outputs).")


def out_option(help: str, *, file: bool = False, required: bool = True, default=None):
    kind = click.Path(dir_okay=False, path_type=Path) if file else click.Path(path_type=Path)
    return click.option("--out", type=kind, required=required, default=default, help=help)


def table_out_option(required: bool = True):
    return out_option("Table to write: CSV if the name ends in .csv, else Markdown.", file=True, required=required)


def seed_option(help: str, key: str | None = None):
    return config_option("--seed", key=key, help=help) if key else opt("--seed", type=int, default=0, help=help)


def repeats_option(default: int, help: str, key: str | None = None):
    if key:
        return config_option("--repeats", key=key, help=help)
    return opt("--repeats", type=click.IntRange(1), default=default, help=help)


def common_training_options(section: str, *, what: str):
    """Optimizer and checkpointing options of `train` and `compress` (config section `section`)."""
    k = f"{section}."
    return stack(
        config_option("--batch-size", key=k + "batch_size", help="Samples per rank per micro step." if section == "train" else "Tasks per rank per micro step (paper 2)."),
        config_option("--gradient-accumulation", key=k + "gradient_accumulation",
                      help="Micro steps per optimizer step (a DeepSpeed JSON's own value wins)."),
        config_option("--lr", key=k + "lr", help="Peak learning rate."),
        config_option("--warmup-ratio", key=k + "warmup_ratio", help="Linear warm-up fraction, then linear decay."),
        config_option("--weight-decay", key=k + "weight_decay", help="AdamW weight decay."),
        config_option("--max-grad-norm", key=k + "max_grad_norm", help="Gradient clipping norm."),
        config_option("--gradient-checkpointing/--no-gradient-checkpointing", key=k + "gradient_checkpointing",
                      help=f"Recompute {what} activations in backward."),
        config_option("--checkpoint-every", key=k + "checkpoint_every", help="Steps between resumable checkpoints."),
    )


def latency_timing_options(*, pipeline: bool):
    """Tasks, rounds and seed of a latency measurement (the pipeline's: config compress.latency)."""
    def key(name):
        return f"compress.latency.{name}" if pipeline else None

    tasks = config_option("--tasks", key="compress.latency.tasks", help="Tasks timed (batch size 1 each).") if pipeline \
        else opt("--tasks", type=click.IntRange(1), default=4, help="Tasks timed (batch size 1 each).")
    warmup = config_option("--warmup", key="compress.latency.warmup", help="Untimed rounds first.") if pipeline \
        else opt("--warmup", type=click.IntRange(0), default=1, help="Untimed rounds first.")
    action = [config_option("--action-tokens", key="evaluate.alfworld.max_new_tokens",
                            help="ALFWorld tasks: the receiver is timed to its first action (its first turn, at most "
                                 "this many tokens); MATH: to its first answer token.")] if pipeline else []
    return stack(
        opt("--variants", default="", help="Comma-separated untrained baselines to time as well (truncated_<p>, first_<K>)."),
        tasks,
        *action,
        repeats_option(5, "Timed rounds; each (method, task) time is the median over them.", key("repeats")),
        warmup,
        seed_option("Seed of sampling and random workloads.", "compress.seed" if pipeline else None),
        table_out_option(),
    )
