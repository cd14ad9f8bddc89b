"""The training-loop skeleton shared by the receiver (`interlat.train.trainer.Trainer`) and the
compression student (`interlat.compress.trainer.CompressTrainer`).

`TrainLoop` holds what both loops do the same way:

- the LR schedule, `linear_schedule`: linear warm-up over `max(int(warmup_ratio * total), 1)`
  steps, then linear decay to 0 at `total`. It is kept hand-written on purpose:
  transformers' `get_linear_schedule_with_warmup` warms up as `step / warm` (lr 0 at step 0),
  while ours is `(step + 1) / warm` (the first step already trains); switching would change
  every number of the paper's tables;
- the resumable state under `work_dir/state` (written to a temporary folder, then swapped in):
  `state.pt` holds the trainable parameters, optimizer and scheduler (tensors and plain values
  only, read back with `torch.load(weights_only=True)`); `rng-rank<r>.pt` holds each rank's own
  RNG states (the adapter's dropout draws differ per rank, so rank 1 resuming from rank 0's
  generator would train on other masks than an uninterrupted run); `loop.json` holds the
  step, the log rows and the loop's own counters. A DeepSpeed engine writes its own checkpoint
  instead of `state.pt` (`engine_state` / `load_engine_state` hooks);
- the stamp of the work folder (`interlat.workdir.open_state`: settings + input contents),
  checked before anything is resumed, so a rerun with other settings starts over;
- stopping on SIGTERM (a SLURM time limit, preemption): `checkpoint_or_stop`, called at the end
  of every step, saves the state every `checkpoint_every` steps, or at once when SIGTERM
  arrived (`interlat.runtime.stop_requested`, agreed over the ranks) and then raises
  `interlat.runtime.Stopped` (exit 143, no final output; the rerun resumes from that step);
- a full disk while the state is written is one line naming the folder
  (`interlat.atomic.no_space_is_an_error`), and the temporary folder is removed;
- one CSV writer for the per-step log (`write_log_csv`);
- the sample order of an epoch, `epoch_order`: a permutation seeded by (seed, epoch), the same
  on every rank and after a resume (the last few are kept, since every sample of a step asks);
- the message cap: each sample's message is capped at `prepended_length` rows once, when the
  samples are built (`interlat.train.samples.build_samples`); `TrainLoop.check_cap` refuses
  samples built with another cap, so neither loop clamps messages again.
"""

import functools
import json
import logging
import math
import os
import random
import shutil
from pathlib import Path

import torch

from interlat import runtime
from interlat.atomic import no_space_is_an_error, write_csv, write_json
from interlat.errors import InterlatError
from interlat.workdir import open_state

log = logging.getLogger(__name__)


def linear_schedule(warmup_ratio: float, total: int):
    """LambdaLR factor: (step + 1) / warm during warm-up, then (total - step) / (total - warm)."""
    warm = max(int(warmup_ratio * total), 1)

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total - step) / max(total - warm, 1))

    return f


@functools.lru_cache(maxsize=4)
def epoch_order(seed: int, epoch: int, n: int) -> tuple[int, ...]:
    """The order of `n` samples in `epoch`: a permutation seeded by (seed, epoch)."""
    perm = list(range(n))
    random.Random(f"{seed}:epoch:{epoch}").shuffle(perm)
    return tuple(perm)


def save_rng(folder: Path, rank: int) -> None:
    """This rank's generator states (dropout draws) as `folder/rng-rank<rank>.pt`."""
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state()
    torch.save(rng, folder / f"rng-rank{rank}.pt")


def load_rng(folder: Path, rank: int) -> None:
    """Back from `save_rng`: this rank continues its own random stream."""
    path = folder / f"rng-rank{rank}.pt"
    if not path.is_file():
        raise InterlatError(f"{folder}: no RNG state for rank {rank} ({path.name}); remove the folder to start over")
    rng = torch.load(path, weights_only=True)
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"])


def write_log_csv(path: Path, fields: tuple[str, ...], rows: list[dict]) -> None:
    """The per-step log as CSV (6 significant digits; an absent or NaN value is empty), atomically."""
    write_csv(path, ({k: f"{row[k]:.6g}" if k in row and not math.isnan(row[k]) else "" for k in fields} for row in rows),
              fields)


