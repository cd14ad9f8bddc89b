"""Conversion: join latent records with ground truth by task_id into conversations (METHOD.md section 2).

polars does the join on the shard index (every column but the hidden states, which stay in
the shards and are referenced by task_id). Every join failure is counted and reported by
id: a task without a message, a message without a task, duplicate ids, a hidden size that
differs from the manifest's, an empty or non-finite message. `strict=True` fails on the
first one; otherwise the rejects are written next to the output.
"""

import polars as pl

from interlat.errors import InterlatError
from interlat.prompts import receiver_first_turn

REJECT_SCHEMA = {"task_id": pl.String, "reason": pl.String}


def find_rejects(index: pl.DataFrame, truth: pl.DataFrame, hidden_size: int) -> pl.DataFrame:
    """One row per problem: (task_id, reason)."""
    problems = [
        index.filter(pl.col("task_id").is_duplicated()).select("task_id").unique().with_columns(reason=pl.lit("duplicate id in latents")),
        truth.filter(pl.col("task_id").is_duplicated()).select("task_id").unique().with_columns(reason=pl.lit("duplicate id in ground truth")),
        truth.join(index, on="task_id", how="anti").select("task_id").with_columns(reason=pl.lit("no message for this task")),
        index.join(truth, on="task_id", how="anti").select("task_id").with_columns(reason=pl.lit("message without ground truth")),
        index.filter(pl.col("n_tokens") <= 0).select("task_id").with_columns(reason=pl.lit("empty message")),
        index.filter(pl.col("hidden_size") != hidden_size).select(
            "task_id", reason=pl.format("hidden size {} != {}", pl.col("hidden_size"), pl.lit(hidden_size))
        ),
        index.filter(pl.col("plan").str.strip_chars() == "").select("task_id").with_columns(reason=pl.lit("empty plan")),
    ]
    return pl.concat([p.cast(REJECT_SCHEMA) for p in problems]).unique(maintain_order=True).sort("task_id")


def conversations(index: pl.DataFrame, truth: pl.DataFrame) -> list[dict]:
    """Joined rows as conversation records (`id`, `conversations`, plus task metadata)."""
    joined = index.select("task_id", "plan", "split").join(truth, on="task_id", how="inner").sort("task_id")
    out = []
    for row in joined.iter_rows(named=True):
        out.append(
            {
                "id": row["task_id"],
                "task": row["problem"],
                "plan": row["plan"],
                "subject": row["subject"],
                "level": row["level"],
                "split": row["split"],
                "conversations": [
                    {"from": "human", "value": receiver_first_turn(row["problem"])},
                    {"from": "gpt", "value": row["solution"]},
                ],
            }
        )
    return out


def convert(index: pl.DataFrame, truth: pl.DataFrame, *, hidden_size: int, strict: bool, where: str):
    """(conversations, rejects); with `strict`, the first reject is an error naming its id."""
    rejects = find_rejects(index, truth, hidden_size)
    if strict and rejects.height:
        first = rejects.row(0, named=True)
        raise InterlatError(
            f"{where}: task_id {first['task_id']}: {first['reason']} ({rejects.height} problems in all)"
        )
    bad = rejects["task_id"].to_list()
    good_index = index.filter(~pl.col("task_id").is_in(bad))
    good_truth = truth.filter(~pl.col("task_id").is_in(bad))
    return conversations(good_index, good_truth), rejects
