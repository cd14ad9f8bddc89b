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
