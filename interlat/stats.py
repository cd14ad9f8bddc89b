"""Table statistics: rates over training replicates and evaluation seeds, bootstrap intervals.

A record set holds one row per (training replicate, evaluation seed, task). A cell's mean is
the mean over replicates of each replicate's rate (itself the mean over its evaluation seeds);
its spread is the standard deviation over replicates — how much retraining moves the number,
which evaluation seeds (decoding noise only) cannot show. With one replicate there is no spread:
`std` is NaN and the tables print a dash, never "± 0.00". The interval is a percentile
bootstrap over tasks (every replicate and seed of a task resampled together) with a fixed seed,
so the same records always give the same bytes. Records without a `train_seed` column (written
before replicates existed) count as one replicate.
"""

import numpy as np
import polars as pl

BOOTSTRAP = 1000
REPLICATE = "train_seed"


def bootstrap_ci(correct_by_task: np.ndarray, seed: int = 0, reps: int = BOOTSTRAP) -> tuple[float, float]:
    """95% percentile interval of the mean over tasks ([n_tasks, n_runs] array)."""
    n = correct_by_task.shape[0]
    if n == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(reps, n))
    means = correct_by_task.mean(1)[idx].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def with_replicate(df: pl.DataFrame) -> pl.DataFrame:
    return df if REPLICATE in df.columns else df.with_columns(pl.lit(0, dtype=pl.Int64).alias(REPLICATE))


def by_task(df: pl.DataFrame, column: str) -> pl.DataFrame:
    """task_id and the task's rate (%) over every (replicate, seed) run it has."""
    return df.group_by("task_id").agg((pl.col(column).cast(pl.Float64).mean() * 100).alias("rate")).sort("task_id")


def replicate_rates(df: pl.DataFrame, column: str) -> np.ndarray:
    """Each replicate's rate (%): the mean over its evaluation seeds of the per-seed rate."""
    per_seed = df.group_by([REPLICATE, "seed"]).agg(pl.col(column).cast(pl.Float64).mean() * 100)
    return per_seed.group_by(REPLICATE).agg(pl.col(column).mean()).sort(REPLICATE)[column].to_numpy()


def cell(df: pl.DataFrame, column: str = "correct") -> dict:
    """Rate (%) of a boolean column over a record subset: mean and std over replicates, bootstrap
    interval over tasks, tasks, replicates and evaluation seeds."""
    if df.height == 0:
        nan = float("nan")
        return {"mean": nan, "std": nan, "lo": nan, "hi": nan, "n": 0, "replicates": 0, "seeds": 0}
    df = with_replicate(df)
    rates = replicate_rates(df, column)
    lo, hi = bootstrap_ci(by_task(df, column)["rate"].to_numpy()[:, None])
    return {
        "mean": float(rates.mean()),
        "std": float(rates.std(ddof=1)) if len(rates) > 1 else float("nan"),
        "lo": lo,
        "hi": hi,
        "n": int(df["task_id"].n_unique()),
        "replicates": len(rates),
        "seeds": int(df["seed"].n_unique()),
    }


def difference(a: pl.DataFrame, b: pl.DataFrame, column: str = "correct") -> dict:
    """Rate of `a` minus rate of `b` (points) on the tasks both have: mean and std over the
    replicates both have, paired bootstrap interval over tasks."""
    a, b = with_replicate(a), with_replicate(b)
    tasks = set(a["task_id"].to_list()) & set(b["task_id"].to_list())
    a, b = a.filter(pl.col("task_id").is_in(tasks)), b.filter(pl.col("task_id").is_in(tasks))
    reps = sorted(set(a[REPLICATE].to_list()) & set(b[REPLICATE].to_list()))
    diffs = np.array([replicate_rates(a.filter(pl.col(REPLICATE) == r), column)[0]
                      - replicate_rates(b.filter(pl.col(REPLICATE) == r), column)[0] for r in reps])
    paired = by_task(a, column).join(by_task(b, column), on="task_id", suffix="_b")
    lo, hi = bootstrap_ci((paired["rate"] - paired["rate_b"]).to_numpy()[:, None])
    nan = float("nan")
    return {
        "diff": float(diffs.mean()) if len(diffs) else nan,
        "std": float(diffs.std(ddof=1)) if len(diffs) > 1 else nan,
        "lo": lo,
        "hi": hi,
        "n": len(tasks),
        "replicates": len(reps),
    }


def fmt(mean: float, std: float, lo: float, hi: float) -> str:
    """'mean ± std [lo, hi]'; '± –' when there is no spread to show (one replicate)."""
    if np.isnan(mean):
        return "–"
    spread = "–" if np.isnan(std) else f"{std:.2f}"
    return f"{mean:.2f} ± {spread} [{lo:.1f}, {hi:.1f}]"


def spread_note(replicates: int, seeds: int) -> str:
    """The sentence under a table saying what its ± and interval are made of."""
    if replicates > 1:
        spread = f"± std over {replicates} training replicates (each the mean over {seeds} evaluation seed(s))"
    else:
        spread = (f"± –: one training replicate, so no spread over retraining is shown (mean over {seeds} "
                  "evaluation seed(s); `--config replicates='[0,1,2]'` measures it)")
    return f"{spread}; [95% bootstrap interval over tasks]."
