"""`interlat collect` end to end (docs/method.md section 1): resume after SIGKILL, two ranks, failure.

Each test runs the real command in a subprocess on a tiny random-init sender saved under
tmp_path. Every run uses `--threads 1` (torchrun also gives each rank one thread), so the
CPU kernels reduce in the same order everywhere and messages compare bit for bit.
"""

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from interlat import shards
from interlat.atomic import write_jsonl
from interlat.collect import FAIL_RANK_ENV, make_batches
from interlat.data.math import generated as math_generated
from interlat.text.prompts import PLANNER_INSTRUCTION
from interlat.text.tokenizer import build_tokenizer
from interlat.workdir import STAMP
from tests.helpers import run_cli, tiny_lm

BIN = Path(sys.executable).parent
BATCH = 2


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    """A benchmark folder (24 Algebra tasks) and a tiny saved Qwen2 sender."""
    root = tmp_path_factory.mktemp("collect")
    records = math_generated.generate(seed=0, n_train=20, n_test=4, subjects=("Algebra",))
    for split in ("train", "test"):
        write_jsonl(root / "data" / f"{split}.jsonl", [r for r in records if r["split"] == split])
    tok = build_tokenizer(
        [r["problem"] + " " + r["plan"] for r in records] + [PLANNER_INSTRUCTION["math"]]
    )
    model = tiny_lm(vocab_size=len(tok), pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    model.save_pretrained(root / "sender")
    tok.save_pretrained(root / "sender")
    ids = {r["task_id"] for r in records}
    return {"root": root, "ids": ids, "n_batches": len(make_batches(list(records), BATCH))}


def args(setup, work: Path, out: Path, seed: int = 7) -> list[str]:
    root = setup["root"]
    return [
        "--threads", "1", "collect",
        "--sender", str(root / "sender"), "--data", str(root / "data"),
        "--subject", "algebra", "--batch-size", str(BATCH), "--max-new-tokens", "24",
        "--dtype", "float32", "--seed", str(seed), "--work-dir", str(work), "--out", str(out),
    ]  # fmt: skip


def env(**extra) -> dict:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **extra}


def interlat(setup, work, out, **kw) -> subprocess.CompletedProcess:
    cmd = [str(BIN / "interlat"), *args(setup, work, out)]
    return subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300, **kw)


def torchrun(setup, work, out, **extra) -> subprocess.CompletedProcess:
    cmd = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2", "--no-python"]
    cmd += ["interlat", *args(setup, work, out)]
    return subprocess.run(cmd, env=env(**extra), capture_output=True, text=True, timeout=300)


def messages(out: Path) -> dict[str, shards.Message]:
    return shards.load_messages(out)  # checks every part's sha256 against the manifest


def assert_same(a: dict[str, shards.Message], b: dict[str, shards.Message]) -> None:
    assert a.keys() == b.keys()
    for key, m in a.items():
        assert m.plan_token_ids == b[key].plan_token_ids and m.plan == b[key].plan
        assert torch.equal(m.H, b[key].H)


@pytest.fixture(scope="module")
def reference(setup) -> dict[str, shards.Message]:
    """An uninterrupted single-process run."""
    root = setup["root"]
    done = interlat(setup, root / "work-ref", root / "out-ref")
    assert done.returncode == 0, done.stderr
    found = messages(root / "out-ref")
    manifest = shards.read_manifest(root / "out-ref")
    # every task has a message, or is counted as an empty plan
    assert len(found) + manifest["counts"]["empty_plans"] == len(setup["ids"])
    assert set(found) <= setup["ids"] and len(found) >= len(setup["ids"]) - 2
    assert {m.n_tokens for m in found.values()} != {24}  # rows stopped at their own EOS
    return found


