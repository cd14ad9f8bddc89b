"""The real Snakemake workflow on config/test.yaml, in a fresh copy of the repository (e2e).

One module-scoped run; the tests then check the outputs, the table's shape, a no-op rerun,
incremental reruns (`snakemake -n` job lists) and the HTML report.
"""

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from tests.helpers import REPO, copy_repo, finished_workflow, planned_jobs, smk

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(2400)]  # the first test builds the shared world (whole pipeline / image / cluster)
BIN = Path(sys.executable).parent
VARIANTS = yaml.safe_load((REPO / "config/test.yaml").read_text())["evaluate"]["variants"]
#: Table 3's evaluations beyond VARIANTS (students of compress.k_list and the untrained baselines)
_COMPRESS = yaml.safe_load((REPO / "config/test.yaml").read_text())["compress"]
COMPRESS_VARIANTS = [v for v in [f"compressed_{k}" for k in _COMPRESS["k_list"]] + _COMPRESS["baselines"] if v not in VARIANTS]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    return finished_workflow(tmp_path_factory)


def test_every_expected_output_exists(finished):
    r = finished / "results/test"
    expected = [
        "data/math/train.jsonl", "data/math/test.jsonl", "models/tokenizer/tokenizer.json",
        "models/sender/model.safetensors",
        "latents/math/sender/algebra/manifest.json", "latents/math/sender/prealgebra/manifest.json",
        "convert/math/train.jsonl", "convert/math/test.jsonl", "convert/math/rejects.csv",
        *[f"train/math/replicate0/{r}/{f}" for r in ("interlat", "cot_full", "no_cot") for f in ("adapter.safetensors", "interlat.json", "model.safetensors")],
        *[f"train/math/replicate0/{r}.csv" for r in ("interlat", "cot_full", "no_cot")],
        *[f"evaluate/math/replicate0/{v}.parquet" for v in VARIANTS],
        "tables/table2_math.csv", "tables/table2_math.md", "tables/math_subjects.csv",
        "tables/accuracy.png", "tables/training.png",
        "data/alfworld/train.jsonl", "data/alfworld/test.jsonl", "data/alfworld/json_2.1.1/train",
        "data/alfworld/json_2.1.1/valid_seen", "data/alfworld/json_2.1.1/valid_unseen",
        *[f"latents/alfworld/sender/{t}/manifest.json" for t in ("pick_and_place_simple", "look_at_obj_in_light")],
        "convert/alfworld/train.jsonl", "convert/alfworld/test.jsonl", "convert/alfworld/rejects.csv",
        *[f"train/alfworld/replicate0/{r}/{f}" for r in ("interlat", "cot_full", "no_cot") for f in ("adapter.safetensors", "interlat.json", "model.safetensors")],
        *[f"train/alfworld/replicate0/{r}.csv" for r in ("interlat", "cot_full", "no_cot")],
        *[f"evaluate/alfworld/replicate0/{v}.parquet" for v in VARIANTS],
        "tables/table1_alfworld.csv", "tables/table1_alfworld.md", "tables/alfworld_task_types.csv",
        "tables/alfworld_success.png",
        *[f"compress/{b}/replicate0/K{k}/student.safetensors" for b in ("math", "alfworld") for k in _COMPRESS["k_list"]],
        *[f"evaluate/{b}/replicate0/{v}.parquet" for b in ("math", "alfworld") for v in COMPRESS_VARIANTS],
        *[f"latency/{b}/{m}.csv" for b in ("math", "alfworld") for m in ["full", *[f"K{k}" for k in _COMPRESS["k_list"]]]],
        "tables/table3_compression.csv", "tables/table3_compression.md", "tables/compression.png",
        "tables/table3_compression_alfworld.csv", "tables/table3_compression_alfworld.md", "tables/compression_alfworld.png",
    ]
    missing = [e for e in expected if not (r / e).exists()]
    assert not missing, missing
    logs, timings = finished / "logs/test", finished / "benchmarks/test"
    for rule in ("data", "models", "collect", "convert", "train", "evaluate", "compress", "latency"):
        logged = sorted(f.relative_to(logs / rule).with_suffix("") for f in (logs / rule).rglob("*.log"))
        timed = sorted(f.relative_to(timings / rule).with_suffix("") for f in (timings / rule).rglob("*.tsv"))
        assert logged, f"rule {rule}: no log under {logs / rule}"
        assert logged == timed, f"rule {rule}: jobs logged {logged}, benchmarked {timed}"
    jobs = {str(f.relative_to(logs).with_suffix("")) for f in logs.rglob("*.log")}
    for benchmark in ("math", "alfworld"):
        assert {f"train/{benchmark}/replicate0/{r}" for r in ("interlat", "cot_full", "no_cot")} <= jobs
        assert {f"evaluate/{benchmark}/replicate0/{v}" for v in VARIANTS} <= jobs
    assert (logs / "tables.log").is_file() and (timings / "tables.tsv").is_file()


