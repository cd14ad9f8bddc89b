"""The CLI: help texts with examples, one-line errors with exit code 2 and nothing written."""

import re

import click
import pytest
from click.core import UNSET
from click.testing import CliRunner

from interlat.cli import main
from tests.helpers import run_cli

COMMANDS = sorted(main.commands)
#: Commands that run a stage (not groups of subcommands)
STAGES = [c for c in COMMANDS if not isinstance(main.commands[c], click.Group)]


def first_paragraph(cmd: click.Command) -> str:
    return " ".join((cmd.help or "").split("\n\n")[0].split())


def test_every_command_is_listed_with_its_summary():
    out = CliRunner().invoke(main, ["--help"], terminal_width=100).output
    listing = out.split("Commands:")[1]
    for name in COMMANDS:
        line = re.search(rf"^  {name} +(\S.*)$", listing, re.M)
        assert line, f"{name}: not listed in --help"
        summary = line.group(1).removesuffix("...").strip()
        assert len(summary.split()) >= 3, f"{name}: summary {summary!r}"
        assert first_paragraph(main.commands[name]).startswith(summary), (name, summary)


@pytest.mark.parametrize("cmd", STAGES)
def test_help_has_an_example_and_shows_every_default(cmd):
    command = main.commands[cmd]
    out = CliRunner().invoke(main, [cmd, "--help"]).output
    assert f"Example: interlat {cmd} " in " ".join(out.split())
    bare = re.sub(r"\s+", "", out)  # help wraps anywhere, even inside a hyphenated value
    ctx = click.Context(command, info_name=cmd, parent=click.Context(main, info_name="interlat"))
    with_default = [p for p in command.params if isinstance(p, click.Option) and not p.required
                    and p.get_default(ctx, call=False) not in (None, (), UNSET)
                    and not (p.is_flag and not p.secondary_opts)]  # a lone flag is off by default
    for p in with_default:
        shown = re.search(r"\[(default: [^\]]+)\]", p.get_help_record(ctx)[1])
        assert shown, f"{cmd} {p.opts[0]}: default {p.get_default(ctx, call=False)!r} not in its help"
        assert re.sub(r"\s+", "", shown.group(1)) in bare, f"{cmd} {p.opts[0]}: {shown.group(1)!r} not in --help"


def test_bad_math_solution_is_one_line_exit_2_and_nothing_written(tmp_path):
    src = tmp_path / "math.jsonl"
    src.write_text('{"problem": "1+1?", "solution": "2", "type": "Algebra", "level": "Level 1"}\n')
    out = tmp_path / "out"
    r = run_cli("data", "--source", src, "--out", out, expect=2)
    assert "field \"solution\": no \\boxed{} answer" in r.output and "math.jsonl: row 1:" in r.output
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
