"""Tables and plots: mean and std over seeds, bootstrap intervals over tasks, Table 3 order, PNG figures."""

import numpy as np
import polars as pl
import pytest

from interlat import plots
from interlat.tables import bootstrap_ci, cell, compression_order, math_table, to_markdown


def records(correct: dict[int, list[bool]], variant: str = "interlat", level: int = 3) -> pl.DataFrame:
    """Per-example records: seed -> correctness of tasks t0, t1, ..."""
    rows = [{"task_id": f"t{i}", "variant": variant, "seed": seed, "level": level, "correct": ok}
            for seed, oks in correct.items() for i, ok in enumerate(oks)]
    return pl.DataFrame(rows)


def test_cell_is_the_mean_and_sample_std_over_seeds():
    c = cell(records({0: [True, False, False, False], 1: [True, True, False, False], 2: [True, True, True, False]}))
    assert c["mean"] == pytest.approx(50.0) and c["std"] == pytest.approx(25.0) and c["n"] == 4
    assert c["lo"] <= c["mean"] <= c["hi"]


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
    assert "| interlat | 1 | 100.00 ± 0.00 [100.0, 100.0] | – |" in md


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
