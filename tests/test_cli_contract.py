"""The CLI's contract: --version, -h, fast --help without torch, schema defaults, ranges refused in one line."""

import subprocess
import sys
import time

import click
import pytest
from click.testing import CliRunner

from interlat.cli import main
from tests.helpers import REPO

COMMANDS = sorted(main.commands)
#: commands with their own options and example; groups (bench, docs) carry them on their subcommands
STAGES = [c for c in COMMANDS if not isinstance(main.commands[c], click.Group)]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "interlat.cli", *args], cwd=REPO, capture_output=True, text=True)


def test_version():
    from importlib.metadata import version

    r = CliRunner().invoke(main, ["--version"], prog_name="interlat")
    assert r.exit_code == 0 and r.output.strip() == f"interlat {version('interlat')}"


@pytest.mark.parametrize("args", [["-h"], ["train", "-h"], ["bench", "-h"], ["bench", "latency", "-h"]])
def test_short_help(args):
    r = CliRunner().invoke(main, args, prog_name="interlat")
    assert r.exit_code == 0 and "Usage: interlat" in r.output


@pytest.mark.parametrize("args", [[], ["train"], ["evaluate"], ["bench", "latency"]], ids=lambda a: " ".join(a) or "main")
def test_help_imports_no_torch_and_is_fast(args):
    code = (
        "import sys, time; t = time.process_time(); from interlat.cli import main\n"
        f"try: main({[*args, '--help']!r}, prog_name='interlat')\n"
        "except SystemExit: pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', time.process_time() - t, file=sys.stderr)"
    )  # CPU seconds of the import and the help: steady on a loaded machine, unlike wall time
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert "Usage: interlat" in r.stdout
    verdict, seconds = r.stderr.split()[-2:]
    assert verdict == "NO-TORCH"
    assert float(seconds) < 0.5


def test_help_wall_time_of_the_entry_point():
    exe = REPO / ".venv/bin/interlat"
    if not exe.exists():
        pytest.skip("no installed entry point")
    subprocess.run([exe, "--help"], capture_output=True)  # warm the file cache
    t = time.perf_counter()
    r = subprocess.run([exe, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and time.perf_counter() - t < 0.5


@pytest.mark.parametrize("cmd", STAGES)
def test_help_examples_keep_their_line_breaks_and_real_paths(cmd):
    out = CliRunner().invoke(main, [cmd, "--help"], terminal_width=100).output
    assert f"Example: interlat {cmd}" in out
    example = [line for line in out[out.index("Example:"):out.index("Options:")].splitlines() if line.strip()]
    for line, following in zip(example, example[1:], strict=False):  # click's \b paragraphs keep the author's breaks
        if not following.lstrip().startswith("Example"):
            assert line.rstrip().endswith("\\"), line
    assert "--out" in example[-1] or "Example" in example[-1]
    assert "results/default/" in out


@pytest.mark.parametrize("cmd", STAGES)
def test_help_lists_every_option_with_its_schema_default(cmd):
    from interlat.config import schema_default
    from tests.test_config import cli_options

    out = " ".join(CliRunner().invoke(main, [cmd, "--help"], terminal_width=400).output.split())
    for name, p, key in cli_options():
        if name != cmd:
            continue
        assert p.opts[0] in out
        if key is not None:
            want = schema_default(key)
            shown = ",".join(map(str, want)) if isinstance(want, list) else want
            if isinstance(want, bool):
                shown = p.opts[0].lstrip("-") if want else p.secondary_opts[0].lstrip("-")
            assert f"default: {shown}" in out, (p.opts[0], key, shown)


@pytest.mark.parametrize(
    "args, option",
    [
        (["train", "--max-grad-norm", "-1"], "--max-grad-norm"),
        (["train", "--margin", "-5"], "--margin"),
        (["train", "--lr", "-1"], "--lr"),
        (["compress", "--lr", "0"], "--lr"),
        (["collect", "--top-p", "-1"], "--top-p"),
        (["collect", "--temperature", "-1"], "--temperature"),
        (["evaluate", "--temperature", "-1"], "--temperature"),
        (["models", "--lr", "-1"], "--lr"),
        (["data", "--expert", "oracle"], "--expert"),
        (["latency", "--repeats", "0"], "--repeats"),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, list) else a,
)
def test_out_of_range_values_exit_2_in_one_line(args, option):
    r = cli(*args)
    assert r.returncode == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and option in errors[0] and "Traceback" not in r.stderr


def test_each_log_line_is_printed_once(tmp_path):
    """A real command's stderr holds each log line once: ours, and a library's whose logger has its
    own stderr handler and still propagates (huggingface_hub, set up by transformers)."""
    code = (
        "import logging, transformers, interlat.data\n"
        "run = interlat.data.run_data\n"
        "def run_data(*a, **k):\n"
        "    logging.getLogger('huggingface_hub.file_download').warning('hub line')\n"
        "    logging.getLogger('interlat.data').info('interlat line')\n"
        "    return run(*a, **k)\n"
        "interlat.data.run_data = run_data\n"
        "from interlat.cli import main\n"
        f"main(['data', '--n-train', '2', '--n-test', '1', '--subjects', 'algebra', '--out', {str(tmp_path / 'd')!r}], prog_name='interlat')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("hub line") == 1, r.stderr
    assert r.stderr.count("interlat.data interlat line") == 1, r.stderr
    assert r.stderr.count("3 records") == 1 and "Traceback" not in r.stderr
