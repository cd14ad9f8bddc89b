"""Tables and plots: mean ± std over training replicates, bootstrap intervals over tasks, the
paired differences the claims rest on, Table 3 order and retained fraction, PNG figures."""

import numpy as np
import polars as pl
import pytest

from interlat import plots
from interlat.tables import (
    bootstrap_ci,
    cell,
    comparison_markdown,
    comparison_table,
    compression_markdown,
    compression_order,
    compression_table,
    math_table,
    to_markdown,
)


def records(correct: dict[int, list[bool]], variant: str = "interlat", level: int = 3, replicate: int | None = None,
            ) -> pl.DataFrame:
    """Per-example records: seed -> correctness of tasks t0, t1, ... (of one training replicate)."""
    rows = [{"task_id": f"t{i}", "variant": variant, "seed": seed, "level": level, "correct": ok, "message_rows": 8}
            for seed, oks in correct.items() for i, ok in enumerate(oks)]
    df = pl.DataFrame(rows)
    return df if replicate is None else df.with_columns(pl.lit(replicate, dtype=pl.Int64).alias("train_seed"))


THREE = [[True, False, False, False], [True, True, False, False], [True, True, True, False]]


def test_cell_spread_is_over_training_replicates_not_evaluation_seeds():
    reps = pl.concat([records({0: oks, 1: oks}, replicate=r) for r, oks in enumerate(THREE)])
    c = cell(reps)
    assert c["mean"] == pytest.approx(50.0) and c["std"] == pytest.approx(25.0) and c["n"] == 4
    assert (c["replicates"], c["seeds"]) == (3, 2) and c["lo"] <= c["mean"] <= c["hi"]
    # three evaluation seeds of ONE replicate: the same mean, but no spread to claim
    one = cell(records(dict(enumerate(THREE))))
    assert one["mean"] == pytest.approx(50.0) and np.isnan(one["std"]) and one["replicates"] == 1


def test_one_replicate_prints_a_dash_and_the_reason_never_plus_minus_zero():
    t = math_table(records({0: [True, True]}), ["interlat"])
    md = to_markdown(t, ["overall"], "Table 2")
    assert "| interlat | 1 x 1 | 100.00 ± – [100.0, 100.0] |" in md
    assert "one training replicate" in md and "± 0.00" not in md


def test_difference_is_paired_over_tasks_with_spread_over_replicates():
    a = pl.concat([records({0: [True, True, True, False]}, replicate=r) for r in (0, 1)])
    b = pl.concat([records({0: [True, False, False, False]}, "no_comm", replicate=0),
                   records({0: [True, True, False, False]}, "no_comm", replicate=1)])
    t = comparison_table(pl.concat([a, b]), "correct")
    r = t.row(0, named=True)
    assert r["variant"] == "no_comm" and r["diff"] == pytest.approx(37.5) and r["std"] == pytest.approx(17.6777, rel=1e-4)
    assert r["replicates"] == 2 and r["n"] == 4 and r["lo"] <= r["diff"] <= r["hi"]
    assert "| math | no_comm | 2 | 37.50 ± 17.68" in comparison_markdown({"math": t})


def test_compression_table_shows_the_retained_fraction():
    recs = pl.concat([records({0: [True, True, True, False]}), records({0: [True, True, False, False]}, "compressed_8")])
    t = compression_table(recs, None)
    assert t.filter(pl.col("variant") == "compressed_8")["retained"][0] == pytest.approx(200 / 3)
    assert "| compressed_8 | 8.0 | 50.00 ± – [" in compression_markdown(t) and "| 67% |" in compression_markdown(t)


def test_bootstrap_interval_is_seeded_and_collapses_without_variance():
    x = np.array([[1.0], [0.0], [1.0], [1.0], [0.0]])
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)
    assert bootstrap_ci(np.ones((6, 2))) == (1.0, 1.0)
    assert all(np.isnan(bootstrap_ci(np.zeros((0, 1)))))


def test_math_table_keeps_the_given_order_and_skips_absent_variants():
    recs = pl.concat([records({0: [True, False]}, "no_comm"), records({0: [True, True]}, "interlat", level=5)])
    t = math_table(recs, ["interlat", "text", "no_comm"])
    assert t["variant"].to_list() == ["interlat", "no_comm"]
    assert t["overall_mean"].to_list() == [100.0, 50.0]
    assert np.isnan(t.filter(pl.col("variant") == "interlat")["level3_mean"][0])
    md = to_markdown(t, ["overall", "level3"], "Table 2")
    assert "| interlat | 1 x 1 | 100.00 ± – [100.0, 100.0] | – |" in md


def test_compression_order():
    got = compression_order(["truncated_10", "first_8", "compressed_8", "interlat", "compressed_16", "truncated_100"])
    assert got == ["interlat", "compressed_16", "compressed_8", "first_8", "truncated_100", "truncated_10"]


def test_plots_write_pngs(tmp_path):
    recs = pl.concat([records({0: [True, False], 1: [True, True]}, v) for v in ("interlat", "no_comm")])
    plots.accuracy_plot(math_table(recs, ["interlat", "no_comm"]), tmp_path / "a.png", "accuracy")
    logs = {"interlat": pl.DataFrame({"step": [0, 1, 2], "loss": [3.0, 2.0, 1.5], "ce": [2.5, 1.8, 1.2]})}
    plots.training_plot(logs, tmp_path / "t.png")
    for name in ("a.png", "t.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_records_with_other_columns_or_integer_widths_make_one_table(tmp_path):
    """Records written by another version (an extra column, Int32 levels) join the others: the
    missing column is null there, the integers widen; no ShapeError."""
    from interlat.tables import run_tables

    base = records({0: [True, False, True, False]}).with_columns(pl.lit("algebra").alias("subject"))
    other = base.with_columns(pl.col("level").cast(pl.Int32), pl.lit(0).alias("train_seed"),
                              pl.lit("text").alias("variant"))
    paths = [tmp_path / "interlat.parquet", tmp_path / "text.parquet"]
    base.write_parquet(paths[0])
    other.write_parquet(paths[1])
    run_tables(evaluations=paths, train_logs=[], compress_evaluations=[], latency=[], out=tmp_path / "tables")
    t2 = pl.read_csv(tmp_path / "tables" / "table2_math.csv")
    assert t2["variant"].to_list() == ["interlat", "text"]


def test_records_whose_columns_cannot_join_are_one_line_naming_both_files(tmp_path):
    from interlat.errors import InterlatError
    from interlat.tables import run_tables

    base = records({0: [True, False]}).with_columns(pl.lit("algebra").alias("subject"), pl.lit(1).alias("extra"))
    other = base.with_columns(pl.lit(b"1").alias("extra"), pl.lit("text").alias("variant"))
    paths = [tmp_path / "interlat.parquet", tmp_path / "text.parquet"]
    base.write_parquet(paths[0])
    other.write_parquet(paths[1])
    with pytest.raises(InterlatError, match=r'text\.parquet: column "extra": .*interlat\.parquet') as err:
        run_tables(evaluations=paths, train_logs=[], compress_evaluations=[], latency=[], out=tmp_path / "tables")
    assert "\n" not in str(err.value) and not (tmp_path / "tables").exists()
