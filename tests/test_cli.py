"""The CLI: help texts with examples, one-line errors with exit code 2 and nothing written."""

import pytest
from click.testing import CliRunner

from interlat.cli import main
from tests.helpers import run_cli

COMMANDS = ["data", "tokenizer", "models", "collect", "convert", "train", "evaluate", "tables", "bench"]


def test_every_command_is_listed_with_a_summary():
    out = CliRunner().invoke(main, ["--help"]).output
    for cmd in COMMANDS:
        assert cmd in out


@pytest.mark.parametrize("cmd", COMMANDS[:-1])
def test_help_has_an_example_and_defaults(cmd):
    out = CliRunner().invoke(main, [cmd, "--help"]).output
    assert "Example: interlat" in out
    assert "--out" in out


def test_bad_math_solution_is_one_line_exit_2_and_nothing_written(tmp_path):
    src = tmp_path / "math.jsonl"
    src.write_text('{"problem": "1+1?", "solution": "2", "type": "Algebra", "level": "Level 1"}\n')
    out = tmp_path / "out"
    r = run_cli("data", "--source", src, "--out", out, expect=2)
    assert "field \"solution\": no \\boxed{} answer" in r.output and "row 0" in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_missing_model_path_exits_2(tmp_path):
    r = run_cli("models", "--tokenizer", tmp_path / "nope", "--out", tmp_path / "m", expect=2)
    assert "tokenizer_config.json" in r.output and not (tmp_path / "m").exists()


def test_unknown_variant_exits_2(tiny, tmp_path):
    r = run_cli("evaluate", "--receiver", tiny["receiver"], "--conversations", tiny["convert"] / "test.jsonl",
                "--variant", "telepathy", "--work-dir", tmp_path / "w", "--out", tmp_path / "o.parquet", expect=2)
    assert "telepathy" in r.output and not (tmp_path / "o.parquet").exists()


def test_deepspeed_config_that_does_not_parse_exits_2(tiny, tmp_path):
    bad = tmp_path / "ds.json"
    bad.write_text("{not json")
    r = run_cli("train", "--base", tiny["receiver"], "--conversations", tiny["convert"] / "train.jsonl",
                "--mode", "none", "--engine", "deepspeed", "--deepspeed-config", bad,
                "--work-dir", tmp_path / "w", "--log-csv", tmp_path / "l.csv", "--out", tmp_path / "o", expect=2)
    assert "ds.json: line 1" in r.output and not (tmp_path / "o").exists()