@pytest.mark.slow
def test_killed_collection_resumes_to_the_same_messages(setup, reference, tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    cmd = [str(BIN / "interlat"), *args(setup, work, out)]
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(work.glob("part-*.parquet")) and proc.poll() is None:
        assert time.monotonic() < deadline, "no part appeared"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "finished before it could be killed"
    assert not out.exists()
    # only complete files under final names; temporaries are dot-prefixed
    finals = [p for p in work.iterdir() if not p.name.startswith(".")]
    parts = [p for p in finals if p.suffix == ".parquet"]
    assert 1 <= len(parts) < setup["n_batches"]
    for p in parts:
        assert all(m.n_tokens > 0 for m in shards.read_messages(p, verify=False))
    assert {p.name for p in finals} - {p.name for p in parts} <= (
        {STAMP} | {p.name for p in work.glob("empty-*.json")}
    )
    done_before = {p.name: p.stat().st_mtime_ns for p in parts}

    resumed = interlat(setup, work, out)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(parts)} already done" in resumed.stderr
    for name, mtime in done_before.items():  # finished batches were not redone
        assert (work / name).stat().st_mtime_ns == mtime
    index = shards.read_index(out)
    assert index["task_id"].n_unique() == index.height  # no duplicates
    assert_same(messages(out), reference)


