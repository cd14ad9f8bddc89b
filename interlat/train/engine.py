"""DeepSpeed for both trainers (receiver and compression student): the user's JSON resolved
against the config, the engine, and its resumable state.

The JSON is the user's source of truth, as in the Hugging Face integration: a value it sets
wins over the config (the trainer then uses it, e.g. for how many samples a rank takes per
micro step, and says so once in the log), and `"auto"` is filled in from the config:

| JSON key | `"auto"` (or absent) becomes |
|---|---|
| `train_micro_batch_size_per_gpu` | `batch_size` |
| `gradient_accumulation_steps` | `gradient_accumulation` |
| `train_batch_size` | micro batch x accumulation x ranks (a set value must equal that) |
| `gradient_clipping` | `max_grad_norm` |
| `bf16.enabled` | `interlat.runtime.bf16_enabled(device)`: on with GPUs (fp32 master weights) |
| `fp16.enabled` | off |
| `optimizer.params.lr` / `weight_decay` | `lr` / `weight_decay` |

Without an `optimizer` section the trainer passes torch's AdamW; with one (the ZeRO-Offload
config, `config/deepspeed/zero3_offload.json`), DeepSpeed builds its own (its CPU Adam when
the optimizer is offloaded). The LR schedule is always the trainer's (warm-up, then linear
decay); a JSON `scheduler` section is refused.
"""

import json
import logging
import math
import pickle
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from interlat import runtime
from interlat.errors import InterlatError
from interlat.train.loop import load_rng, save_rng

log = logging.getLogger(__name__)

#: DeepSpeed's checkpoint tag (its files go to `<state>/engine/`; not "latest", the name of
#: DeepSpeed's own pointer file beside the tag folder).
DEEPSPEED_TAG = "engine"


@dataclass(frozen=True)
class Batching:
    """Samples per rank per micro step, micro steps per optimizer step, ranks."""

    micro: int
    accumulation: int
    world: int

    @property
    def global_micro(self) -> int:
        """Samples per micro step over all ranks."""
        return self.micro * self.world

    @property
    def per_step(self) -> int:
        """Samples per optimizer step over all ranks."""
        return self.micro * self.accumulation * self.world

    def steps_for(self, epochs: float, n: int, where: str = "train", *, whole_steps: bool = True) -> int:
        """Optimizer steps of `epochs` passes over `n` samples. `whole_steps`: an epoch is
        n // per_step steps (the receiver drops an epoch's incomplete last step); otherwise the
        samples are one continuous stream, n / per_step steps an epoch (the student)."""
        per_epoch = n // self.per_step if whole_steps else n / self.per_step
        if whole_steps and per_epoch < 1:
            raise InterlatError(f"{where}: {n} samples, fewer than one optimizer step's {self.per_step} "
                                f"(batch {self.micro} x accumulation {self.accumulation} x ranks {self.world})")
        return max(math.ceil(epochs * per_epoch - 1e-9), 1)


def read_json(path) -> dict:
    """A DeepSpeed JSON that exists and parses (else a one-line error naming the file)."""
    path = Path(path) if path else None
    if path is None or not path.is_file():
        raise InterlatError(f"{path}: no such DeepSpeed config (--deepspeed-config)")
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InterlatError(f"{path}: line {e.lineno}: not valid JSON") from None
    if not isinstance(cfg, dict):
        raise InterlatError(f"{path}: expected a JSON object")
    return cfg


def _int(path, cfg: dict, key: str, fallback: int) -> int:
    value = cfg.get(key, "auto")
    if value == "auto":
        return fallback
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InterlatError(f"{path}: field \"{key}\": {value!r}, expected a positive integer or \"auto\"")
    return value


