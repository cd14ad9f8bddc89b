"""Where a job runs: the machine's name for captions, the process group, the device and dtype,
and how it stops when asked to (SIGTERM).

SIGTERM is what a job gets at its SLURM time limit (then SIGKILL after KillWait), on
preemption, or from `scancel`/`kill`. The stages that keep resumable state (train, compress,
collect, evaluate) run their loops inside `sigterm_stops()`: the signal only sets a flag; the
loop asks `stop_requested()` at its next safe point (the end of a step, batch or chunk), saves
its state as usual, and raises `Stopped`: one line on stderr,
``caught SIGTERM: state saved at step N in W; rerun to resume``, exit status 143 (128 + 15,
what the shell reports for a job ended by SIGTERM), and no final output. The rerun resumes
from that state (it is stamped with settings and inputs, `interlat.workdir.open_state`).
Under a process group, `stop_requested(world)` all-reduces the flag, so every rank stops at
the same step and none waits in a collective for a rank that left.

Devices and precision are chosen here and nowhere else (collect, train, compress, evaluate and
latency all ask): `local_device()` is `cuda:<LOCAL_RANK>` where CUDA is present, else `cpu`;
`compute_dtype(device)` is the dtype of models that only run forward (a frozen teacher, a
sender, a receiver being evaluated): bfloat16 on GPUs, float32 on CPUs; trained weights stay
float32 masters (`MASTER_DTYPE`) and their forward runs under `autocast(device)` (bfloat16 on
GPUs, nothing on CPUs); a DeepSpeed JSON's `"bf16": {"enabled": "auto"}` resolves to
`bf16_enabled(device)`. `rank_threads` splits a job's cores (`--threads`, the rule's
`threads`) over the ranks torchrun starts on the node.
"""

import contextlib
import os
import platform
import signal
import threading
from collections.abc import Iterator

import click


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


def local_device(cuda: bool | None = None) -> str:
    """This rank's device: cuda:<LOCAL_RANK> where there is a GPU (`cuda`: whether CUDA is
    available; default: ask torch), else cpu."""
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if cuda else "cpu"


def on_gpu(device) -> bool:
    return str(device).startswith("cuda")


def compute_dtype(device):
    """Weights of models that only run forward: bfloat16 on GPUs, float32 on CPUs."""
    import torch

    return torch.bfloat16 if on_gpu(device) else torch.float32


#: Trained weights are float32 masters on every device (updates of ~1e-5 vanish in bfloat16).
MASTER_DTYPE = "float32"


def autocast(device):
    """The forward of trained (float32) weights: bfloat16 autocast on GPUs, plain float32 on CPUs."""
    import torch

    if on_gpu(device):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def bf16_enabled(device) -> bool:
    """What a DeepSpeed JSON's `"bf16": {"enabled": "auto"}` means here: on with GPUs."""
    return on_gpu(device)


def rank_threads(threads: int, local_world: int | None = None) -> int:
    """CPU threads of one rank: the job's `threads` split over the ranks on this node
    (torchrun's LOCAL_WORLD_SIZE), at least 1."""
    if local_world is None:
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    return max(1, threads // max(local_world, 1))


def set_threads(threads: int | None) -> None:
    """torch's intra-op threads for this rank (`rank_threads`); None keeps torch's choice."""
    if threads:
        import torch

        torch.set_num_threads(rank_threads(threads))


# ---------------------------------------------------------------------------- stopping on SIGTERM
EXIT_SIGTERM = 143  #: 128 + SIGTERM, the status a shell reports for a process ended by SIGTERM

_stop = threading.Event()
_installed = 0  # nesting depth of sigterm_stops()


class Stopped(click.ClickException):
    """The job stopped on SIGTERM after saving its state: one line on stderr, exit status 143."""

    exit_code = EXIT_SIGTERM

    def __init__(self, where: str, state: str | os.PathLike):
        super().__init__(f"caught SIGTERM: state saved at {where} in {state}; rerun to resume")

    def show(self, file=None) -> None:
        click.echo(self.format_message(), err=True)


@contextlib.contextmanager
def sigterm_stops() -> Iterator[None]:
    """While inside, SIGTERM sets the flag `stop_requested()` reads instead of ending the process.

    Only the main thread may install signal handlers; elsewhere this does nothing (SIGTERM
    keeps its default action). The previous handler is restored on exit, and the flag cleared.
    """
    global _installed
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: _stop.set())
    _installed += 1
    try:
        yield
    finally:
        _installed -= 1
        signal.signal(signal.SIGTERM, previous)
        if not _installed:
            _stop.clear()


def stop_requested(world: int = 1) -> bool:
    """Whether SIGTERM arrived (inside `sigterm_stops()`). With `world` > 1 the flag is
    all-reduced (max) over the process group, so every rank gets the same answer: call it at the
    same point on every rank. Outside `sigterm_stops()` it is False and no collective runs."""
    if not _installed:
        return False
    flag = _stop.is_set()
    if world > 1:
        import torch
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            device = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"
            t = torch.tensor([int(flag)], dtype=torch.int32, device=device)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            flag = bool(t.item())
    return flag
