"""Conversion: join latent records with ground truth by task_id into conversations (docs/method.md section 2).

Every conversation opens with the receiver's first human turn (the task, the plan sentence
and the marker; ALFWorld's task is its first observation, the room and the goal); the turns
after it come from the benchmark's ground truth, one small function per benchmark
(`TURNS`): MATH, one gpt turn with the solution; ALFWorld, the expert's alternating gpt
"Thought/Action" and human "Observation" turns.

polars does the join on the shard index (every column but the hidden states, which stay in
the shards and are referenced by task_id). Every join failure is counted and reported by
id: a task without a message, a message without a task, duplicate ids, a hidden size that
differs from the manifest's, an empty or non-finite message. `strict=True` fails on the
first one; otherwise the rejects are written next to the output.
"""

import polars as pl

from interlat.errors import InterlatError
from interlat.text.prompts import receiver_first_turn

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


def math_turns(row: dict) -> list[dict]:
    """MATH: the solution (with its final \\boxed{}) as the one assistant turn."""
    return [{"from": "gpt", "value": row["solution"]}]


def alfworld_turns(row: dict) -> list[dict]:
    """ALFWorld: the expert trajectory, gpt and human turns alternating, first and last gpt."""
    turns = [{"from": t["from"], "value": t["value"]} for t in row["trajectory"] or []]
    roles = [t["from"] for t in turns]
    if not turns or roles[-1] != "gpt" or any(r != ("gpt", "human")[i % 2] for i, r in enumerate(roles)):
        raise InterlatError(
            f"task_id {row['task_id']}: field \"trajectory\": {roles[:6]}..., expected alternating gpt/human turns "
            "from gpt to gpt"
        )
    return turns


#: benchmark -> the turns after the first human turn
TURNS = {"math": math_turns, "alfworld": alfworld_turns}
#: benchmark -> the ground-truth column holding the receiver's task (its first human turn)
TASK = {"math": "problem", "alfworld": "observation"}
#: benchmark -> ground-truth columns carried into the conversation records as they are
CARRIED = {"math": (), "alfworld": ("game",)}
#: benchmark -> ground-truth columns the turns are built from
SOURCES = {"math": ("solution",), "alfworld": ("trajectory",)}


def truth_columns(benchmark: str) -> list[str]:
    """The ground-truth columns `convert` needs for `benchmark`."""
    return ["task_id", TASK[benchmark], "subject", "level", *SOURCES[benchmark], *CARRIED[benchmark]]


#: column -> the Python type every ground-truth record must give it
TRUTH_TYPES = {"task_id": str, "problem": str, "observation": str, "subject": str, "level": int,
               "solution": str, "trajectory": list, "game": str}


def truth_frame(records: list, benchmark: str, where: str) -> pl.DataFrame:
    """Ground-truth records as a typed frame; the first bad record is an error naming its row and field."""
    columns = truth_columns(benchmark)
    schema = {c: pl.Int64 if c == "level" else pl.String for c in columns}
    if "trajectory" in columns:
        schema["trajectory"] = pl.List(pl.Struct({"from": pl.String, "value": pl.String}))
    rows = []
    for i, rec in enumerate(records, 1):
        if not isinstance(rec, dict):
            raise InterlatError(f"{where}: row {i}: a {type(rec).__name__}, expected a JSON object")
        for col in columns:
            if col not in rec:
                raise InterlatError(f"{where}: row {i}: field \"{col}\": missing (not {benchmark} data?)")
            value, want = rec[col], TRUTH_TYPES[col]
            if not isinstance(value, want) or isinstance(value, bool):
                raise InterlatError(f"{where}: row {i}: field \"{col}\": {type(value).__name__}, expected {want.__name__}")
        if not 0 <= rec["level"] <= 5:
            raise InterlatError(f"{where}: row {i}: field \"level\": {rec['level']} not in 0-5")
        row = {c: rec[c] for c in columns}
        if "trajectory" in row:
            for j, turn in enumerate(row["trajectory"]):
                if not (isinstance(turn, dict) and isinstance(turn.get("from"), str) and isinstance(turn.get("value"), str)):
                    raise InterlatError(f"{where}: row {i}: field \"trajectory\": turn {j} is not {{from: str, value: str}}")
            row["trajectory"] = [{"from": t["from"], "value": t["value"]} for t in row["trajectory"]]
        rows.append(row)
    return pl.DataFrame(rows, schema=schema)


def conversations(index: pl.DataFrame, truth: pl.DataFrame, benchmark: str = "math") -> list[dict]:
    """Joined rows as conversation records (`id`, `conversations`, plus task metadata)."""
    joined = index.select("task_id", "plan", "split").join(truth, on="task_id", how="inner").sort("task_id")
    out = []
    for row in joined.iter_rows(named=True):
        record = {
            "id": row["task_id"],
            "task": row[TASK[benchmark]],
            "plan": row["plan"],
            "subject": row["subject"],
            "level": row["level"],
            "split": row["split"],
            "conversations": [{"from": "human", "value": receiver_first_turn(row[TASK[benchmark]])}, *TURNS[benchmark](row)],
        }
        out.append(record | {k: row[k] for k in CARRIED[benchmark]})
    return out


def convert(index: pl.DataFrame, truth: pl.DataFrame, *, hidden_size: int, strict: bool, where: str, benchmark: str = "math"):
    """(conversations, rejects); with `strict`, the first reject is an error naming its id."""
    if benchmark not in TURNS:
        raise InterlatError(f"{where}: benchmark {benchmark!r}: expected one of {', '.join(TURNS)}")
    rejects = find_rejects(index, truth, hidden_size)
    if strict and rejects.height:
        first = rejects.row(0, named=True)
        counts = rejects.group_by("reason").len().sort("reason")
        summary = ", ".join(f"{n} {reason}" for reason, n in counts.iter_rows())
        raise InterlatError(
            f"{where}: task_id {first['task_id']}: {first['reason']} ({rejects.height} problems: {summary})"
        )
    bad = rejects["task_id"].to_list()
    good_index = index.filter(~pl.col("task_id").is_in(bad))
    good_truth = truth.filter(~pl.col("task_id").is_in(bad))
    return conversations(good_index, good_truth, benchmark), rejects


def run_convert(*, latents, data_dir, benchmark: str, strict: bool, out) -> str:
    """The convert stage: shard indexes + the data folder's ground truth -> train.jsonl, test.jsonl
    (every split but train and compress), compress.jsonl (only if the data has that split) and
    rejects.csv."""
    from interlat import shards
    from interlat.atomic import atomic_dir, write_jsonl
    from interlat.data import split_files
    from interlat.jsonl import read_jsonl

    index = pl.concat([shards.read_index(p) for p in latents], how="vertical_relaxed")
    hidden = int(shards.read_manifest(latents[0])["hidden_size"])
    truth = pl.concat([truth_frame(read_jsonl(path), benchmark, str(path)) for path in split_files(data_dir)],
                      how="vertical_relaxed")
    rows, rejects = convert(index, truth, hidden_size=hidden, strict=strict, where=str(latents[0]), benchmark=benchmark)
    student_only = [r for r in rows if r["split"] == "compress"]
    with atomic_dir(out) as tmp:
        write_jsonl(tmp / "train.jsonl", [r for r in rows if r["split"] == "train"])
        write_jsonl(tmp / "test.jsonl", [r for r in rows if r["split"] not in ("train", "compress")])
        if student_only:
            write_jsonl(tmp / "compress.jsonl", student_only)
        rejects.write_csv(tmp / "rejects.csv")
    return f"{len(rows)} conversations, {rejects.height} rejects -> {out}"
