"""The launch command of a multi-process training job, one node or several (the train rule's
`params.launcher`, workflow/rules/common.smk).

One node: `torchrun --standalone --nproc_per_node=G`. Several nodes (SLURM `--nodes=N`, the
profile's `nodes` and per-node `gres: gpu:G`): the job's batch script runs on the first node and
starts ONE torchrun agent per node with `srun`; the agents meet through torchrun's c10d
rendezvous on the first node of the allocation (its host name from `scontrol show hostnames`,
keyed by the SLURM job id), and each starts G ranks, N x G in all. Under apptainer the `srun`
must run on the host (the image has no SLURM), so the rule runs outside the image and each agent
enters it (`apptainer exec`), see `container_of`.
"""

import re
import shlex

RDZV_PORT = 29500
#: the first node of the allocation, evaluated by the job's shell on that node
HEAD_NODE = '$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)'


def gpus_per_node(resources: dict) -> int:
    """GPUs per node: from `gres` ("gpu:4", "gpu:h100:4"), else the `gpu` count (one node)."""
    gres = str(resources.get("gres") or "")
    m = re.fullmatch(r"gpu(?::[A-Za-z0-9_.]+)?:(\d+)", gres)
    if m:
        return int(m.group(1))
    return int(resources.get("gpu", 0) or 0)


def torchrun(*, nodes: int, nproc_per_node: int, image: str | None = None, apptainer_args: str = "",
             port: int = RDZV_PORT) -> str:
    """The launcher prefix of `interlat ...` for `nodes` x `nproc_per_node` ranks."""
    if nodes <= 1:
        return f"torchrun --standalone --nproc_per_node={nproc_per_node} --no-python"
    enter = f"apptainer exec --home \"$PWD\" {apptainer_args} {shlex.quote(image)} ".replace("  ", " ") if image else ""
    return (
        f"srun --nodes={nodes} --ntasks={nodes} --ntasks-per-node=1 --cpus-per-task=$SLURM_CPUS_PER_TASK "
        f"--kill-on-bad-exit=1 {enter}torchrun --nnodes={nodes} --nproc_per_node={nproc_per_node} "
        f"--rdzv_backend=c10d --rdzv_endpoint={HEAD_NODE}:{port} --rdzv_id=$SLURM_JOB_ID --no-python"
    )


def container_of(nodes: int, image: str | None) -> str | None:
    """The image a job runs in: none for a multi-node job (its launcher enters the image on every node)."""
    return None if nodes > 1 else image
