"""The paper's tables from evaluation records, with bootstrap intervals and seed statistics.

Table 2 layout (MATH): accuracy overall and at levels 3-5 per variant, each cell "mean ± std
over seeds [95% bootstrap interval over tasks]"; the bootstrap resamples tasks (all seeds of
a task together) with a fixed seed, so the same records always give the same bytes.

Table 1 layout (ALFWorld, docs/method.md section 5): per variant, success rate on the seen
(valid_seen) and unseen (valid_unseen) episodes in the same cell format, and mean steps as
"successful episodes / all episodes" (each a mean over seeds of the per-seed mean); plus
success per task type. Which table a record set feeds is read from its schema
(`benchmark_of`): MATH records grade `correct`, ALFWorld records carry `won` and `steps`.
"""

from pathlib import Path

import numpy as np
import polars as pl

from interlat.records import RECORD_COLUMNS, concat_records, read_records  # noqa: F401 (checked input)
from interlat.stats import bootstrap_ci, cell, difference, fmt, spread_note  # noqa: F401 (the tables' statistics)
from interlat.variants import is_variant, parse

LEVELS = (3, 4, 5)


def benchmark_of(records: pl.DataFrame) -> str:
    """'alfworld' for episode records (`won`, `steps`), 'math' for graded answers (`correct`)."""
    return "alfworld" if {"won", "steps"} <= set(records.columns) else "math"


def runs(df: pl.DataFrame) -> dict:
    """How many training replicates and evaluation seeds a row's cells average."""
    reps = df["train_seed"].n_unique() if "train_seed" in df.columns else 1
    return {"replicates": int(reps), "seeds": int(df["seed"].n_unique())}


def math_table(records: pl.DataFrame, order: list[str]) -> pl.DataFrame:
    """Table 2: one row per variant; columns per scope (overall, level 3-5) and statistic."""
    rows = []
    for variant in order:
        sub = records.filter(pl.col("variant") == variant)
        if sub.height == 0:
            continue
        row = {"variant": variant, **runs(sub)}
        scopes = {"overall": sub} | {f"level{lv}": sub.filter(pl.col("level") == lv) for lv in LEVELS}
        for name, part in scopes.items():
            for stat, value in cell(part).items():
                if stat not in ("replicates", "seeds"):
                    row[f"{name}_{stat}"] = value
        rows.append(row)
    return pl.DataFrame(rows)


def subject_table(records: pl.DataFrame) -> pl.DataFrame:
    """Accuracy per variant and subject (mean over seeds, bootstrap interval)."""
    rows = []
    for (variant, subject), sub in sorted(records.group_by(["variant", "subject"]), key=lambda x: x[0]):
        rows.append({"variant": variant, "subject": subject, **cell(sub)})
    return pl.DataFrame(rows)