def resolve(path, *, batch_size: int, accumulation: int, world: int, max_grad_norm: float, lr: float,
            weight_decay: float, device) -> tuple[dict, Batching]:
    """(the DeepSpeed config with every "auto" filled, the batching it implies); see the module docstring."""
    cfg = read_json(path)
    if "scheduler" in cfg:
        raise InterlatError(f"{path}: field \"scheduler\": not supported (the schedule is warmup_ratio's linear warm-up and decay)")
    micro = _int(path, cfg, "train_micro_batch_size_per_gpu", batch_size)
    accum = _int(path, cfg, "gradient_accumulation_steps", accumulation)
    batching = Batching(micro, accum, world)
    total = _int(path, cfg, "train_batch_size", batching.per_step)
    if total != batching.per_step:
        raise InterlatError(f"{path}: field \"train_batch_size\": {total}, expected micro batch {micro} x "
                            f"accumulation {accum} x ranks {world} = {batching.per_step}")
    for key, mine, theirs in (("train_micro_batch_size_per_gpu", batch_size, micro),
                              ("gradient_accumulation_steps", accumulation, accum)):
        if mine != theirs:
            log.info("%s: %s %s set in the JSON wins over the config's %s", path, key, theirs, mine)
    out = {**cfg, "train_micro_batch_size_per_gpu": micro, "gradient_accumulation_steps": accum, "train_batch_size": total}
    clip = cfg.get("gradient_clipping", "auto")
    out["gradient_clipping"] = max_grad_norm if clip == "auto" else clip
    for key, auto in (("bf16", runtime.bf16_enabled(device)), ("fp16", False)):
        section = dict(cfg.get(key) or {})
        if section.get("enabled", "auto") == "auto":
            section["enabled"] = auto
        out[key] = section
    if "optimizer" in cfg:
        opt = dict(cfg["optimizer"])
        params = dict(opt.get("params") or {})
        for key, value in (("lr", lr), ("weight_decay", weight_decay)):
            if params.get(key, "auto") == "auto":
                params[key] = value
        out["optimizer"] = {**opt, "params": params}
    return out, batching


def schedule(lr_factor):
    """The trainer's LR schedule for an optimizer (torch's LambdaLR over `lr_factor`)."""
    return lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)


def initialize(module: torch.nn.Module, ds_cfg: dict, *, lr: float, weight_decay: float, lr_factor):
    """(engine, optimizer, scheduler): DeepSpeed around `module`'s trainable parameters, with
    torch's AdamW unless the JSON names an optimizer."""
    import deepspeed

    params = [p for p in module.parameters() if p.requires_grad]
    opt = None if "optimizer" in ds_cfg else torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    engine, opt, _, sched = deepspeed.initialize(model=module, model_parameters=params, optimizer=opt,
                                                 lr_scheduler=schedule(lr_factor), config=ds_cfg)
    return engine, opt, sched


def gathered(engine, params):
    """Full parameters on every rank while inside (ZeRO-3 partitions them; other stages: nothing)."""
    if engine is not None and hasattr(engine, "zero_optimization_stage") and engine.zero_optimization_stage() == 3:
        import deepspeed

        return deepspeed.zero.GatheredParameters(list(params), modifier_rank=None)
    return nullcontext()


@contextmanager
def weights_only_loads(engine):
    """DeepSpeed reads its checkpoint with unrestricted pickle loads, which would run code planted
    in work/. Inside this block it reads with `weights_only=True`, allowing only the three
    DeepSpeed types its ZeRO optimizer states hold."""
    from deepspeed.runtime.fp16.loss_scaler import LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    ckpt = engine.checkpoint_engine

    def load(path, map_location=None):
        with torch.serialization.safe_globals([LossScaler, ZeroStageEnum, fragment_address]):
            return torch.load(path, map_location=map_location, weights_only=True)

    ckpt.load = load
    try:
        yield
    finally:
        del ckpt.load  # back to the class's method


def save_state(engine, folder: Path, rank: int, step: int) -> None:
    """DeepSpeed's own (partitioned) checkpoint, plus this rank's RNG (DeepSpeed keeps none)."""
    engine.save_checkpoint(str(folder), tag=DEEPSPEED_TAG, client_state={"step": step})
    save_rng(folder, rank)  # dropout draws


def load_state(engine, folder: Path, rank: int) -> None:
    """Back from `save_state` (plain tensors only: a planted pickle is refused in one line)."""
    try:
        with weights_only_loads(engine):
            engine.load_checkpoint(str(folder), tag=DEEPSPEED_TAG)
    except pickle.UnpicklingError as e:
        why = str(e).strip().splitlines()[-1]
        raise InterlatError(f"{folder / DEEPSPEED_TAG}: DeepSpeed state refused, not plain tensors ({why})") from None
    load_rng(folder, rank)
