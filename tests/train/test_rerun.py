"""A rerun of `interlat train` in the same work folder with one setting changed starts over:
it equals a fresh run with that setting (it once resumed the old run's state and wrote the old model)."""

import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import run_cli


def train(tiny, root: Path, work: Path, lr: float) -> dict[str, torch.Tensor]:
    run_cli("train", "--base", tiny["receiver"], "--conversations", tiny["convert"] / "train.jsonl",
            "--latents", tiny["latents"], "--steps", 6, "--batch-size", 2, "--prepended-length", 16,
            "--checkpoint-every", 2, "--lr", lr, "--work-dir", work, "--log-csv", root / "log.csv",
            "--out", root / "ckpt")
    assert (work / "state" / "loop.json").is_file()  # the state of step 4 stays (train keeps its work folder)
    return {**load_file(root / "ckpt/model.safetensors"),
            **{f"adapter.{k}": v for k, v in load_file(root / "ckpt/adapter.safetensors").items()}}


def log(root: Path) -> list[str]:
    """The CSV log without its wall-clock column (tokens_per_s, last)."""
    return [line.rsplit(",", 1)[0] for line in (root / "log.csv").read_text().splitlines()]


def worst(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.mark.slow
def test_rerun_with_another_lr_equals_a_fresh_run(tiny, tmp_path, caplog):
    work = tmp_path / "work"
    old = train(tiny, tmp_path / "old", work, 0.001)
    with caplog.at_level(logging.WARNING, logger="interlat.workdir"):
        rerun = train(tiny, tmp_path / "rerun", work, 0.02)
    assert f"discarding stale state in {work}: settings/inputs changed (lr)" in caplog.messages
    fresh = train(tiny, tmp_path / "fresh", tmp_path / "fresh-work", 0.02)
    assert worst(rerun, fresh) <= 1e-6
    assert worst(rerun, old) > 1e-4  # the rerun did not resume the old run's state
    assert log(tmp_path / "rerun") == log(tmp_path / "fresh")


@pytest.mark.slow
def test_rerun_with_the_same_settings_resumes_from_the_saved_step(tiny, tmp_path, caplog):
    work = tmp_path / "work"
    first = train(tiny, tmp_path / "a", work, 0.003)
    with caplog.at_level(logging.INFO):
        again = train(tiny, tmp_path / "b", work, 0.003)
    assert any(m.startswith("resumed from step 4") for m in caplog.messages)
    assert not any("discarding" in m for m in caplog.messages)
    assert worst(first, again) <= 1e-6
    assert log(tmp_path / "a") == log(tmp_path / "b")


@pytest.mark.slow
def test_rerun_with_gradient_accumulation_equals_a_fresh_run(tiny, tmp_path, caplog):
    """Accumulation changes what a step is: the stale state is discarded, the rerun equals a fresh run."""

    def run(root, work, accumulation):
        run_cli("train", "--base", tiny["receiver"], "--conversations", tiny["convert"] / "train.jsonl",
                "--latents", tiny["latents"], "--steps", 4, "--batch-size", 2, "--prepended-length", 16,
                "--gradient-accumulation", accumulation, "--checkpoint-every", 2, "--lr", 0.003,
                "--work-dir", work, "--log-csv", root / "log.csv", "--out", root / "ckpt")
        return load_file(root / "ckpt/model.safetensors")

    work = tmp_path / "work"
    run(tmp_path / "old", work, 1)
    with caplog.at_level(logging.WARNING, logger="interlat.workdir"):
        rerun = run(tmp_path / "rerun", work, 2)
    assert any("discarding stale state" in m and "gradient_accumulation" in m for m in caplog.messages), caplog.messages
    fresh = run(tmp_path / "fresh", tmp_path / "fresh-work", 2)
    assert worst(rerun, fresh) <= 1e-6
    assert log(tmp_path / "rerun") == log(tmp_path / "fresh")


@pytest.mark.slow
def test_a_changed_deepspeed_json_at_the_same_path_starts_over(tiny, tmp_path):
    """The resolved DeepSpeed JSON is part of the stamp: editing the file (same path) discards the state."""
    import json
    import subprocess

    from tests.train.test_engines import BIN, env, train_cmd

    own = tmp_path / "ds.json"
    own.write_text((Path(__file__).parents[2] / "config/deepspeed/zero2.json").read_text())
    launcher = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node=1", "--no-python"]
    cmd = launcher + train_cmd(tiny, tmp_path, "deepspeed", 4, extra=("zero2", "--checkpoint-every", "2"))
    cmd[cmd.index("--deepspeed-config") + 1] = str(own)
    first = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    own.write_text(json.dumps({**json.loads(own.read_text()), "gradient_clipping": 0.5}))
    again = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "discarding stale state" in again.stderr and "deepspeed" in again.stderr.split("discarding stale state")[1][:300]
    assert "resumed from step" not in again.stderr
