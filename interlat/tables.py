"""The paper's tables from evaluation records, with bootstrap intervals and seed statistics.

Table 2 layout (MATH): accuracy overall and at levels 3-5 per variant, each cell "mean ± std
over seeds [95% bootstrap interval over tasks]"; the bootstrap resamples tasks (all seeds of
a task together) with a fixed seed, so the same records always give the same bytes.
"""

import numpy as np
import polars as pl

BOOTSTRAP = 1000
LEVELS = (3, 4, 5)


def bootstrap_ci(correct_by_task: np.ndarray, seed: int = 0, reps: int = BOOTSTRAP) -> tuple[float, float]:
    """95% percentile interval of the mean over tasks ([n_tasks, n_seeds] array of 0/1)."""
    n = correct_by_task.shape[0]
    if n == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(reps, n))
    means = correct_by_task.mean(1)[idx].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def cell(df: pl.DataFrame) -> dict:
    """Accuracy (%) mean and std over seeds, and the bootstrap interval, for a record subset."""
    if df.height == 0:
        return {"mean": float("nan"), "std": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}
    per_seed = df.group_by("seed").agg(pl.col("correct").mean()).sort("seed")["correct"].to_numpy() * 100
    wide = df.pivot(on="seed", index="task_id", values="correct").drop("task_id").fill_null(False)
    lo, hi = bootstrap_ci(wide.to_numpy().astype(float) * 100)
    return {
        "mean": float(per_seed.mean()),
        "std": float(per_seed.std(ddof=1)) if len(per_seed) > 1 else 0.0,
        "lo": lo,
        "hi": hi,
        "n": int(df["task_id"].n_unique()),
    }


def math_table(records: pl.DataFrame, order: list[str]) -> pl.DataFrame:
    """Table 2: one row per variant; columns per scope (overall, level 3-5) and statistic."""
    rows = []
    for variant in order:
        sub = records.filter(pl.col("variant") == variant)
        if sub.height == 0:
            continue
        row = {"variant": variant, "seeds": int(sub["seed"].n_unique())}
        scopes = {"overall": sub} | {f"level{lv}": sub.filter(pl.col("level") == lv) for lv in LEVELS}
        for name, part in scopes.items():
            for stat, value in cell(part).items():
                row[f"{name}_{stat}"] = value
        rows.append(row)
    return pl.DataFrame(rows)


def subject_table(records: pl.DataFrame) -> pl.DataFrame:
    """Accuracy per variant and subject (mean over seeds, bootstrap interval)."""
    rows = []
    for (variant, subject), sub in sorted(records.group_by(["variant", "subject"]), key=lambda x: x[0]):
        rows.append({"variant": variant, "subject": subject, **cell(sub)})
    return pl.DataFrame(rows)


def fmt(mean: float, std: float, lo: float, hi: float) -> str:
    if np.isnan(mean):
        return "–"
    return f"{mean:.2f} ± {std:.2f} [{lo:.1f}, {hi:.1f}]"


def to_markdown(table: pl.DataFrame, scopes: list[str], title: str) -> str:
    """A Markdown rendering: one column per scope, cells 'mean ± std [lo, hi]'."""
    head = "| variant | seeds | " + " | ".join(scopes) + " |"
    sep = "|---|---|" + "---|" * len(scopes)
    lines = [f"## {title}", "", "Accuracy in %, mean ± std over seeds [95% bootstrap interval over tasks].", "", head, sep]
    for r in table.iter_rows(named=True):
        cells = [fmt(r[f"{s}_mean"], r[f"{s}_std"], r[f"{s}_lo"], r[f"{s}_hi"]) for s in scopes]
        lines.append(f"| {r['variant']} | {r['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
