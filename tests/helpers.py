"""Plain helpers shared by the test modules (fixtures live in conftest.py)."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from click.testing import CliRunner

from interlat.cli import main
from interlat.data.alfworld.expert import thought_for

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


def tiny_lm(arch: str = "qwen2", *, vocab_size: int, pad_token_id: int = 0, eos_token_id: int = 1,
            seed: int = 0, max_positions: int = 256):
    """A 2-layer, 32-wide random-init transformers model (fp32), the tests' smallest real LM."""
    from interlat.model.build import build_model

    return build_model(arch, vocab_size=vocab_size, pad_token_id=pad_token_id, eos_token_id=eos_token_id,
                       hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=64,
                       max_positions=max_positions, seed=seed)


def run_cli(*args: str, expect: int = 0):
    """Invoke `interlat ARGS` in-process; assert the exit code; return the result."""
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=expect != 0)
    assert result.exit_code == expect, (result.output, result.exception)
    return result


def assert_clean_error(result, *needles: str) -> str:
    """The one `Error: ...` line ending a failed command's output (progress bars may come
    before it), holding every needle; no traceback anywhere. Returns the line."""
    assert "Traceback" not in result.output, result.output
    lines = [x for x in result.output.strip().splitlines() if x.strip()]
    errors = [x for x in lines if x.startswith("Error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.output
    for n in needles:
        assert n in errors[0], (n, errors[0])
    return errors[0]


def nothing_written(out: Path) -> bool:
    """Neither `out` nor a dot-prefixed temporary sibling of it exists."""
    return not out.exists() and not list(out.parent.glob(f".{out.name}*"))


def copy_repo(dest: Path) -> Path:
    """The tracked and untracked-but-not-ignored files of the repository, copied to `dest`."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for f in files:
        if (REPO / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, dest / f)
    return dest


def smk(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    cmd = [str(BIN / "snakemake"), "--cores", "2", "--configfile", "config/test.yaml", *args]
    out = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=env)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}")
    return out


def planned_jobs(out: subprocess.CompletedProcess) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count}."""
    text = out.stdout + out.stderr
    if "Nothing to be done" in text:
        return {}
    block = text.split("Job stats:")[1]
    jobs = {}
    for line in block.splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        if m.group(1) != "total":
            jobs[m.group(1)] = int(m.group(2))
    return jobs


def finished_workflow(tmp_path_factory) -> Path:
    """One real run per test session, shared by the modules that check it (e.g. test_compress)."""
    work = tmp_path_factory.getbasetemp() / "workflow"
    if not (work / ".finished").exists():
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        copy_repo(work)
        smk(work)
        (work / ".finished").touch()
    return work


def replay_policy(plans: dict[str, Sequence[str]], latency_s: float = 0.0):
    """A policy that replays fixed commands per task id (e.g. the expert's), as "Action:" lines.

    `latency_s` sleeps once per call, standing in for one batched model forward.
    """

    def policy(episodes) -> list[str]:
        if latency_s:
            time.sleep(latency_s)
        outs = []
        for ep in episodes:
            plan = plans[ep.game.task_id]
            cmd = plan[ep.steps] if ep.steps < len(plan) else "look"
            outs.append(f"Thought: {thought_for(cmd)}\nAction: {cmd}")
        return outs

    return policy


def signal_when(cmd: Sequence[str], marker: Path, sig: int = signal.SIGTERM, *, env: dict | None = None,
                timeout: float = 300) -> tuple[int, str]:
    """Run `cmd`, send it `sig` once `marker` exists (e.g. the first checkpoint), and wait for it
    to end: (exit status, stderr). Fails if the run ends before `marker` appears."""
    p = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + timeout
    while not marker.exists():
        if p.poll() is not None or time.time() > deadline:
            p.kill()
            raise AssertionError(f"{marker} never appeared before the run ended: {p.communicate()[1][-3000:]}")
        time.sleep(0.1)
    p.send_signal(sig)
    _, err = p.communicate(timeout=timeout)
    return p.returncode, err
