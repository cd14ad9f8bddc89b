"""A compression rerun over the state of an unfinished run with another setting starts over:
it equals a fresh run with that setting, and says the old state was discarded."""

import logging
from pathlib import Path

import pytest
from safetensors.torch import load_file

from interlat.compress.trainer import CompressTrainer
from tests.helpers import run_cli

pytestmark = pytest.mark.slow


def compress(tiny, teacher, work: Path, out: Path, lr: float) -> dict:
    run_cli("compress", "--teacher", teacher, "--student", tiny["sender"], "--conversations",
            tiny["convert"] / "train.jsonl", "--latents", tiny["latents"], "--K", 2, "--max-steps", 4,
            "--batch-size", 4, "--eval-every", 2, "--checkpoint-every", 2, "--lr", lr, "--work-dir", work, "--out", out)
    return {**load_file(out / "model.safetensors"), **load_file(out / "student.safetensors")}


def test_rerun_over_an_unfinished_run_with_another_lr_equals_a_fresh_run(tiny, teacher, tmp_path, monkeypatch, caplog):
    work = tmp_path / "work"
    with monkeypatch.context() as m:
        m.setattr(CompressTrainer, "cleanup", lambda self: None)  # as if killed after its last checkpoint
        old = compress(tiny, teacher, work, tmp_path / "old", 0.003)
    assert (work / "state" / "loop.json").is_file()
    with caplog.at_level(logging.WARNING, logger="interlat.workdir"):
        rerun = compress(tiny, teacher, work, tmp_path / "rerun", 0.0003)
    assert f"discarding stale state in {work}: settings/inputs changed (lr)" in caplog.messages
    assert not any(m.startswith("resumed from step") for m in caplog.messages)
    fresh = compress(tiny, teacher, tmp_path / "fresh-work", tmp_path / "fresh", 0.0003)
    assert rerun.keys() == fresh.keys() == old.keys()
    assert max((rerun[k] - fresh[k]).abs().max().item() for k in rerun) <= 1e-6
    assert max((rerun[k] - old[k]).abs().max().item() for k in rerun) > 1e-5
    assert (tmp_path / "rerun/log.csv").read_text() == (tmp_path / "fresh/log.csv").read_text()
    assert not work.exists()  # a finished run drops its state
