"""Where a job runs: the machine's name for captions, the process group, the device and dtype."""

import os
import platform


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one), for captions."""
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or "cpu"


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment, (0, 1) without it."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def init_process_group(world: int) -> None:
    """Join torchrun's process group (NCCL on GPUs, gloo on CPUs); nothing for one process."""
    if world > 1:
        import torch
        import torch.distributed as dist

        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


def barrier(world: int) -> None:
    """Wait for every rank (one process: nothing)."""
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


def destroy_process_group(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        dist.destroy_process_group()


def local_device() -> str:
    """This rank's device: cuda:<LOCAL_RANK> where there is a GPU, else cpu."""
    import torch

    return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"


def compute_dtype(device: str):
    """bfloat16 on GPUs, float32 on CPUs."""
    import torch

    return torch.bfloat16 if str(device).startswith("cuda") else torch.float32
