"""Multi-node training (interlat/launch.py): the launch command the workflow generates for a
2-node SLURM allocation, and that command's torchrun part run for real as two agents that meet
by c10d rendezvous on localhost (one per "node", as srun would start them) and train together."""

import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from interlat.launch import HEAD_NODE, container_of, gpus_per_node, torchrun
from tests.helpers import copy_repo, smk

BIN = Path(sys.executable).parent


def test_one_node_is_standalone_torchrun():
    assert torchrun(nodes=1, nproc_per_node=4) == "torchrun --standalone --nproc_per_node=4 --no-python"
    assert container_of(1, "docker://x@sha256:1") == "docker://x@sha256:1"


@pytest.mark.parametrize("res, gpus", [({"gres": "gpu:4"}, 4), ({"gres": "gpu:h100:8"}, 8), ({"gpu": 2}, 2), ({}, 0)])
def test_gpus_per_node(res, gpus):
    assert gpus_per_node(res) == gpus


def test_two_nodes_start_one_agent_per_node_meeting_on_the_first_node():
    cmd = torchrun(nodes=2, nproc_per_node=4, image="docker://reg/interlat-cuda@sha256:ab", apptainer_args="--nv")
    srun, rest = cmd.split(" apptainer exec ", 1)
    assert srun.split() == ["srun", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1",
                            "--cpus-per-task=$SLURM_CPUS_PER_TASK", "--kill-on-bad-exit=1"]
    assert rest.startswith('--home "$PWD" --nv docker://reg/interlat-cuda@sha256:ab torchrun ')
    assert f"--rdzv_endpoint={HEAD_NODE}:29500" in cmd and "--rdzv_id=$SLURM_JOB_ID" in cmd
    assert "--nnodes=2 --nproc_per_node=4" in cmd and "--standalone" not in cmd
    assert container_of(2, "docker://x@sha256:1") is None  # srun must run on the host


def test_workflow_generates_the_two_node_launch(tmp_path):
    """`--set-resources` of a 2-node allocation (per-node gres) reaches the train rule's command."""
    work = copy_repo(tmp_path)
    out = smk(work, "-n", "-p", "--config", "train={'engine': 'ddp'}",
              "--set-resources", "train:nodes=2", 'train:gres="gpu:4"', "train:mpi=srun", "train:tasks=2",
              "train:tasks_per_gpu=0", "--", "results/test/train/math/replicate0/interlat")
    text = out.stdout + out.stderr
    line = next(x for x in text.splitlines() if "torchrun" in x)
    assert line.strip().startswith("srun --nodes=2 --ntasks=2 --ntasks-per-node=1 ")
    assert "torchrun --nnodes=2 --nproc_per_node=4 --rdzv_backend=c10d" in line
    assert line.rstrip(" \\").endswith("--no-python interlat --threads 1 train")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_agents_rendezvous_and_train_as_two_nodes(tiny, tmp_path):
    """The generated command minus `srun` (what srun starts on each node), the first node's name
    replaced by localhost: two agents, one rank each, one DDP training of 2 ranks."""
    port = free_port()
    cmd = torchrun(nodes=2, nproc_per_node=1, port=port)
    agent = cmd[cmd.index("torchrun "):].replace(HEAD_NODE, "127.0.0.1")
    argv = [str(BIN / "torchrun"), *shlex.split(agent)[1:]]
    argv = [a.replace("$SLURM_JOB_ID", "4242") for a in argv]
    train = [str(BIN / "interlat"), "--threads", "1", "train", "--base", str(tiny["receiver"]),
             "--conversations", str(tiny["convert"] / "train.jsonl"), "--latents", str(tiny["latents"]),
             "--steps", "4", "--batch-size", "2", "--engine", "ddp", "--work-dir", str(tmp_path / "work"),
             "--log-csv", str(tmp_path / "log.csv"), "--out", str(tmp_path / "ckpt")]  # fmt: skip
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    agents = [subprocess.Popen([*argv, *train], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
              for _ in range(2)]
    outs = [a.communicate(timeout=300)[0] for a in agents]
    assert [a.returncode for a in agents] == [0, 0], "\n".join(o[-3000:] for o in outs)
    assert sorted(p.name for p in (tmp_path / "work").glob("trace-rank*.jsonl")) == ["trace-rank0.jsonl",
                                                                                     "trace-rank1.jsonl"]
    assert (tmp_path / "ckpt" / "adapter.safetensors").is_file()