def to_markdown(table: pl.DataFrame, scopes: list[str], title: str) -> str:
    """A Markdown rendering: one column per scope, cells 'mean ± std [lo, hi]'."""
    head = "| variant | replicates x seeds | " + " | ".join(scopes) + " |"
    sep = "|---|---|" + "---|" * len(scopes)
    note = spread_note(int(table["replicates"].max()), int(table["seeds"].max()))
    lines = [f"## {title}", "", f"Accuracy in %, mean {note}", "", head, sep]
    for r in table.iter_rows(named=True):
        cells = [fmt(r[f"{s}_mean"], r[f"{s}_std"], r[f"{s}_lo"], r[f"{s}_hi"]) for s in scopes]
        lines.append(f"| {r['variant']} | {r['replicates']} x {r['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


#: Table 3 columns taken from the latency files (`interlat bench latency`)
LATENCY_COLUMNS = ("message_s", "receiver_s", "total_s", "speedup_total")


def compression_order(variants: list[str]) -> list[str]:
    """Table 3 row order: the full message, trained students (K descending), then the untrained
    first_<K> (K descending) and truncated_<p> (p descending) baselines."""

    ranks = {"interlat": 0, "compressed_<K>": 1, "first_<K>": 2, "truncated_<p>": 3}

    def key(name: str):
        v = parse(name) if is_variant(name) else None
        size = (v.k if v.k is not None else v.p or 0) if v else 0
        return (ranks.get(v.family if v else None, 4), -size, name)

    return sorted(dict.fromkeys(variants), key=key)


def compression_table(records: pl.DataFrame, latency: pl.DataFrame | None) -> pl.DataFrame:
    """Table 3: accuracy (overall) and latency per message: full, compressed_<K>, baselines.
    ALFWorld records (the paper's Table 3): success overall and on the seen and unseen splits.

    `latency` rows come from `interlat bench latency` files, the first row of each variant
    kept (pass the full-message file first); each speedup is relative to the full message
    timed in the same file.
    """
    order = compression_order(records["variant"].unique().to_list())
    lat = {}
    if latency is not None:
        for row in latency.iter_rows(named=True):
            lat.setdefault(row["variant"], row)
    rows = []
    for variant in order:
        sub = records.filter(pl.col("variant") == variant)
        row = {"variant": variant, **runs(sub), "message_rows": float(sub["message_rows"].mean())}
        scopes = {"overall": sub}
        if benchmark_of(records) == "alfworld":
            scopes |= {name: sub.filter(pl.col("split") == split) for name, split in ALFWORLD_SPLITS.items()}
        for name, part in scopes.items():
            column = "won" if benchmark_of(records) == "alfworld" else "correct"
            row.update({f"{name}_{k}": v for k, v in cell(part, column).items() if k not in ("replicates", "seeds")})
        row.update({k: float(lat[variant][k]) if variant in lat else float("nan") for k in LATENCY_COLUMNS})
        rows.append(row)
    table = pl.DataFrame(rows)
    full = table.filter(pl.col("variant") == "interlat")["overall_mean"]
    # retained: the share of the full message's accuracy a shorter message keeps
    return table.with_columns((pl.col("overall_mean") / (full[0] if len(full) else float("nan")) * 100).alias("retained"))


def compression_markdown(table: pl.DataFrame, benchmark: str = "math") -> str:
    splits = list(ALFWORLD_SPLITS) if benchmark == "alfworld" else []
    what, until = ("Success", "first action") if splits else ("Accuracy", "first answer token")
    lines = [
        f"## Table 3: compression, {'ALFWorld' if splits else 'MATH'} ({what.lower()} and latency per message)",
        "",
        f"{what} in %, mean {spread_note(int(table['replicates'].max()), int(table['seeds'].max()))} "
        f"Retained: {what.lower()} as a % of the full message's (interlat). Latency: seconds per task at "
        f"batch size 1 (median over repeats, mean over tasks) to produce the message, and for the receiver's {until}; "
        "speedup of the total against the full message timed in the same run.",
        "",
        f"| variant | message rows | {what.lower()} | " + "".join(f"{s} | " for s in splits)
        + "retained | message s | receiver s | total s | speedup |",
        "|---|--:|---|" + "---|" * len(splits) + "--:|--:|--:|--:|--:|",
    ]
    for r in table.iter_rows(named=True):
        acc = " | ".join(fmt(r[f"{s}_mean"], r[f"{s}_std"], r[f"{s}_lo"], r[f"{s}_hi"]) for s in ["overall", *splits])
        lat = [("–" if np.isnan(r[k]) else f"{r[k]:.4g}") for k in ("message_s", "receiver_s", "total_s")]
        speed = "–" if np.isnan(r["speedup_total"]) else f"{r['speedup_total']:.1f}x"
        kept = "–" if np.isnan(r["retained"]) else f"{r['retained']:.0f}%"
        lines.append(f"| {r['variant']} | {r['message_rows']:.1f} | {acc} | {kept} | " + " | ".join(lat) + f" | {speed} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- ALFWorld (Table 1)
ALFWORLD_SPLITS = {"seen": "valid_seen", "unseen": "valid_unseen"}


def mean_steps(df: pl.DataFrame) -> float:
    """Mean over runs (training replicate x evaluation seed) of each run's mean episode length
    (nan without episodes)."""
    if df.height == 0:
        return float("nan")
    runs = [c for c in ("train_seed", "seed") if c in df.columns]
    return float(df.group_by(runs).agg(pl.col("steps").mean()).sort(runs)["steps"].mean())


def forced_rate(df: pl.DataFrame) -> float:
    """Expert-forced next-action exact matches in % (interlat.evaluate.forced): per run, matches
    over the expert steps of its episodes; mean over runs (nan without steps or the columns)."""
    if df.height == 0 or "forced_steps" not in df.columns:
        return float("nan")
    runs = [c for c in ("train_seed", "seed") if c in df.columns]
    per_run = df.group_by(runs).agg(pl.col("forced_correct").sum() / pl.col("forced_steps").sum())
    rates = per_run["forced_correct"].drop_nans().drop_nulls()
    return float(rates.mean() * 100) if rates.len() else float("nan")


def alfworld_table(records: pl.DataFrame, order: list[str]) -> pl.DataFrame:
    """Table 1: one row per variant; success and steps (successful / all) per split."""
    rows = []
    for variant in order:
        sub = records.filter(pl.col("variant") == variant)
        if sub.height == 0:
            continue
        row = {"variant": variant, **runs(sub)}
        for name, split in ALFWORLD_SPLITS.items():
            part = sub.filter(pl.col("split") == split)
            for stat, value in cell(part, "won").items():
                if stat not in ("replicates", "seeds"):
                    row[f"{name}_{stat}"] = value
            row[f"{name}_steps_success"] = mean_steps(part.filter(pl.col("won")))
            row[f"{name}_steps_all"] = mean_steps(part)
            row[f"{name}_forced"] = forced_rate(part)
        rows.append(row)
    return pl.DataFrame(rows)


def task_type_table(records: pl.DataFrame) -> pl.DataFrame:
    """Success per variant, split (seen, unseen, all) and task type."""
    rows = []
    splits = {**ALFWORLD_SPLITS, "all": None}
    for (variant, task_type), sub in sorted(records.group_by(["variant", "task_type"]), key=lambda x: x[0]):
        for name, split in splits.items():
            part = sub if split is None else sub.filter(pl.col("split") == split)
            rows.append({"variant": variant, "split": name, "task_type": task_type, **cell(part, "won"),
                         "steps_success": mean_steps(part.filter(pl.col("won"))), "steps_all": mean_steps(part),
                         "forced": forced_rate(part)})
    return pl.DataFrame(rows)


def _steps(a: float, b: float) -> str:
    return " / ".join("–" if np.isnan(x) else f"{x:.2f}" for x in (a, b))


def alfworld_markdown(table: pl.DataFrame, types: pl.DataFrame) -> str:
    """Table 1 in Markdown, then success per task type (all splits)."""
    lines = [
        "## Table 1: ALFWorld",
        "",
        f"Success in %, mean {spread_note(int(table['replicates'].max()), int(table['seeds'].max()))}",
        "Steps: mean over successful episodes / over all episodes (failed ones count the step cap).",
        "",
        "| variant | replicates x seeds | seen success | unseen success | seen steps | unseen steps |",
        "|---|---|---|---|---|---|",
    ]
    for r in table.iter_rows(named=True):
        cells = [fmt(r[f"{s}_mean"], r[f"{s}_std"], r[f"{s}_lo"], r[f"{s}_hi"]) for s in ALFWORLD_SPLITS]
        cells += [_steps(r[f"{s}_steps_success"], r[f"{s}_steps_all"]) for s in ALFWORLD_SPLITS]
        lines.append(f"| {r['variant']} | {r['replicates']} x {r['seeds']} | " + " | ".join(cells) + " |")
    everything = types.filter(pl.col("split") == "all")
    names = sorted(set(everything["task_type"].to_list()))
    lines += ["", "### Success per task type (seen and unseen)", "", "| variant | " + " | ".join(names) + " |",
              "|---|" + "---|" * len(names)]
    for variant in table["variant"].to_list():
        mine = {r["task_type"]: r for r in everything.filter(pl.col("variant") == variant).iter_rows(named=True)}
        cells = [f"{mine[t]['mean']:.1f} (n={mine[t]['n']})" if t in mine else "–" for t in names]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines + forced_lines(table, everything, names)) + "\n"


def _pct(x: float | None) -> str:
    return "–" if x is None or np.isnan(x) else f"{x:.1f}"


def forced_lines(table: pl.DataFrame, everything: pl.DataFrame, names: list[str]) -> list[str]:
    """Beside Table 1: expert-forced next-action accuracy per variant, split and task type."""
    if "seen_forced" not in table.columns or table["seen_forced"].is_nan().all():
        return []
    lines = ["", "### Expert-forced next-action accuracy (%)", "",
             "The receiver sees the expert's history and predicts the next action (greedy); exact matches over "
             "the expert's steps. High for a receiver that wins; the first place to look when one does not.", "",
             "| variant | seen | unseen | " + " | ".join(names) + " |", "|---|---|---|" + "---|" * len(names)]
    for r in table.iter_rows(named=True):
        mine = {t["task_type"]: t["forced"] for t in everything.filter(pl.col("variant") == r["variant"]).iter_rows(named=True)}
        cells = [_pct(r["seen_forced"]), _pct(r["unseen_forced"])] + [_pct(mine.get(t)) for t in names]
        lines.append(f"| {r['variant']} | " + " | ".join(cells) + " |")
    return lines


# --------------------------------------------------------------------------- the claims
def comparison_table(records: pl.DataFrame, column: str, reference: str = "interlat") -> pl.DataFrame:
    """`reference` minus every other variant (points), paired on tasks: mean ± std over
    replicates and the bootstrap interval over tasks — the differences the claims rest on."""
    ref = records.filter(pl.col("variant") == reference)
    rows = []
    for variant in dict.fromkeys(records["variant"].to_list()):
        if variant != reference and ref.height:
            other = records.filter(pl.col("variant") == variant)
            rows.append({"reference": reference, "variant": variant, **difference(ref, other, column)})
    return pl.DataFrame(rows)


def comparison_markdown(tables: dict[str, pl.DataFrame]) -> str:
    lines = ["## Interlat against each variant", "",
             "Difference in points (interlat minus the variant, MATH accuracy / ALFWorld success over all episodes), "
             "mean ± std over training replicates [95% paired bootstrap interval over tasks]; an interval above 0 "
             "means interlat wins beyond the spread of the tasks.", "",
             "| benchmark | variant | replicates | difference | beyond the interval |", "|---|---|--:|---|---|"]
    for benchmark, table in tables.items():
        for r in table.iter_rows(named=True):
            verdict = "yes" if r["lo"] > 0 else ("worse" if r["hi"] < 0 else "no")
            lines.append(f"| {benchmark} | {r['variant']} | {r['replicates']} | "
                         f"{fmt(r['diff'], r['std'], r['lo'], r['hi'])} | {verdict} |")
    return "\n".join(lines) + "\n"


#: the columns the tables read from evaluation records, per benchmark (a subset of each
#: `RECORD_SCHEMA` in interlat.evaluate.math / interlat.evaluate.alfworld)
def run_tables(*, evaluations, train_logs, compress_evaluations, latency, out) -> str:
    """The tables stage: Tables 1-3 (CSV + Markdown) and plots from the per-example records in `out`."""
    from interlat import plots
    from interlat.atomic import atomic_dir

    frames: dict[str, list] = {}
    for p in evaluations:
        df = read_records(p)
        frames.setdefault(benchmark_of(df), []).append((str(p), df))
    # all records checked before anything is written
    compressed = [(str(p), read_records(p)) for p in compress_evaluations]
    # labels benchmark/replicate<r>/receiver (train/<benchmark>/replicate<r>/<receiver>.csv)
    logs = {"/".join([*Path(p).parent.parts[-2:], Path(p).stem]): pl.read_csv(p) for p in train_logs}
    claims = {}
    shown = []
    with atomic_dir(out) as tmp:
        if "math" in frames:
            records = concat_records(frames["math"])
            t2 = math_table(records, list(dict.fromkeys(records["variant"].to_list())))
            t2.write_csv(tmp / "table2_math.csv", float_precision=4)
            shown.append(to_markdown(t2, ["overall", "level3", "level4", "level5"], "Table 2: MATH accuracy"))
            (tmp / "table2_math.md").write_text(shown[-1])
            subject_table(records).write_csv(tmp / "math_subjects.csv", float_precision=4)
            plots.accuracy_plot(t2, tmp / "accuracy.png", "MATH-format accuracy per variant")
            claims["math"] = comparison_table(records, "correct")
        if "alfworld" in frames:
            records = concat_records(frames["alfworld"])
            t1 = alfworld_table(records, list(dict.fromkeys(records["variant"].to_list())))
            types = task_type_table(records)
            t1.write_csv(tmp / "table1_alfworld.csv", float_precision=4)
            shown.append(alfworld_markdown(t1, types))
            (tmp / "table1_alfworld.md").write_text(shown[-1])
            types.write_csv(tmp / "alfworld_task_types.csv", float_precision=4)
            plots.success_plot(t1, tmp / "alfworld_success.png", "ALFWorld success per variant")
            claims["alfworld"] = comparison_table(records, "won")
        if any(t.height for t in claims.values()):
            pl.concat([t.with_columns(pl.lit(b).alias("benchmark")) for b, t in claims.items() if t.height],
                      how="diagonal").write_csv(tmp / "comparisons.csv", float_precision=4)
            shown.append(comparison_markdown({b: t for b, t in claims.items() if t.height}))
            (tmp / "comparisons.md").write_text(shown[-1])
        if logs:
            plots.training_plot(logs, tmp / "training.png")
        by_bench = {}
        for path, df in compressed:
            by_bench.setdefault(benchmark_of(df), []).append((path, df))
        for bench, dfs in by_bench.items():  # latency files sit in latency/<benchmark>/ (all: one benchmark)
            mine = [p for p in latency if len(by_bench) == 1 or Path(p).parent.name == bench]
            lat = pl.concat([pl.read_csv(p) for p in mine], how="diagonal_relaxed") if mine else None
            t3 = compression_table(concat_records(dfs), lat)
            shown.append(compression_markdown(t3, bench))
            stem = {"math": (tmp / "table3_compression.csv", tmp / "table3_compression.md", tmp / "compression.png"),
                    "alfworld": (tmp / "table3_compression_alfworld.csv", tmp / "table3_compression_alfworld.md",
                                 tmp / "compression_alfworld.png")}[bench]  # fmt: skip
            t3.write_csv(stem[0], float_precision=4)
            stem[1].write_text(shown[-1])
            plots.compression_plot(t3, stem[2], "success" if bench == "alfworld" else "accuracy")
    return "\n".join(shown)
