"""Training on 2 CPU ranks (gloo): DDP, DeepSpeed ZeRO-2 and ZeRO-3, and resume after SIGKILL or SIGTERM."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import REPO, signal_when

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


def session_pids(sid: int) -> list[int]:
    """Processes of session `sid` (torchrun and its ranks), from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # after "pid (comm)": state ppid pgrp session
            pids.append(int(stat.parent.name))
    return sorted(pids)


def descendants(pid: int) -> list[int]:
    """Children, grandchildren, ... of `pid` (torchrun's ranks may run in sessions of their own)."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
    found, frontier = [], {pid}
    while frontier:
        frontier = {c for c, pp in parent.items() if pp in frontier}
        found += sorted(frontier)
    return found


def dump_and_kill(p: subprocess.Popen, why: str, err: Path) -> str:
    """Every process's native stacks (gdb, where present), then its Python stacks (faulthandler on
    SIGABRT, written to `err`); the session killed. Returns the dumps, for the failure message."""
    dumps = [why]
    for pid in session_pids(p.pid) if shutil.which("gdb") else []:
        bt = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt 15"],
                            capture_output=True, text=True, timeout=60)
        dumps.append(f"--- native stacks of {pid}\n{bt.stdout[-8000:]}")
    os.killpg(p.pid, signal.SIGABRT)
    time.sleep(5)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    return "\n".join([*dumps, f"--- stderr (Python stacks)\n{err.read_text()[-12000:]}"])


def run_watched(cmd: list[str], logs: Path, done: Path, timeout: float = 600,
                exit_grace: float = 60) -> tuple[int, float, float, str]:
    """Run `cmd` in a session of its own: (exit code, seconds in all, seconds from `done` appearing
    to exit, stderr). A run still alive `exit_grace` s after its last output `done` appeared hangs in
    teardown; one alive after `timeout` s hangs somewhere (both generous, for a loaded machine):
    then fail with every process's stacks."""
    out, err = logs.with_suffix(".out"), logs.with_suffix(".err")
    start, finished = time.perf_counter(), None
    with open(out, "w") as o, open(err, "w") as e:
        p = subprocess.Popen(cmd, stdout=o, stderr=e, start_new_session=True,
                             env={**env(), "PYTHONFAULTHANDLER": "1"})
    while p.poll() is None:
        now = time.perf_counter()
        if finished is None and done.exists():
            finished = now
        if finished is not None and now - finished > exit_grace:
            pytest.fail(dump_and_kill(p, f"no exit {exit_grace:.0f} s after {done} was written: {cmd}", err))
        if now - start > timeout:
            pytest.fail(dump_and_kill(p, f"still running after {timeout:.0f} s: {cmd}", err))
        time.sleep(0.2)
    end = time.perf_counter()
    return p.returncode, end - start, end - (finished or end), err.read_text()


def traces(work: Path) -> dict[int, list[dict]]:
    out = {}
    for f in sorted(work.glob("trace-rank*.jsonl")):
        rows = [json.loads(x) for x in f.read_text().splitlines()]
        out[rows[0]["rank"]] = rows
    return out


@pytest.mark.parametrize("engine, ds", [("ddp", None), ("deepspeed", "zero2"), ("deepspeed", "zero3"),
                                        ("deepspeed", "zero3_offload")])
def test_two_ranks_split_the_batch_share_negatives_and_learn(tiny, tmp_path, engine, ds):
    """zero3_offload: ZeRO-3 with parameters and optimizer offloaded to the CPU and DeepSpeed's
    own (CPU Adam) optimizer from the JSON's optimizer section, lr filled from --lr."""
    steps = 12
    cmd = train_cmd(tiny, tmp_path, engine, steps, nproc=2, extra=(ds,) if ds else ())
    rc, _, _, stderr = run_watched(cmd, tmp_path / "run", done=tmp_path / "ckpt")
    assert rc == 0, stderr[-4000:]
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