class TrainLoop:
    """Base of the two trainers: schedule, stamp, state save/resume (see the module docstring).

    Subclasses set `self.opt`, `self.sched` and `state_module()` (the module whose trainable
    parameters are the state), and may extend `loop_state` / `load_loop_state`.
    """

    def __init__(self, work_dir, inputs: dict | None = None, rank: int = 0, world: int = 1):
        self.work_dir = Path(work_dir)
        self.inputs = dict(inputs or {})
        self.rank, self.world = rank, world
        self.step, self.rows = 0, []

    @staticmethod
    def check_cap(samples, cap: int) -> None:
        """Messages are capped once, by `build_samples`; refuse samples built with a longer cap."""
        longest = max((s.H.shape[0] for s in samples if s.H is not None), default=0)
        if longest > cap:
            raise InterlatError(f"train: a message of {longest} rows, longer than prepended_length {cap}")

    def scheduler(self, opt, warmup_ratio: float, total: int):
        return torch.optim.lr_scheduler.LambdaLR(opt, linear_schedule(warmup_ratio, total))

    # -- hooks ---------------------------------------------------------------
    def settings(self) -> dict:
        raise NotImplementedError

    def state_module(self) -> torch.nn.Module:
        raise NotImplementedError

    def loop_state(self) -> dict:
        """JSON values saved with the step and rows (e.g. early-stopping counters)."""
        return {}

    def load_loop_state(self, state: dict) -> None:
        pass

    def engine_state(self, folder: Path) -> None:
        """Write the tensors of the state into `folder` (the weights and optimizer from rank 0, the
        RNG from every rank; safe to load with weights_only)."""
        save_rng(folder, self.rank)
        if self.rank != 0:
            return
        module = self.state_module()
        torch.save(
            {
                "model": {n: p.detach() for n, p in module.named_parameters() if p.requires_grad},
                "opt": self.opt.state_dict(),
                "sched": self.sched.state_dict(),
            },
            folder / "state.pt",
        )

    def load_engine_state(self, folder: Path) -> None:
        ck = torch.load(folder / "state.pt", weights_only=True)
        module = self.state_module()
        missing, unexpected = module.load_state_dict(ck["model"], strict=False)
        trainable = {n for n, p in module.named_parameters() if p.requires_grad}
        if unexpected or trainable & set(missing):
            raise InterlatError(f"{folder}: state does not fit the model (missing {sorted(trainable & set(missing))[:3]}, "
                                f"unexpected {unexpected[:3]})")
        self.opt.load_state_dict(ck["opt"])
        self.sched.load_state_dict(ck["sched"])
        load_rng(folder, self.rank)

    # -- state ---------------------------------------------------------------
    def _barrier(self) -> None:
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.barrier()

    def checkpoint_or_stop(self, every: int, total: int) -> None:
        """End of a step: save the state every `every` steps (not after the last one); when
        SIGTERM arrived (on any rank), save it now and raise `interlat.runtime.Stopped`."""
        if runtime.stop_requested(self.world):
            self.save_state()
            raise runtime.Stopped(f"step {self.step}", self.work_dir)
        if self.step % every == 0 and self.step < total:
            self.save_state()

    def save_state(self) -> None:
        """The resumable state under work_dir/state (a temporary folder, then swapped in)."""
        final = self.work_dir / "state"
        tmp = self.work_dir / f".state.tmp.{self.step}"
        try:
            with no_space_is_an_error(final):
                if self.rank == 0:
                    shutil.rmtree(tmp, ignore_errors=True)
                    tmp.mkdir(parents=True)
                self._barrier()
                self.engine_state(tmp)
                self._barrier()
                if self.rank == 0:
                    write_json(tmp / "loop.json", {"step": self.step, "rows": self.rows, **self.loop_state()})
                    old = self.work_dir / ".state.old"
                    if final.exists():
                        os.replace(final, old)
                    os.replace(tmp, final)
                    shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            if self.rank == 0:
                shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._barrier()

    def resume(self) -> None:
        """Check the work folder's stamp (stale state is discarded), then load the state if any."""
        open_state(self.work_dir, self.settings(), self.inputs, rank=self.rank)
        state = self.work_dir / "state"
        if not (state / "loop.json").is_file():
            return
        self.load_engine_state(state)
        meta = json.loads((state / "loop.json").read_text())
        self.step, self.rows = meta["step"], meta["rows"]
        self.load_loop_state(meta)
        log.info("resumed from step %d (%s)", self.step, state)
