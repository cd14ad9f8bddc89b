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