@pytest.mark.slow
def test_sigterm_keeps_finished_parts_exits_143_and_the_rerun_completes(setup, reference, tmp_path):
    """SIGTERM after the first part: the batch being collected is finished and kept, one line,
    exit 143, nothing published; the rerun collects only the rest, equal to an uninterrupted run."""
    work, out = tmp_path / "work", tmp_path / "out"
    proc = subprocess.Popen([str(BIN / "interlat"), *args(setup, work, out)], env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(work.glob("part-*.parquet")) and proc.poll() is None:
        assert time.monotonic() < deadline, "no part appeared"
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate()
    assert proc.returncode == 143, f"finished before it could be stopped: {err[-2000:]}"
    said = re.findall(r"caught SIGTERM: state saved at batch (\d+) of \d+ \(rank 0\) in (\S+); rerun to resume", err)
    assert len(said) == 1 and said[0][1] == str(work), err[-3000:]
    assert not out.exists()
    parts = list(work.glob("part-*.parquet"))
    assert len(parts) + len(list(work.glob("empty-*.json"))) >= int(said[0][0]) >= 1
    resumed = interlat(setup, work, out)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{said[0][0]} already done" in resumed.stderr
    assert_same(messages(out), reference)


@pytest.mark.slow
def test_two_ranks_write_their_own_parts_and_match_one_process(setup, reference, tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    done = torchrun(setup, work, out)
    assert done.returncode == 0, done.stderr
    assert_same(messages(out), reference)
    names = sorted(p.name for p in out.glob("part-*.parquet"))
    assert {n.split("-")[1] for n in names} == {"r00", "r01"}
    for n in names:  # batch i belongs to rank i % 2
        rank, index = int(n.split("-")[1][1:]), int(n.split("-")[2].split(".")[0])
        assert rank == index % 2
    manifest = json.loads((out / shards.MANIFEST).read_text())
    assert sorted(e["name"] for e in manifest["parts"]) == names


@pytest.mark.slow
def test_a_failing_rank_fails_the_job_and_publishes_nothing(setup, tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    failed = torchrun(setup, work, out, **{FAIL_RANK_ENV: "1"})
    assert failed.returncode != 0
    assert f"failure injected by {FAIL_RANK_ENV}" in failed.stderr
    assert not out.exists() and not list(tmp_path.glob(".out*"))
    # rank 1 wrote one part before it failed, and a rerun resumes from it
    assert len(list(work.glob("part-r01-*.parquet"))) == 1


@pytest.mark.slow
def test_rerun_with_another_seed_discards_the_parts_and_equals_a_fresh_run(setup, reference, tmp_path, caplog):
    """The reference's work folder holds every part of seed 7; a rerun there with seed 8 must not
    reuse one of them (in-process: the same code path as the command)."""
    work, out, fresh = setup["root"] / "work-ref", tmp_path / "rerun", tmp_path / "fresh"
    assert list(work.glob("part-*.parquet"))  # finished parts of seed 7
    with caplog.at_level(logging.WARNING, logger="interlat.workdir"):
        run_cli(*args(setup, work, out, seed=8)[2:])  # without "--threads 1": the run is in-process
    assert f"discarding stale state in {work}: settings/inputs changed (seed)" in caplog.messages
    run_cli(*args(setup, tmp_path / "fresh-work", fresh, seed=8)[2:])
    assert_same(messages(out), messages(fresh))
    rerun = messages(out)
    assert any(m.plan_token_ids != reference[k].plan_token_ids for k, m in rerun.items() if k in reference)


def test_student_only_problems_change_no_other_message_and_convert_to_compress_jsonl(setup, reference, tmp_path):
    """Adding `data.math.n_compress` problems leaves every train/test message bit for bit as it
    was (they are batched after the others); convert puts theirs in compress.jsonl."""
    data = tmp_path / "data"
    more = math_generated.generate(seed=0, n_train=20, n_test=4, subjects=("Algebra",), n_compress=3)
    for split in ("train", "test", "compress"):
        write_jsonl(data / f"{split}.jsonl", [r for r in more if r["split"] == split])
    cmd = [str(BIN / "interlat"), *args(setup, tmp_path / "work", tmp_path / "out")]
    cmd[cmd.index("--data") + 1] = str(data)
    done = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    found = messages(tmp_path / "out")
    assert_same({k: m for k, m in found.items() if k in setup["ids"]}, reference)
    student_only = {r["task_id"] for r in more if r["split"] == "compress"}
    assert set(found) - setup["ids"] <= student_only and len(set(found) - setup["ids"]) >= 2
    run_cli("convert", "--latents", tmp_path / "out", "--data", data, "--out", tmp_path / "convert")
    rows = [json.loads(line) for line in (tmp_path / "convert" / "compress.jsonl").read_text().splitlines()]
    assert {r["id"] for r in rows} == set(found) - setup["ids"]
    train = [json.loads(line) for line in (tmp_path / "convert" / "train.jsonl").read_text().splitlines()]
    assert not {r["id"] for r in train} & student_only


def test_bench_runners_do_the_same_work():
    """The P2 benchmark's three methods each give N new tokens (and states) per prompt."""
    from interlat.bench.collect import RUNNERS, Spec, _check, build_sender, make_prompts

    spec = Spec(shape="tiny", layers=1, prompts=3, new_tokens=5, min_prompt=4, max_prompt=9)
    model = build_sender(spec)
    ids, mask = make_prompts(spec, model.config.vocab_size)
    assert mask.sum(1).unique().numel() > 1  # rows of different lengths: left padding
    for method, run in RUNNERS.items():
        _check(method, run(model, ids, mask, spec), spec, model.config.hidden_size)


@pytest.mark.slow
def test_bench_collect_command_writes_its_table(tmp_path):
    from click.testing import CliRunner

    from interlat.cli import main

    out = tmp_path / "p2.md"
    cmd = ["bench", "collect", "--shape", "tiny", "--layers", "1", "--prompts", "2"]
    cmd += ["--new-tokens", "4", "--repeats", "1", "--out", str(out)]
    result = CliRunner().invoke(main, cmd)
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[0].startswith("Random-init Qwen2, shape tiny cut to 1 layers")
    rows = [ln for ln in lines if ln.startswith("| (")]
    assert [r.split(" | ")[0][2:] for r in rows] == [
        "(c) limit: generate, batched, no states",
        "(a) interlat decode, batched, last layer",
        "(a') interlat decode, batched, no states",
        "(b) reference: generate, batch 1, all layers",
    ]
    help_text = CliRunner().invoke(main, ["bench", "collect", "--help"]).output
    assert "--new-tokens" in help_text and "[default: 32" in help_text
