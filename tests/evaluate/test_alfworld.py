"""ALFWorld through the pipeline's commands: data -> tokenizer -> models -> collect -> convert
-> train -> evaluate (episodes) -> tables, on four generated games of one task type.

The receiver is trained for 2 steps only: the tests check the plumbing (conversations, the
batched episode loop for every kind of variant, step caps, resumption, Table 1's shape), not
its success rate.
"""

import json
import logging
import os

import numpy as np
import polars as pl
import pytest

from tests.helpers import run_cli

TYPE = "pick_and_place_simple"
MAX_STEPS = 3
VARIANTS = ["interlat", "text", "no_comm", "no_cot", "cross_task", "randomrot"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Paths of a tiny ALFWorld run, built with the real commands (in-process)."""
    old = os.environ.get("ALFWORLD_DATA")
    root = tmp_path_factory.mktemp("alfworld_pipeline")
    os.environ["ALFWORLD_DATA"] = str(root / "alfworld_data")  # `import alfworld` writes there
    p = {k: root / k for k in ("data", "tokenizer", "sender", "receiver", "latents", "convert", "ckpt")}
    run_cli("data", "--benchmark", "alfworld", "--task-types", TYPE, "--n-train", 2, "--n-valid-seen", 1,
            "--n-valid-unseen", 1, "--out", p["data"])
    run_cli("tokenizer", "--data", p["data"], "--out", p["tokenizer"])
    common = ["--tokenizer", p["tokenizer"], "--hidden-size", 32, "--layers", 1, "--heads", 4,
              "--kv-heads", 2, "--intermediate-size", 64, "--max-positions", 2048]
    run_cli("models", *common, "--pretrain-data", p["data"], "--pretrain-steps", 2, "--out", p["sender"])
    run_cli("models", *common, "--seed", 1, "--out", p["receiver"])
    run_cli("collect", "--sender", p["sender"], "--data", p["data"], "--benchmark", "alfworld", "--subject", TYPE,
            "--temperature", 0.7, "--max-new-tokens", 8, "--work-dir", root / "work/collect", "--out", p["latents"])
    run_cli("convert", "--latents", p["latents"], "--data", p["data"], "--benchmark", "alfworld", "--strict",
            "--out", p["convert"])
    run_cli("train", "--base", p["receiver"], "--conversations", p["convert"] / "train.jsonl",
            "--latents", p["latents"], "--steps", 2, "--batch-size", 2, "--prepended-length", 16,
            "--work-dir", root / "work/train", "--log-csv", root / "train.csv", "--out", p["ckpt"])
    p["root"] = root
    yield p
    if old is None:
        os.environ.pop("ALFWORLD_DATA", None)
    else:
        os.environ["ALFWORLD_DATA"] = old


def evaluate(world, variant: str, seeds: str = "0", max_steps: int = MAX_STEPS, work: str | None = None):
    out = world["root"] / f"evaluate/{work or variant}.parquet"
    run_cli("evaluate", "--benchmark", "alfworld", "--receiver", world["ckpt"],
            "--conversations", world["convert"] / "test.jsonl", "--games", world["data"],
            "--latents", world["latents"], "--variant", variant, "--seeds", seeds, "--temperature", 0.7,
            "--max-new-tokens", 6, "--max-steps", max_steps, "--work-dir", world["root"] / f"work/evaluate/{work or variant}",
            "--out", out)
    return out


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_data_records_and_games(world):
    train, test = read_jsonl(world["data"] / "train.jsonl"), read_jsonl(world["data"] / "test.jsonl")
    assert [r["split"] for r in train] == ["train", "train"]
    assert sorted(r["split"] for r in test) == ["valid_seen", "valid_unseen"]
    for r in train + test:
        assert r["subject"] == TYPE and r["level"] == 0 and r["benchmark"] == "alfworld"
        assert r["problem"].startswith("Your task is to: ") and r["problem"] in r["observation"]
        assert (world["data"] / r["game"] / "game.tw-pddl").is_file()
        assert r["plan"].startswith("take ") and "move " in r["plan"]


def test_convert_builds_alternating_turns_with_the_marker(world):
    from interlat.text.prompts import MARKER, PLAN_SENTENCE

    data = {r["task_id"]: r for r in read_jsonl(world["data"] / "train.jsonl") + read_jsonl(world["data"] / "test.jsonl")}
    rows = read_jsonl(world["convert"] / "train.jsonl") + read_jsonl(world["convert"] / "test.jsonl")
    assert len(rows) == 4 and sorted(r["split"] for r in rows) == ["train", "train", "valid_seen", "valid_unseen"]
    for row in rows:
        turns = row["conversations"]
        first = turns[0]["value"]
        assert turns[0]["from"] == "human" and first.count(MARKER) == 1 and first.endswith(PLAN_SENTENCE + MARKER)
        assert first.startswith(data[row["id"]]["observation"]) and row["task"] == data[row["id"]]["observation"]
        roles = [t["from"] for t in turns]
        assert roles == ["human", "gpt"] * (len(roles) // 2)
        assert all(t["value"].startswith("Thought: ") and "\nAction: " in t["value"] for t in turns[1::2])
        assert all(t["value"].startswith("Observation: ") for t in turns[2::2])
        assert turns[1:] == data[row["id"]]["trajectory"]
        assert row["game"] == data[row["id"]]["game"]


def test_convert_rejects_a_broken_trajectory():
    from interlat.convert import alfworld_turns
    from interlat.errors import InterlatError

    good = [{"from": "gpt", "value": "Thought: a\nAction: look"}]
    assert alfworld_turns({"task_id": "t", "trajectory": good}) == good
    for bad in ([], good + [{"from": "human", "value": "Observation: x"}], [{"from": "human", "value": "x"}] + good):
        with pytest.raises(InterlatError, match="trajectory"):
            alfworld_turns({"task_id": "t", "trajectory": bad})


def test_every_kind_of_variant_plays_episodes_batched_to_the_step_cap(world, monkeypatch):
    """One receiver generation per step for all unfinished episodes; episodes stop at max steps."""
    import interlat.evaluate.alfworld as ev
    from interlat.model.stepcache import StepCache

    calls = []
    real = StepCache.generate

    def counting(cache, h, **kw):
        calls.append(h.shape[0])
        return real(cache, h, **kw)

    monkeypatch.setattr(StepCache, "generate", counting)
    for variant in VARIANTS:
        calls.clear()
        seeds = [0, 1] if variant == "interlat" else [0]
        df = pl.read_parquet(evaluate(world, variant, ",".join(map(str, seeds))))
        assert set(ev.RECORD_SCHEMA) | {"train_seed"} == set(df.columns)
        assert df.height == 2 * len(seeds) and df["variant"].unique().to_list() == [variant]
        assert sorted(df["seed"].to_list()) == sorted(seeds * 2)
        assert sorted(df["split"].unique().to_list()) == ["valid_seen", "valid_unseen"]
        assert (df["steps"] <= MAX_STEPS).all() and (df["steps"] >= 1).all()
        assert (df.filter(~pl.col("won"))["steps"] == MAX_STEPS).all()
        assert (df["actions"].list.len() == df["steps"]).all()
        # one chunk per seed, one call per step, every unfinished episode in it; then one per
        # expert step of the expert-forced pass
        per_seed = df.group_by("seed").agg(pl.col("steps").max(), pl.col("forced_steps").max())
        assert len(calls) == per_seed["steps"].sum() + per_seed["forced_steps"].sum()
        assert max(calls) == 2
        assert (df["forced_steps"] > 0).all() and (df["forced_actions"].list.len() == df["forced_steps"]).all()
        assert ((df["forced_correct"] >= 0) & (df["forced_correct"] <= df["forced_steps"])).all()
        assert (df["message_rows"] > 0).all() == (variant not in ("text", "no_comm", "no_cot"))


def test_evaluation_resumes_from_finished_chunks(world, monkeypatch, caplog):
    import interlat.evaluate.alfworld as ev

    first = pl.read_parquet(evaluate(world, "no_comm"))
    with monkeypatch.context() as m:
        m.setattr(ev, "cached_policy", lambda *a, **k: pytest.fail("chunk redone"))
        again = pl.read_parquet(evaluate(world, "no_comm"))
    assert again.equals(first)
    # another step cap: the chunks of the old one are not reused; the rerun equals a fresh run
    with caplog.at_level(logging.WARNING, logger="interlat.workdir"):
        shorter = pl.read_parquet(evaluate(world, "no_comm", max_steps=1))
    work = world["root"] / "work/evaluate/no_comm"
    assert f"discarding stale state in {work}: settings/inputs changed (max_steps)" in caplog.messages
    assert (shorter["steps"] == 1).all()
    fresh = pl.read_parquet(evaluate(world, "no_comm", max_steps=1, work="no_comm-fresh"))
    assert shorter.drop("seconds").equals(fresh.drop("seconds"))


def test_evaluate_needs_the_games(world):
    r = run_cli("evaluate", "--benchmark", "alfworld", "--receiver", world["ckpt"],
                "--conversations", world["convert"] / "test.jsonl", "--variant", "text",
                "--work-dir", world["root"] / "work/nogames", "--out", world["root"] / "x.parquet", expect=2)
    assert "--games" in r.output


def test_bench_episodes_times_cached_batches_and_the_reference_over_the_same_games(world, tmp_path):
    """P8: a pipeline receiver and a random-shape one; at T=0 every method takes the same actions."""
    from interlat.bench.episodes import METHODS

    n = len(read_jsonl(world["data"] / "test.jsonl"))
    for source in (["--receiver", world["ckpt"]], ["--random-shape", "default", "--layers", 1]):
        out = tmp_path / "episodes.csv"
        run_cli("bench", "episodes", *source, "--games", world["data"], "--max-steps", 2, "--max-new-tokens", 4,
                "--out", out)
        df = pl.read_csv(out)
        assert df["method"].to_list() == [m[0] for m in METHODS]
        assert df["episodes"].to_list() == [n] * 3 and (df["steps"] == 2 * n).all() and (df["wall s"] > 0).all()
        assert df["same actions"].to_list() == ["yes"] * 3 and df["speedup (CPU)"][-1] == "1.00x"


def test_table1_has_one_row_per_variant(world):
    files = [world["root"] / f"evaluate/{v}.parquet" for v in VARIANTS]
    for f in files:
        if not f.exists():
            evaluate(world, f.stem)
    out = world["root"] / "tables"
    args = [a for f in files for a in ("--evaluations", f)]
    run_cli("tables", *args, "--train-logs", world["root"] / "train.csv", "--out", out)
    assert {p.name for p in out.iterdir()} == {
        "table1_alfworld.csv", "table1_alfworld.md", "alfworld_task_types.csv", "alfworld_success.png", "training.png",
        "comparisons.csv", "comparisons.md",
    }
    t1 = pl.read_csv(out / "table1_alfworld.csv")
    assert t1["variant"].to_list() == VARIANTS
    for split in ("seen", "unseen"):
        for stat in ("mean", "std", "lo", "hi", "n", "steps_success", "steps_all"):
            assert f"{split}_{stat}" in t1.columns
        assert (t1[f"{split}_n"] == 1).all()
    md = (out / "table1_alfworld.md").read_text()
    assert "| variant | replicates x seeds | seen success | unseen success | seen steps | unseen steps |" in md
    types = pl.read_csv(out / "alfworld_task_types.csv")
    assert set(types["task_type"]) == {TYPE} and set(types["split"]) == {"seen", "unseen", "all"}


def test_table1_statistics():
    """Success per training replicate, steps over successful episodes and over all, in Table 1's order."""
    from interlat import tables as tb

    rows = []
    for seed, outcomes in ((0, [(True, 4), (False, 20), (True, 6), (False, 20)]), (1, [(True, 2), (True, 8), (False, 20), (False, 20)])):
        for k, (won, steps) in enumerate(outcomes):
            rows.append({"task_id": f"t{k}", "task_type": "pick_and_place_simple", "split": ("valid_seen", "valid_unseen")[k % 2],
                         "variant": "interlat", "seed": 0, "train_seed": seed, "steps": steps, "won": won})
    records = pl.DataFrame(rows)
    assert tb.benchmark_of(records) == "alfworld"
    t1 = tb.alfworld_table(records, ["interlat"]).row(0, named=True)
    # seen: t0 (won 4 / won 2), t2 (won 6 / lost); unseen: t1, t3 (lost / won 8, lost / lost)
    assert t1["seen_mean"] == pytest.approx(75.0) and t1["seen_std"] == pytest.approx(35.3553, rel=1e-4)
    assert t1["unseen_mean"] == pytest.approx(25.0)
    assert t1["seen_steps_success"] == pytest.approx((5.0 + 2.0) / 2)
    assert t1["seen_steps_all"] == pytest.approx((5.0 + 11.0) / 2)
    assert t1["unseen_steps_success"] == pytest.approx(8.0) and t1["unseen_steps_all"] == pytest.approx(17.0)
    assert "3.50 / 8.00" in tb.alfworld_markdown(tb.alfworld_table(records, ["interlat"]), tb.task_type_table(records))
    assert np.isnan(t1["seen_forced"])  # records without the expert-forced columns: no such section
    assert "Expert-forced" not in tb.alfworld_markdown(tb.alfworld_table(records, ["interlat"]), tb.task_type_table(records))


def test_expert_forced_accuracy_beside_table1():
    """Per run (replicate x seed): exact matches over the expert steps of its episodes; mean over runs."""
    from interlat import tables as tb

    rows = []
    # (task, type, split, train_seed, correct, steps)
    for tid, ttype, split, rep, right, steps in [
        ("a", "pick_and_place_simple", "valid_seen", 0, 3, 4), ("b", "look_at_obj_in_light", "valid_seen", 0, 0, 6),
        ("c", "pick_and_place_simple", "valid_unseen", 0, 5, 5), ("a", "pick_and_place_simple", "valid_seen", 1, 4, 4),
        ("b", "look_at_obj_in_light", "valid_seen", 1, 2, 6), ("c", "pick_and_place_simple", "valid_unseen", 1, 1, 5),
    ]:
        rows.append({"task_id": tid, "task_type": ttype, "split": split, "variant": "text", "seed": 0, "train_seed": rep,
                     "steps": 20, "won": False, "forced_correct": right, "forced_steps": steps})
    records = pl.DataFrame(rows)
    t1 = tb.alfworld_table(records, ["text"]).row(0, named=True)
    assert t1["seen_forced"] == pytest.approx((3 / 10 + 6 / 10) / 2 * 100)
    assert t1["unseen_forced"] == pytest.approx((5 / 5 + 1 / 5) / 2 * 100)
    types = tb.task_type_table(records)
    both = types.filter((pl.col("split") == "all") & (pl.col("task_type") == "pick_and_place_simple")).row(0, named=True)
    assert both["forced"] == pytest.approx((8 / 9 + 5 / 9) / 2 * 100)
    md = tb.alfworld_markdown(tb.alfworld_table(records, ["text"]), types)
    assert "### Expert-forced next-action accuracy (%)" in md
    assert "| text | 45.0 | 60.0 | 16.7 | 72.2 |" in md  # seen, unseen, look_at_obj_in_light, pick_and_place_simple


@pytest.mark.parametrize(
    "args, message",
    [
        (["--task-types", "juggle"], "juggle"),
        (["--source", "{tmp}"], "json_2.1.1"),
        (["--source", "official", "--alfworld-data", "$INTERLAT_TEST_UNSET_VAR"], "not set"),
    ],
)
def test_data_errors_name_the_problem(tmp_path, args, message):
    args = [a.format(tmp=tmp_path) for a in args]
    r = run_cli("data", "--benchmark", "alfworld", *args, "--out", tmp_path / "out", expect=2)
    assert message in r.output
    assert not (tmp_path / "out").exists()