def test_json_batch_wins_and_accumulation_and_epochs_set_the_steps_over_two_ranks(tiny, tmp_path):
    """A DeepSpeed JSON setting micro batch 3 and accumulation 2 wins over --batch-size 2; with
    --epochs 2 over 2 ranks an optimizer step takes 12 samples, so the run is 2 x (n // 12)
    steps of 2 micro steps each, every micro step's 6 samples split over the ranks."""
    cfg = json.loads((REPO / "config/deepspeed/zero2.json").read_text())
    cfg.update(train_micro_batch_size_per_gpu=3, gradient_accumulation_steps=2)
    own = tmp_path / "mine.json"
    own.write_text(json.dumps(cfg))
    cmd = train_cmd(tiny, tmp_path, "deepspeed", 1, nproc=2, extra=("zero2", "--epochs", "2"))
    cmd[cmd.index("--deepspeed-config") + 1] = str(own)
    rc, _, _, stderr = run_watched(cmd, tmp_path / "run", done=tmp_path / "ckpt")
    assert rc == 0, stderr[-4000:]
    assert "train_micro_batch_size_per_gpu 3 set in the JSON wins over the config's 2" in stderr
    said = re.findall(r"(\d+) optimizer steps \(2\.0 epochs over (\d+) samples; 12 samples a step = 3 x 2 "
                      r"accumulation x 2 ranks\)", stderr)
    assert len(said) == 2, stderr[-3000:]  # one line per rank
    steps, n = int(said[0][0]), int(said[0][1])
    assert steps == 2 * (n // 12) >= 2
    assert pl.read_csv(tmp_path / "log.csv").height == steps
    t = traces(tmp_path / "work")
    for rank in (0, 1):
        assert [(r["step"], r["micro"]) for r in t[rank]] == [(s, k) for s in range(steps) for k in range(2)]
        assert all(len(r["tasks"]) == 3 for r in t[rank])
    for a, b in zip(t[0], t[1], strict=True):
        assert not set(a["tasks"]) & set(b["tasks"])
    epoch = [task for rank in (0, 1) for r in t[rank][: 2 * (n // 12)] for task in r["tasks"]]
    assert len(epoch) == len(set(epoch))  # one epoch: no sample twice


# INTERLAT_HANG_REPEATS=20 for a longer hunt (DDP runs take ~10 s here, DeepSpeed ones ~35 s)
REPEATS = int(os.environ.get("INTERLAT_HANG_REPEATS", "0")) or None
TEARDOWNS = [("ddp", None, REPEATS or 3), ("deepspeed", "zero2", REPEATS or 2), ("deepspeed", "zero3", REPEATS or 2)]


@pytest.mark.parametrize("engine, ds, repeat", [(e, d, i) for e, d, n in TEARDOWNS for i in range(n)])
def test_two_rank_runs_exit_without_hanging(tiny, tmp_path, engine, ds, repeat):
    """Teardown race: a DDP Reducer (or a DeepSpeed engine) outliving `destroy_process_group`
    could leave rank 0 joining gloo's worker thread forever at interpreter exit. Short runs,
    repeated (and the learning test above, watched the same way); each must exit soon after
    writing its receiver, or every process's stacks are dumped."""
    cmd = train_cmd(tiny, tmp_path, engine, 2, nproc=2, extra=(ds,) if ds else ())
    rc, seconds, teardown, stderr = run_watched(cmd, tmp_path / "run", done=tmp_path / "ckpt")
    assert rc == 0, stderr[-4000:]
    assert (tmp_path / "ckpt/adapter.safetensors").exists()
    print(f"{engine} {ds or ''} repeat {repeat}: {seconds:.1f} s, {teardown:.1f} s from receiver to exit")


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
    while not (run / "work/state/loop.json").exists():
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


def max_weight_diff(a: Path, b: Path) -> float:
    """Largest absolute difference over the LM and adapter weights of two receiver checkpoints."""
    worst = 0.0
    for name in ("model.safetensors", "adapter.safetensors"):
        x, y = load_file(a / name), load_file(b / name)
        assert x.keys() == y.keys()
        worst = max(worst, *((x[k] - y[k]).abs().max().item() for k in x))
    return worst


def test_sigterm_saves_the_state_exits_143_and_the_rerun_resumes(tiny, tmp_path):
    """SIGTERM (a SLURM time limit) after the first checkpoint: the step being run ends, the state
    is saved, one line says so, exit 143 and no receiver; the rerun resumes from that step and
    ends with the weights of an uninterrupted run."""
    steps, every = 40, 5
    extra = ("zero2", "--checkpoint-every", str(every))
    ref = tmp_path / "ref"
    subprocess.run(train_cmd(tiny, ref, "single", steps, extra=extra), check=True, capture_output=True, env=env())
    run = tmp_path / "run"
    rc, err = signal_when(train_cmd(tiny, run, "single", steps, extra=extra), run / "work/state/loop.json", env=env())
    assert rc == 143, err[-3000:]
    said = re.findall(r"caught SIGTERM: state saved at step (\d+) in (\S+); rerun to resume", err)
    assert len(said) == 1 and said[0][1] == str(run / "work"), err[-3000:]
    step = int(said[0][0])
    assert every <= step < steps
    assert json.loads((run / "work/state/loop.json").read_text())["step"] == step
    assert not (run / "ckpt").exists() and not (run / "log.csv").exists()
    assert not list((run / "work").glob(".state*"))  # no temporary state folder left
    again = subprocess.run(train_cmd(tiny, run, "single", steps, extra=extra), capture_output=True, text=True, env=env())
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resumed from step {step} " in again.stderr
    assert max_weight_diff(ref / "ckpt", run / "ckpt") <= 1e-6
    assert pl.read_csv(run / "log.csv")["loss"].to_list() == pl.read_csv(ref / "log.csv")["loss"].to_list()


def test_sigterm_to_one_rank_stops_both_ranks_at_the_same_step(tiny, tmp_path):
    """2-rank DDP, SIGTERM to rank 1 only: the ranks agree (all-reduced flag), both save at the
    same step and exit; nothing waits in a collective; the rerun resumes to an uninterrupted
    2-rank run's weights."""
    steps, every = 40, 5
    extra = ("zero2", "--checkpoint-every", str(every))
    ref = tmp_path / "ref"
    subprocess.run(train_cmd(tiny, ref, "ddp", steps, nproc=2, extra=extra), check=True, capture_output=True, env=env())
    run = tmp_path / "run"
    cmd = train_cmd(tiny, run, "ddp", steps, nproc=2, extra=extra)
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env(),
                         start_new_session=True)
    deadline = time.time() + 300
    while not (run / "work/state/loop.json").exists():
        assert p.poll() is None and time.time() < deadline, "no checkpoint before the run ended"
        time.sleep(0.1)
    rank1 = [pid for pid in descendants(p.pid) if b"\0RANK=1\0" in Path(f"/proc/{pid}/environ").read_bytes()]
    assert len(rank1) == 1, rank1
    os.kill(rank1[0], signal.SIGTERM)
    try:
        _, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail(dump_and_kill(p, "2-rank run still alive 120 s after SIGTERM to rank 1", Path("/dev/null")))
    assert p.returncode != 0
    said = re.findall(r"caught SIGTERM: state saved at step (\d+) in", err)
    assert len(said) == 2 and said[0] == said[1], err[-4000:]  # one line per rank, the same step
    step = int(said[0])
    assert not (run / "ckpt").exists()
    # each rank keeps its own dropout stream: resuming rank 1 from rank 0's made this test flaky
    assert all((run / f"work/state/rng-rank{r}.pt").is_file() for r in (0, 1))
    again = subprocess.run(cmd, capture_output=True, text=True, env=env())
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resumed from step {step} " in again.stderr
    assert max_weight_diff(ref / "ckpt", run / "ckpt") <= 1e-6


def test_deepspeed_state_resumes_with_weights_only_loads(tiny, tmp_path):
    """ZeRO-2 saves its state mid-run; a rerun in the same work folder resumes from it (DeepSpeed's
    files read with weights_only=True) and ends at the same weights. A pickle planted in that
    state is refused in one line and never runs."""
    steps, every = 4, 2
    launcher = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node=1", "--no-python"]
    cmd = launcher + train_cmd(tiny, tmp_path, "deepspeed", steps, extra=("zero2", "--checkpoint-every", str(every)))
    first = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=600)
    assert first.returncode == 0, first.stderr[-4000:]
    engine_files = sorted((tmp_path / "work/state/engine").glob("*.pt"))
    assert engine_files, sorted(p.name for p in (tmp_path / "work").rglob("*"))
    a = load_file(tmp_path / "ckpt/model.safetensors")
    again = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=600)
    assert again.returncode == 0, again.stderr[-4000:]
    assert f"resumed from step {every}" in again.stderr
    b = load_file(tmp_path / "ckpt/model.safetensors")
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6

    marker = tmp_path / "planted-code-ran"

    class Planted:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    import pickle

    optim = next(p for p in engine_files if "optim" in p.name)
    optim.write_bytes(pickle.dumps(Planted()))
    refused = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=600)
    assert refused.returncode != 0
    assert "DeepSpeed state refused" in refused.stderr and "Traceback" not in refused.stderr.split("Error:")[-1]
    assert not marker.exists()
