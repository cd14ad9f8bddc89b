"""The compression student through DeepSpeed on 2 CPU ranks (gloo), as the receivers train:
steps from epochs, batch and ranks; each rank its own slice of the tasks; the best student kept."""

import math
import re
import sys
from pathlib import Path

import polars as pl
import pytest
import torch

import interlat
from interlat.compress.trainer import CompressConfig, CompressTrainer
from tests.helpers import REPO
from tests.train.test_engines import run_watched

BIN = Path(sys.executable).parent


def compress_cmd(tiny, teacher, out: Path, ds: str, nproc: int = 2, extra=()):
    return [str(BIN / "torchrun"), "--standalone", f"--nproc_per_node={nproc}", "--no-python",
            str(BIN / "interlat"), "--threads", "2", "compress", "--teacher", str(teacher),
            "--student", str(tiny["sender"]), "--conversations", str(tiny["convert"] / "train.jsonl"),
            "--latents", str(tiny["latents"]), "--K", "3", "--epochs", "2", "--batch-size", "2", "--lr", "3e-3",
            "--eval-every", "2", "--patience", "100", "--checkpoint-every", "100",
            "--engine", "deepspeed", "--deepspeed-config", str(REPO / f"config/deepspeed/{ds}.json"),
            "--work-dir", str(out / "work"), "--out", str(out / "student"), *extra]


@pytest.mark.slow
@pytest.mark.parametrize("ds", ["zero2", "zero3"])
def test_two_rank_deepspeed_student_trains_its_epochs_and_keeps_the_best(tiny, teacher, tmp_path, ds):
    rc, _, _, stderr = run_watched(compress_cmd(tiny, teacher, tmp_path, ds), tmp_path / "run",
                                   done=tmp_path / "student")
    assert rc == 0, stderr[-4000:]
    said = re.findall(r"(\d+) optimizer steps \(2\.0 epochs over (\d+) tasks; 4 tasks a step = 2 x 1 accumulation "
                      r"x 2 ranks\)", stderr)
    assert len(said) == 2 and said[0] == said[1], stderr[-3000:]  # both ranks, the same plan
    steps, n_train = int(said[0][0]), int(said[0][1])
    assert steps == math.ceil(2 * n_train / 4)
    log = pl.read_csv(tmp_path / "student/log.csv")
    assert log.height == steps and log["loss"].is_finite().all()
    scored = log.filter(pl.col("eval_loss").is_not_null())
    student, tok = interlat.load_student(tmp_path / "student")
    meta = student.config_json
    assert meta["steps_run"] == steps and meta["compress"]["engine"] == "deepspeed"
    assert meta["best_step"] == scored["step"][scored["eval_loss"].arg_min()] + 1  # the best evaluation's student
    assert {p.dtype for p in student.parameters()} == {torch.float32}  # CPU: fp32 throughout
    assert not (tmp_path / "work").exists()


def test_ranks_take_disjoint_slices_that_make_up_the_one_rank_stream(tiny, teacher, monkeypatch):
    """Rank r of 2 at batch 2 takes stream positions [4u + 2r, 4u + 2r + 2) of micro step u:
    the two ranks together take what one process takes at batch 4, and accumulation continues
    the same stream (one process, batch 2, accumulation 2)."""
    from interlat import shards
    from interlat.compress.student import Student
    from interlat.conversations import read_conversations
    from interlat.model.folders import load_lm
    from interlat.train.samples import build_samples

    rec, tok = interlat.load_receiver(teacher)
    rows = read_conversations(tiny["convert"] / "train.jsonl")
    samples = build_samples(rows, shards.load_messages(tiny["latents"]), tok, "interlat", "x", rec.prepended_length)
    student = Student(load_lm(tiny["sender"], torch.float32, "student"), out_dim=rec.adapter.sender_dim)

    def tasks(rank, world, batch, accumulation, steps):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", str(world))
        cfg = CompressConfig(K=2, batch_size=batch, gradient_accumulation=accumulation,
                             engine="deepspeed" if world > 1 else "single")
        t = CompressTrainer(cfg, student, rec, tok, samples, [], Path("unused"))
        return [[s.task_id for s in t.picks(step, k)] for step in range(steps) for k in range(accumulation)]

    steps = len(samples)  # several epochs of the stream
    one = tasks(0, 1, 4, 1, steps)
    r0, r1 = tasks(0, 2, 2, 1, steps), tasks(1, 2, 2, 1, steps)
    assert [a + b for a, b in zip(r0, r1, strict=True)] == one
    accumulated = tasks(0, 1, 2, 2, steps)
    assert [accumulated[2 * i] + accumulated[2 * i + 1] for i in range(steps)] == one
