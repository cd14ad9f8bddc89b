"""Lint as tests: ruff, snakefmt and `snakemake --lint` are clean."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "cmd",
    [
        ["ruff", "check", "interlat", "tests"],
        ["snakefmt", "--check", "workflow"],
        ["snakemake", "--lint"],
    ],
    ids=["ruff", "snakefmt", "snakemake-lint"],
)
def test_clean(cmd):
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}  # snakefmt calls shfmt
    out = subprocess.run([str(BIN / cmd[0]), *cmd[1:]], cwd=REPO, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


def test_dry_run_writes_nothing(tmp_path):
    """`snakemake -n` plans the whole default DAG and leaves no file behind (no results/, logs/, work/)."""
    from tests.helpers import copy_repo

    work = copy_repo(tmp_path / "repo")
    before = {p for p in work.rglob("*") if ".snakemake" not in p.parts}
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    out = subprocess.run([str(BIN / "snakemake"), "-n", "--cores", "1"], cwd=work, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Job stats" in out.stdout + out.stderr
    after = {p for p in work.rglob("*") if ".snakemake" not in p.parts}
    assert after == before, sorted(str(p.relative_to(work)) for p in after - before)
