"""Table 3 on ALFWorld (the paper's): success overall, seen and unseen per message, the latency to
the receiver's first action, beside MATH's Table 3 (kept as it was)."""

import random

import polars as pl

from interlat.evaluate.alfworld import RECORD_SCHEMA as EPISODES
from interlat.evaluate.math import RECORD_SCHEMA as ANSWERS
from interlat.tables import run_tables
from tests.helpers import run_cli

VARIANTS = {"interlat": 0.8, "compressed_8": 0.6, "first_8": 0.3, "truncated_0": 0.1}  # success probability


def episodes(variant: str, p: float, rng: random.Random) -> pl.DataFrame:
    rows = []
    for seed in (0, 1):
        for i in range(20):
            won = rng.random() < p
            row = {"task_id": f"g{i}", "game": f"valid/g{i}", "task_type": "pick_and_place_simple",
                   "split": "valid_seen" if i < 10 else "valid_unseen", "variant": variant, "seed": seed,
                   "steps": 4 if won else 6, "won": won, "actions": ["look"], "message_rows": 8, "seconds": 0.1}
            rows.append({k: row.get(k, [] if EPISODES[k] == pl.List(pl.String) else 0) for k in EPISODES})
    return pl.DataFrame(rows, schema=EPISODES)


def answers(variant: str) -> pl.DataFrame:
    rows = [{"task_id": f"t{i}", "variant": variant, "seed": 0, "subject": "algebra", "level": 3, "prediction": "x",
             "extracted": "1", "correct": i % 2 == 0, "n_tokens": 3, "message_rows": 4, "seconds": 0.1} for i in range(6)]
    return pl.DataFrame(rows, schema=ANSWERS)


def latency_csv(path, variants):
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"variant": v, "message_rows": 8, "message_s": 1.0 / (i + 1), "receiver_s": 0.5, "total_s": 1.0 / (i + 1) + 0.5,
             "speedup_message": i + 1.0, "speedup_total": 1.5 / (1.0 / (i + 1) + 0.5), "tasks": 2, "repeats": 1}
            for i, v in enumerate(variants)]
    pl.DataFrame(rows).write_csv(path)
    return path


def test_alfworld_table3_has_seen_unseen_success_and_first_action_latency(tmp_path):
    rng = random.Random(0)
    paths = []
    for v, p in VARIANTS.items():
        episodes(v, p, rng).write_parquet(path := tmp_path / f"alfworld-{v}.parquet")
        paths.append(path)
    math_paths = []
    for v in ("interlat", "compressed_8"):
        answers(v).write_parquet(path := tmp_path / f"math-{v}.parquet")
        math_paths.append(path)
    lat = [latency_csv(tmp_path / "latency/alfworld/full.csv", ["interlat", "first_8", "truncated_0"]),
           latency_csv(tmp_path / "latency/alfworld/K8.csv", ["interlat", "compressed_8"]),
           latency_csv(tmp_path / "latency/math/full.csv", ["interlat"])]
    out = tmp_path / "tables"
    run_tables(evaluations=paths[:1] + math_paths[:1], train_logs=[], compress_evaluations=paths + math_paths,
               latency=lat, out=out)
    t3 = pl.read_csv(out / "table3_compression_alfworld.csv")
    assert t3["variant"].to_list() == ["interlat", "compressed_8", "first_8", "truncated_0"]
    records = pl.concat([pl.read_parquet(p) for p in paths])
    for row in t3.iter_rows(named=True):
        mine = records.filter(pl.col("variant") == row["variant"])
        assert abs(row["overall_mean"] - mine["won"].mean() * 100) < 1e-6  # equal seeds: mean over seeds = pooled
        seen = mine.filter(pl.col("split") == "valid_seen")["won"].mean() * 100
        assert abs(row["seen_mean"] - seen) < 1e-6
        assert {"unseen_mean", "retained", "receiver_s", "speedup_total"} <= set(row)
    assert t3.filter(pl.col("variant") == "compressed_8")["message_s"][0] == 0.5  # its own K8 file, not MATH's
    md = (out / "table3_compression_alfworld.md").read_text()
    assert "Table 3: compression, ALFWorld" in md and "first action" in md and "| seen | unseen |" in md
    assert (out / "compression_alfworld.png").stat().st_size > 0
    math_t3 = pl.read_csv(out / "table3_compression.csv")  # MATH's Table 3 stays where it was
    assert math_t3["variant"].to_list() == ["interlat", "compressed_8"] and "seen_mean" not in math_t3.columns
    assert "first answer token" in (out / "table3_compression.md").read_text()


def test_latency_help_names_the_first_action():
    out = run_cli("latency", "--help").output
    assert "--action-tokens" in out and "first action" in out
