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


def local_device() -> str:
    """This rank's device: cuda:<LOCAL_RANK> where there is a GPU, else cpu."""
    import torch

    return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"


def compute_dtype(device: str):
    """bfloat16 on GPUs, float32 on CPUs."""
    import torch

    return torch.bfloat16 if str(device).startswith("cuda") else torch.float32


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