def test_accuracy_table_has_one_row_per_variant(finished):
    t = pl.read_csv(finished / "results/test/tables/table2_math.csv")
    assert t["variant"].to_list() == VARIANTS
    for scope in ("overall", "level3", "level4", "level5"):
        for stat in ("mean", "std", "lo", "hi", "n"):
            assert f"{scope}_{stat}" in t.columns
    assert ((t["overall_mean"] >= 0) & (t["overall_mean"] <= 100)).all()
    records = pl.read_parquet(finished / "results/test/evaluate/math/replicate0/interlat.parquet")
    assert {"task_id", "variant", "seed", "train_seed", "prediction", "extracted", "correct", "n_tokens"} <= set(records.columns)


def test_alfworld_training_has_the_renamed_copies_with_their_own_messages(finished):
    """config/test.yaml asks for one renamed copy per train game: the sender plans for it too."""
    import json

    from interlat.data.alfworld.renaming import target_object

    r = finished / "results/test"
    games = list((r / "data/alfworld/json_2.1.1/train").glob("*/trial_*"))
    data = [json.loads(line) for line in (r / "data/alfworld/train.jsonl").read_text().splitlines()]
    assert len(data) == 2 * len(games) == 2 * len({d["game"] for d in data})
    copies = {d["task_id"] for d in data if f" {target_object(d)} " not in d["problem"]}
    assert len(copies) == len(games)
    converted = {json.loads(line)["id"] for line in (r / "convert/alfworld/train.jsonl").read_text().splitlines()}
    assert converted <= {d["task_id"] for d in data} and converted & copies


def test_the_student_trains_on_its_own_problems_that_no_receiver_sees(finished):
    """config/test.yaml asks for 20 student-only problems per subject (data.math.n_compress): they
    are collected and converted to compress.jsonl, the student's job reads it, receivers do not."""
    import json
    import re

    r = finished / "results/test"
    extra = {json.loads(line)["task_id"] for line in (r / "data/math/compress.jsonl").read_text().splitlines()}
    assert len(extra) == 40
    converted = {json.loads(line)["id"] for line in (r / "convert/math/compress.jsonl").read_text().splitlines()}
    assert converted <= extra and len(converted) >= 36  # a few plans may come out empty (rejects.csv)
    for split in ("train", "test"):
        ids = {json.loads(line)["id"] for line in (r / f"convert/math/{split}.jsonl").read_text().splitlines()}
        assert not ids & extra
    n_train = sum(1 for _ in (r / "convert/math/train.jsonl").open())
    student_log = (finished / "logs/test/compress/math/replicate0/K8.log").read_text()
    trained, held = map(int, re.search(r"(\d+) training / (\d+) held-out tasks", student_log).groups())
    assert trained + held == n_train + len(converted)


def test_each_student_starts_from_its_replicates_teacher(finished):
    """compress.student: teacher (the default's): the student's LM is the interlat receiver it
    is distilled into, the one of its own replicate."""
    for bench in ("math", "alfworld"):
        log = (finished / f"logs/test/compress/{bench}/replicate0/K8.log").read_text()
        assert f"student results/test/train/{bench}/replicate0/interlat: " in log, log[-2000:]


def test_rerun_is_a_no_op(finished):
    out = smk(finished, "-n")
    assert "Nothing to be done" in out.stdout + out.stderr


def test_another_replicate_reruns_only_its_training_evaluation_and_the_tables(finished, tmp_path):
    """Adding a training replicate plans its receivers, students and evaluations and the tables:
    not the data, models, messages or latency (timed on the first replicate); the new jobs train
    with seed + 1 into replicate1/ folders."""
    cfg = yaml.safe_load((REPO / "config/test.yaml").read_text())
    override = tmp_path / "override.yaml"
    override.write_text("replicates: [0, 1]\n")
    out = smk(finished, "-n", "--configfile", "config/test.yaml", str(override))
    receivers = 3 * 2  # interlat, cot_full, no_cot per benchmark
    assert planned_jobs(out) == {"train": receivers, "compress": 2 * len(cfg["compress"]["k_list"]),
                                 "evaluate": 2 * len(VARIANTS) + 2 * len(COMPRESS_VARIANTS), "tables": 1, "all": 1}
    outputs = [line for line in (out.stdout + out.stderr).splitlines() if line.strip().startswith("output:")]
    assert any("train/math/replicate1/interlat" in line for line in outputs), outputs
    assert not [line for line in outputs if "replicate0" in line], outputs


def test_changed_evaluation_parameter_reruns_only_evaluation_and_tables(finished, tmp_path):
    override = tmp_path / "override.yaml"
    override.write_text("evaluate: {temperature: 0.5}\n")
    out = smk(finished, "-n", "--configfile", "config/test.yaml", str(override))
    assert planned_jobs(out) == {"evaluate": len(VARIANTS) + len(COMPRESS_VARIANTS), "tables": 1, "all": 1}


