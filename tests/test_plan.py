"""`interlat plan`: exact parameter counts of the paper models, ZeRO memory arithmetic, and every
paper config within what profiles/slurm books (GPU memory, host memory, walltime)."""

from pathlib import Path

import pytest
import yaml

from interlat.plan import GIB, architecture, merged_config, plan_rows, problems, training_state
from tests.helpers import REPO, assert_clean_error, run_cli

PAPER = sorted((REPO / "config/paper").glob("*.yaml"))
PROFILE = REPO / "profiles/slurm/profile.yaml"


@pytest.mark.parametrize(
    "hf_id, params",  # the published totals (embedding and, where untied, the output head included)
    [("Qwen/Qwen2.5-0.5B", 494_032_768), ("Qwen/Qwen2.5-7B", 7_615_616_512), ("meta-llama/Llama-3.1-8B", 8_030_261_248)],
)
def test_parameter_counts_of_the_paper_models(hf_id, params):
    assert architecture({"hf_id": hf_id}).params == params


def test_zero_stages_shard_what_they_should():
    n, g = 1_000_000, 4
    assert training_state(n, 0, False, g) == (2 * n, 2 * n, 12 * n, 0)
    assert training_state(n, 1, False, g) == (2 * n, 2 * n, 3 * n, 0)
    assert training_state(n, 2, False, g) == (2 * n, 0.5 * n, 3 * n, 0)
    assert training_state(n, 3, False, g) == (0.5 * n, 0.5 * n, 3 * n, 0)
    assert training_state(n, 3, True, g) == (0.5 * n, 0.5 * n, 0, 3 * n)  # optimizer offloaded to the host
    assert training_state(n, None, False, g) == (4 * n, 4 * n, 8 * n, 0)  # fp32 without DeepSpeed


@pytest.mark.parametrize("path", PAPER, ids=lambda p: p.stem)
def test_every_paper_config_fits_what_the_profile_books(path):
    config = merged_config(REPO / "config/config.yaml", [path])
    rows = plan_rows(config, yaml.safe_load(PROFILE.read_text()))
    rules = {r.rule for r in rows}
    assert {"collect", "train", "evaluate"} <= rules
    assert ("compress" in rules) == bool(config["compress"]["k_list"])
    assert problems(rows) == []
    big = [r for r in rows if r.rule == "train" and r.params > 5e9]
    assert all(20 * GIB < r.peak for r in big)  # a 7-8B receiver is never estimated as small


def test_a_profile_that_books_too_little_fails(tmp_path):
    profile = yaml.safe_load(PROFILE.read_text())
    profile["set-resources"]["train"]["gpu"] = 1  # ZeRO-2 over one GPU: the whole optimizer state
    profile["set-resources"]["evaluate"]["runtime"] = 1
    (tmp_path / "profile.yaml").write_text(yaml.safe_dump(profile))
    config = REPO / "config/paper/math-qwen2.5-7b.yaml"
    rows = plan_rows(merged_config(REPO / "config/config.yaml", [config]), profile)
    found = problems(rows)
    assert any(p.startswith("train math/sender: ") and "GiB per GPU > 90% of a H100 80GB (1 booked)" in p for p in found)
    assert any(p.startswith("evaluate math/<variant>: ") and "> runtime 1" in p for p in found)
    result = run_cli("plan", "--base", REPO / "config/config.yaml", "--configfile", config,
                     "--profile", tmp_path / "profile.yaml", expect=2)
    assert_clean_error(result, "estimate(s) exceed what", "profile.yaml books")
    assert "| H100 80GB | H200 141GB |" in result.output


def test_cli_prints_the_table_and_passes_on_a_paper_config():
    result = run_cli("plan", "--base", REPO / "config/config.yaml", "--configfile", REPO / "config/paper/math-qwen2.5-0.5b.yaml",
                     "--profile", PROFILE)
    lines = [x for x in result.output.splitlines() if x.startswith("| ")]
    assert lines[0].startswith("| rule | job | model | params |")
    assert any(x.startswith("| train | math/sender | Qwen/Qwen2.5-0.5B | 0.50B | 4 | ZeRO-2 |") for x in lines)


def test_bad_config_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {batch_size: -1}\n")
    result = run_cli("plan", "--base", Path(REPO / "config/config.yaml"), "--configfile", bad, "--profile", PROFILE, expect=2)
    assert_clean_error(result, "batch_size")


def test_a_student_that_starts_from_the_teacher_is_planned_at_the_teachers_size(tmp_path):
    start = tmp_path / "teacher.yaml"
    start.write_text("compress: {student: teacher}\n")
    result = run_cli("plan", "--base", REPO / "config/config.yaml", "--configfile", REPO / "config/paper/math-llama3.1-8b.yaml",
                     "--configfile", start, "--profile", PROFILE, "--no-check")
    rows = [x.split(" | ") for x in result.output.splitlines() if x.startswith("| compress ")]
    receiver = next(x.split(" | ") for x in result.output.splitlines() if x.startswith("| evaluate "))
    # the receiver's LM plus the bridge (h2e) and lat_bos: 8.03B -> 8.05B
    assert rows and all(r[2] == f"{receiver[2]} + teacher" and r[3] == "8.05B" for r in rows), (rows, receiver)
