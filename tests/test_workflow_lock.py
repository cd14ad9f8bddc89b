"""Two `snakemake` runs on one directory: the second is refused by Snakemake's lock with its own
message and a non-zero exit, and the first completes untouched."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent

SNAKEFILE = """\
rule all:
    input:
        "done.txt",


rule slow:
    output:
        "done.txt",
    shell:
        # holds the lock until the test releases it (after the second run), at most 5 minutes:
        # a fixed sleep ended before the second snakemake had even started on a loaded machine
        "for i in $(seq 1500); do [ -e release ] && break; sleep 0.2; done; echo finished > {output}"
"""


def test_a_second_run_in_the_same_directory_is_refused_by_the_lock(tmp_path):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    cmd = [str(BIN / "snakemake"), "--cores", "1"]
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    first = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    locks = tmp_path / ".snakemake" / "locks"
    deadline = time.time() + 120
    while not (locks.is_dir() and any(locks.iterdir())):
        assert first.poll() is None and time.time() < deadline, "the first run never took its lock"
        time.sleep(0.1)
    second = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert first.poll() is None, "the first run ended before the second was refused"
    (tmp_path / "release").touch()
    said = second.stdout + second.stderr
    assert second.returncode != 0
    assert "Directory cannot be locked" in said, said[-3000:]
    out, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out[-3000:]
    assert (tmp_path / "done.txt").read_text() == "finished\n"
    assert not locks.exists() or not any(locks.iterdir())  # the first run released its lock
