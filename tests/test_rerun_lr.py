"""End to end: after a finished run, the same workflow with another `train: lr:` retrains the
receiver from scratch. It once resumed the old run's checkpoint under work/ (state of step 20
of 30) and so wrote (nearly) the old model; now the stale state is discarded and the result
equals a fresh `interlat train` with the new lr and the job's own arguments."""

import os
import shlex
import shutil
import subprocess

import pytest
from safetensors.torch import load_file

from tests.helpers import BIN, finished_workflow, smk

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(2400)]  # the first test builds the shared world (whole pipeline / image / cluster)

TARGET = "results/test/train/math/replicate0/interlat"
WORK = "work/test/train/math/replicate0/interlat"
NEW_LR = 0.004  # config/config.yaml has 0.001


def weights(folder) -> dict:
    return {**load_file(folder / "model.safetensors"),
            **{f"adapter.{k}": v for k, v in load_file(folder / "adapter.safetensors").items()}}


def worst(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


def job_command(work, *config: str) -> str:
    """The shell command of the train job of TARGET, as a dry run with --printshellcmds gives it."""
    out = smk(work, *config, "--dry-run", "--printshellcmds", f"--forcerun={TARGET}", "--", TARGET)
    text = (out.stdout + out.stderr).replace("\\\n", " ")
    cmds = [c.split(">", 1)[0] for c in text.split("interlat --threads")[1:]]
    mine = [f"interlat --threads{c}" for c in cmds if f"--out {TARGET}" in " ".join(c.split())]
    assert len(mine) == 1, text[-3000:]
    return mine[0]


def test_rerun_with_another_lr_retrains_from_scratch(tmp_path_factory, tmp_path):
    # A copy of the shared finished run (outputs, work/ state and Snakemake's metadata, times
    # kept): the other workflow tests must still find it as the test config left it.
    work = tmp_path / "workflow"
    shutil.copytree(finished_workflow(tmp_path_factory), work, symlinks=True)
    assert (work / WORK / "state" / "loop.json").is_file()  # the old run's checkpoint is still there
    old = weights(work / TARGET)
    (work / "extra.yaml").write_text(f"train:\n  lr: {NEW_LR}\n")
    config = ("--configfile", "config/test.yaml", "extra.yaml")
    smk(work, *config, "--", TARGET)  # params changed: the train job reruns in the same work folder
    log = (work / "logs/test/train/math/replicate0/interlat.log").read_text()
    assert f"discarding stale state in {WORK}: settings/inputs changed (lr)" in log, log[-3000:]
    assert "resumed from step" not in log
    rerun = weights(work / TARGET)
    assert worst(rerun, old) > 1e-4

    args = shlex.split(job_command(work, *config))
    assert args[args.index("--lr") + 1] == str(NEW_LR)
    fresh = work / "fresh"
    for opt, path in (("--work-dir", fresh / "work"), ("--log-csv", fresh / "log.csv"), ("--out", fresh / "ckpt")):
        args[args.index(opt) + 1] = str(path)
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    done = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert worst(rerun, weights(fresh / "ckpt")) <= 1e-6
