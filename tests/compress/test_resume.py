"""A killed compression job resumes from its last state: the final student equals an uninterrupted run's."""

import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
STEPS, EVERY = 40, 4


def cmd(tiny, teacher, work: Path, out: Path):
    return [str(BIN / "interlat"), "--threads", "1", "compress", "--teacher", str(teacher),
            "--student", str(tiny["sender"]), "--conversations", str(tiny["convert"] / "train.jsonl"),
            "--latents", str(tiny["latents"]), "--K", "3", "--max-steps", str(STEPS), "--batch-size", "4",
            "--eval-every", "4", "--patience", "100", "--checkpoint-every", str(EVERY),
            "--work-dir", str(work), "--out", str(out)]


def saved_step(work: Path) -> int:
    """The step of the state on disk (0 when none is complete yet)."""
    import json

    try:
        return json.loads((work / "state" / "loop.json").read_text())["step"]
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


def test_sigkill_then_rerun_equals_uninterrupted(tiny, teacher, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ref = tmp_path / "ref"
    subprocess.run(cmd(tiny, teacher, tmp_path / "w_ref", ref), check=True, capture_output=True, env=env)
    work, out = tmp_path / "w", tmp_path / "out"
    p = subprocess.Popen(cmd(tiny, teacher, work, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    want = EVERY * random.Random(9).randint(1, 3)  # kill once a seeded checkpoint is on disk
    deadline = time.time() + 300
    while saved_step(work) < want:
        assert p.poll() is None and time.time() < deadline, "finished before it could be killed"
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not out.exists(), "a partial student is visible under its final name"
    r = subprocess.run(cmd(tiny, teacher, work, out), check=True, capture_output=True, text=True, env=env)
    assert "resumed from step" in r.stderr
    assert not work.exists(), "the resumable state outlived the finished output"
    for name in ("model.safetensors", "student.safetensors"):
        a, b = load_file(ref / name), load_file(out / name)
        assert a.keys() == b.keys()
        worst = max((a[k] - b[k]).abs().max().item() for k in a)
        assert worst <= 1e-6, (name, worst)  # fp32 on CPU, same order of operations

    def log(d):
        with open(d / "log.csv") as f:
            return [(r["step"], r["eval_loss"]) for r in csv.DictReader(f)]

    assert log(ref) == log(out)


def test_sigterm_saves_the_state_exits_143_and_the_rerun_equals_uninterrupted(tiny, teacher, tmp_path):
    """SIGTERM (a SLURM time limit) after the first checkpoint: state saved at the end of the step,
    one line, exit 143, no student; the rerun resumes from that step to the uninterrupted student."""
    import re

    from tests.helpers import signal_when

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ref = tmp_path / "ref"
    subprocess.run(cmd(tiny, teacher, tmp_path / "w_ref", ref), check=True, capture_output=True, env=env)
    work, out = tmp_path / "w", tmp_path / "out"
    rc, err = signal_when(cmd(tiny, teacher, work, out), work / "state" / "loop.json", env=env)
    assert rc == 143, err[-3000:]
    said = re.findall(r"caught SIGTERM: state saved at step (\d+) in (\S+); rerun to resume", err)
    assert len(said) == 1 and said[0][1] == str(work), err[-3000:]
    assert saved_step(work) == int(said[0][0]) and not out.exists()
    r = subprocess.run(cmd(tiny, teacher, work, out), check=True, capture_output=True, text=True, env=env)
    assert f"resumed from step {said[0][0]} " in r.stderr
    for name in ("model.safetensors", "student.safetensors"):
        a, b = load_file(ref / name), load_file(out / name)
        assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6, name
