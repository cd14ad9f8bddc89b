"""Training on 2 CPU ranks (gloo): DDP, DeepSpeed ZeRO-2 and ZeRO-3, and resume after SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import REPO

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def train_cmd(tiny, out: Path, engine: str, steps: int, nproc: int = 1, extra=()):
    launcher = [str(BIN / "torchrun"), "--standalone", f"--nproc_per_node={nproc}", "--no-python"] if nproc > 1 else []
    return [
        *launcher, str(BIN / "interlat"), "--threads", "1", "train",
        "--base", str(tiny["receiver"]), "--conversations", str(tiny["convert"] / "train.jsonl"),
        "--latents", str(tiny["latents"]), "--steps", str(steps), "--batch-size", "2", "--lr", "3e-3",
        "--engine", engine, "--deepspeed-config", str(REPO / f"config/deepspeed/{extra[0] if extra else 'zero2'}.json"),
        "--work-dir", str(out / "work"), "--log-csv", str(out / "log.csv"), "--out", str(out / "ckpt"),
        *extra[1:],
    ]


def env():
    return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1",
            "TORCH_EXTENSIONS_DIR": str(Path.home() / ".cache/torch_extensions")}


def traces(work: Path) -> dict[int, list[dict]]:
    out = {}
    for f in sorted(work.glob("trace-rank*.jsonl")):
        rows = [json.loads(x) for x in f.read_text().splitlines()]
        out[rows[0]["rank"]] = rows
    return out


@pytest.mark.parametrize("engine, ds", [("ddp", None), ("deepspeed", "zero2"), ("deepspeed", "zero3")])
def test_two_ranks_split_the_batch_share_negatives_and_learn(tiny, tmp_path, engine, ds):
    steps = 12
    cmd = train_cmd(tiny, tmp_path, engine, steps, nproc=2, extra=(ds,) if ds else ())
    r = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    t = traces(tmp_path / "work")
    assert set(t) == {0, 1}
    cross = 0
    for s in range(steps):
        a, b = t[0][s], t[1][s]
        assert not set(a["tasks"]) & set(b["tasks"]), f"step {s}: ranks saw the same samples"
        for own, neg in zip(a["tasks"], a["negatives"], strict=True):
            assert own != neg
        cross += len(set(a["negatives"]) & set(b["tasks"]))
    assert cross > 0, "negatives never came from the other rank"
    log = pl.read_csv(tmp_path / "log.csv")
    assert log.height == steps
    assert log["ce"][-3:].mean() < log["ce"][:3].mean()
    assert (tmp_path / "ckpt/adapter.safetensors").exists()


def test_killed_training_resumes_to_the_same_weights(tiny, tmp_path):
    """SIGKILL after the first checkpoint, rerun: final weights equal an uninterrupted run's."""
    steps, every = 40, 5  # long enough that the kill lands mid-run even on an idle machine
    ref = tmp_path / "ref"
    subprocess.run(train_cmd(tiny, ref, "single", steps, extra=("zero2", "--checkpoint-every", str(every))),
                   check=True, capture_output=True, env=env())
    run = tmp_path / "run"
    p = subprocess.Popen(train_cmd(tiny, run, "single", steps, extra=("zero2", "--checkpoint-every", str(every))),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
    deadline = time.time() + 300
    while not (run / "work/state/step").exists():
        assert p.poll() is None and time.time() < deadline, "no checkpoint before the run ended"
        time.sleep(0.2)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not (run / "ckpt").exists()
    subprocess.run(train_cmd(tiny, run, "single", steps, extra=("zero2", "--checkpoint-every", str(every))),
                   check=True, capture_output=True, env=env())
    a = load_file(ref / "ckpt/model.safetensors")
    b = load_file(run / "ckpt/model.safetensors")
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= 1e-6, worst  # fp32 on CPU, same op order: equal up to float noise
    a, b = load_file(ref / "ckpt/adapter.safetensors"), load_file(run / "ckpt/adapter.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