def test_seeds_list_on_the_command_line_reruns_only_evaluation_and_tables(finished):
    # Snakemake hands `--config` lists over as strings; the workflow converts them per the schema
    out = smk(finished, "-n", "--config", "seeds=[0,1,2,3]")
    every_evaluation = (len(VARIANTS) + len(COMPRESS_VARIANTS)) * 2  # MATH and ALFWorld, each with Table 3's extras
    assert planned_jobs(out) == {"evaluate": every_evaluation, "tables": 1, "all": 1}
    out = smk(finished, "-n", "--config", "seeds=[0,x]", check=False)
    assert out.returncode != 0 and "'x' is not of type 'integer'" in out.stdout + out.stderr


def test_changed_sender_parameter_reruns_collection_onwards(finished, tmp_path):
    override = tmp_path / "override.yaml"
    override.write_text("collect: {top_p: 0.8}\n")
    jobs = planned_jobs(smk(finished, "-n", "--configfile", "config/test.yaml", str(override)))
    assert set(jobs) == {"collect", "convert", "train", "compress", "evaluate", "latency", "tables", "all"}
    test_cfg = yaml.safe_load((REPO / "config/test.yaml").read_text())
    base_cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    n_subjects = len(base_cfg["data"]["math"]["subjects"]) + len(test_cfg["data"]["alfworld"]["task_types"])
    assert jobs["collect"] == n_subjects  # one shard set per benchmark x subject


def test_touching_docs_reruns_nothing(finished):
    (finished / "docs").mkdir(exist_ok=True)
    (finished / "docs/touched.md").write_text("x\n")
    assert planned_jobs(smk(finished, "-n")) == {}


def test_report_renders(finished):
    smk(finished, "--report", "results/report.html")
    html = (finished / "results/report.html").read_text(errors="replace")
    assert "table2_math" in html and len(html) > 10_000


def without_latency(table: Path):
    """Table 3 without its measured columns: CSV rows, or the Markdown cells up to accuracy."""
    from interlat.tables import LATENCY_COLUMNS

    if table.suffix == ".csv":  # as text: a one-replicate std is NaN, and NaN != NaN
        return [repr(row) for row in pl.read_csv(table).drop(LATENCY_COLUMNS).rows()]
    return [line.split("|")[:4] for line in table.read_text().splitlines()]


def test_second_run_from_scratch_gives_byte_identical_tables(finished, tmp_path_factory):
    """Determinism: the same config twice from scratch; every table byte-identical.

    The per-example records' `seconds` column (wall-clock time) and the training logs'
    `tokens_per_s` are measurements and differ; the tables are built without them.
    """
    again = copy_repo(tmp_path_factory.mktemp("wf2"))
    smk(again)
    tables = sorted((finished / "results/test/tables").glob("*.csv")) + sorted(
        (finished / "results/test/tables").glob("*.md")
    )
    assert tables
    for t in tables:
        other = again / t.relative_to(finished)
        if t.name.startswith("table3_compression"):  # its latency columns are wall-clock measurements
            assert without_latency(t) == without_latency(other), t.name
            continue
        assert t.read_bytes() == other.read_bytes(), t.name
    for f in (finished / "results/test/evaluate").rglob("*.parquet"):
        a = pl.read_parquet(f).drop("seconds", strict=False)
        b = pl.read_parquet(again / f.relative_to(finished)).drop("seconds", strict=False)
        assert a.equals(b), f.name


def test_default_plans_alfworld_variants_and_table3_benchmarks_from_its_config(tmp_path):
    """The default's own lists decide its DAG: ALFWorld evaluates `evaluate.alfworld.variants`
    (and trains only the receivers those need), Table 3 covers `compress.benchmarks` only."""
    work = copy_repo(tmp_path)
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    listed = subprocess.run([str(BIN / "snakemake"), "-n", "--cores", "2", "--summary"], cwd=work,
                            capture_output=True, text=True, check=True, env=env).stdout
    targets = [line.split("\t")[0] for line in listed.splitlines() if "\t" in line][1:]
    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    alf = cfg["evaluate"]["alfworld"]["variants"]
    assert set(alf) < set(cfg["evaluate"]["variants"]) and cfg["compress"]["benchmarks"] == ["math"]
    assert {t.split("/")[-1].removesuffix(".parquet") for t in targets if "/evaluate/alfworld/" in t} == set(alf)
    assert not [t for t in targets if "/compress/alfworld/" in t or "/latency/alfworld/" in t]
    assert {t.split("/")[-1] for t in targets if "/train/alfworld/" in t and t.count(".") == 0} == {"interlat"}
    assert [t for t in targets if "/compress/math/" in t] and [t for t in targets if "/train/math/replicate0/no_cot" in t]
