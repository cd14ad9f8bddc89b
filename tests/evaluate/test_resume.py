"""A killed evaluation resumes: finished chunks are skipped and the records equal an uninterrupted run's."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def cmd(tiny, work: Path, out: Path):
    return [str(BIN / "interlat"), "--threads", "1", "evaluate", "--receiver", str(tiny["receiver_ckpt"]),
            "--conversations", str(tiny["convert"] / "train.jsonl"), "--latents", str(tiny["latents"]),
            "--variant", "randomrot", "--seeds", "0,1,2", "--batch-size", "4", "--work-dir", str(work),
            "--out", str(out)]


def test_sigkill_then_rerun_equals_uninterrupted(tiny, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ref = tmp_path / "ref.parquet"
    subprocess.run(cmd(tiny, tmp_path / "w_ref", ref), check=True, capture_output=True, env=env)
    work, out = tmp_path / "w", tmp_path / "out.parquet"
    p = subprocess.Popen(cmd(tiny, work, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    want = random.Random(7).randint(1, 4)  # kill after a seeded number of finished chunks
    deadline = time.time() + 300
    while len(list(work.glob("seed*.parquet"))) < want:
        assert p.poll() is None and time.time() < deadline, "finished before it could be killed"
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not out.exists(), "a partial output is visible under its final name"
    done_before = {f.name for f in work.glob("seed*.parquet")}
    subprocess.run(cmd(tiny, work, out), check=True, capture_output=True, env=env)
    done_after = {f.name for f in work.glob("seed*.parquet")}
    assert done_before < done_after
    drop = ["seconds"]  # wall-clock time is the one field that differs between runs
    a, b = pl.read_parquet(ref).drop(drop), pl.read_parquet(out).drop(drop)
    assert a.equals(b)
