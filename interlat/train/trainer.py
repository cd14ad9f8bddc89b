"""Receiver training: setup / train / save_checkpoint / cleanup (docs/method.md section 3).

One process (`engine="single"`), plain DDP, or DeepSpeed ZeRO-2/3 (`interlat.train.engine`:
the user's JSON wins, "auto" is filled from the config), all launched by torchrun with gloo on
the CPU and NCCL on GPUs; device and precision come from `interlat.runtime` (GPUs: fp32 master
weights under bf16 autocast, or DeepSpeed's bf16 with fp32 masters; CPUs: fp32). Training
runs `epochs` passes over the samples (or `steps` optimizer steps when epochs is 0); an
optimizer step is `gradient_accumulation` micro steps, each rank taking its own slice of every
micro step's global batch; negatives for pass R are drawn from that whole global batch (all
ranks), never the sample itself. Training state (weights, optimizer, scheduler, step, RNG, log rows) is checkpointed
every `checkpoint_every` steps under a work folder outside Snakemake's outputs, so a killed run
resumes where it stopped; state made with other settings or inputs is discarded, never reused
(`interlat.train.loop.TrainLoop`, shared with the compression student). The final receiver is
written to the output folder at the end.
"""

import gc
import json
import logging
import os
import random
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from interlat import runtime
from interlat.atomic import atomic_dir
from interlat.model.adapter import LatentAdapter
from interlat.model.insertion import pad_messages
from interlat.model.receiver import Receiver, add_special_tokens
from interlat.text.batching import pad_id
from interlat.train import engine as ds
from interlat.train.loop import TrainLoop, epoch_order, linear_schedule, write_log_csv
from interlat.train.objective import ReceiverObjective
from interlat.train.samples import collate

log = logging.getLogger(__name__)

LOG_FIELDS = ("step", "loss", "ce", "l_plan", "l_rand", "w_plan", "w_rand", "hinge_active", "r", "lr", "tokens_per_s")


@dataclass
class TrainConfig:
    """Receiver training settings (config section `train`)."""

    mode: str = "interlat"  # interlat | text | none
    steps: int = 1000  # optimizer steps when epochs is 0
    epochs: float = 0.0  # passes over the samples (paper 10); 0: `steps` decides
    batch_size: int = 16  # per rank per micro step
    gradient_accumulation: int = 1  # micro steps per optimizer step
    lr: float = 1e-3
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 3.0
    prepended_length: int = 800
    margin: float = 0.69
    contrast: bool = True
    curriculum: str = "ramp_to_pure"  # uniform | ramp_to_pure
    ramp_start: float = 0.5
    engine: str = "single"  # single | ddp | deepspeed
    deepspeed_config: str | None = "config/deepspeed/zero2.json"
    gradient_checkpointing: bool = False
    checkpoint_every: int = 200
    adapter_heads: int = 8
    adapter_dropout: float = 0.1
    seed: int = 0

    def __post_init__(self):
        checks = {
            "train.mode": self.mode in ("interlat", "text", "none"),
            "train.engine": self.engine in ("single", "ddp", "deepspeed"),
            "train.curriculum": self.curriculum in ("uniform", "ramp_to_pure"),
            "train.steps": self.steps > 0,
            "train.epochs": self.epochs >= 0,
            "train.batch_size": self.batch_size > 0,
            "train.gradient_accumulation": self.gradient_accumulation > 0,
            "train.ramp_start": 0.0 <= self.ramp_start < 1.0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            from interlat.errors import InterlatError

            raise InterlatError(f"config: field \"{bad[0]}\": invalid value")


def mixing_ratios(cfg: TrainConfig, step: int, global_ids: list[int], seed: int, total: int | None = None) -> torch.Tensor:
    """r per sample for this step: uniform over {0.1..0.9}, or pure latents (r=1) with a
    probability that ramps linearly from 0 at `ramp_start` of training to 1 at the last step
    (of `total` steps; default `cfg.steps`)."""
    progress = step / max((total or cfg.steps) - 1, 1)
    p_pure = 0.0
    if cfg.curriculum == "ramp_to_pure":
        p_pure = min(max((progress - cfg.ramp_start) / (1 - cfg.ramp_start), 0.0), 1.0)
    out = []
    for g in global_ids:
        rng = random.Random(f"{seed}:{step}:{g}")
        out.append(1.0 if rng.random() < p_pure else rng.randint(1, 9) / 10)
    return torch.tensor(out)


def lr_lambda(cfg: TrainConfig, total: int | None = None):
    """The receiver's LR factor per step (`interlat.train.loop.linear_schedule`) over `total` steps."""
    return linear_schedule(cfg.warmup_ratio, total or cfg.steps)


def build_receiver(lm, tokenizer, sender_dim: int, cfg: TrainConfig) -> Receiver:
    ids = add_special_tokens(tokenizer, lm)
    d = lm.config.hidden_size
    torch.manual_seed(cfg.seed)
    adapter = LatentAdapter(d, sender_dim, num_heads=cfg.adapter_heads, dropout=cfg.adapter_dropout)
    if cfg.gradient_checkpointing:
        lm.gradient_checkpointing_enable()
        lm.config.use_cache = False
    return Receiver(lm, adapter, ids, cfg.prepended_length)


DEEPSPEED_TAG = ds.DEEPSPEED_TAG  # kept for readers of the state folder


class Trainer(TrainLoop):
    """setup / train / save_checkpoint / cleanup, in the manner of torchtune recipes.

    `inputs` (name -> file or folder: base model, conversations, latents) stamp the work folder
    together with the settings; see `interlat.workdir.open_state`.
    """

    def __init__(self, cfg: TrainConfig, receiver: Receiver, tokenizer, samples, work_dir: Path, inputs: dict | None = None):
        super().__init__(work_dir, inputs, int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)))
        self.check_cap(samples, cfg.prepended_length)
        self.cfg = cfg
        self.receiver = receiver
        self.tokenizer = tokenizer
        self.samples = samples
        self.engine = None
        self.ds_config = None
        self.batching = ds.Batching(cfg.batch_size, cfg.gradient_accumulation, self.world)
        self.total = cfg.steps

    # -- setup -------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.cfg
        if self.world > 1 and not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            dist.init_process_group(backend)
        self.device = torch.device(runtime.local_device())
        objective = ReceiverObjective(self.receiver, cfg.mode, cfg.margin, cfg.contrast).to(self.device)
        params = [p for p in objective.parameters() if p.requires_grad]
        if cfg.engine == "deepspeed":
            self.ds_config, self.batching = ds.resolve(
                cfg.deepspeed_config, batch_size=cfg.batch_size, accumulation=cfg.gradient_accumulation,
                world=self.world, max_grad_norm=cfg.max_grad_norm, lr=cfg.lr, weight_decay=cfg.weight_decay,
                device=self.device)
        self.total = self.batching.steps_for(cfg.epochs, len(self.samples)) if cfg.epochs else cfg.steps
        log.info("%d optimizer steps (%s epochs over %d samples; %d samples a step = %d x %d accumulation x %d ranks)",
                 self.total, cfg.epochs or "no", len(self.samples), self.batching.per_step,
                 self.batching.micro, self.batching.accumulation, self.world)
        if cfg.engine == "deepspeed":
            self.engine, self.opt, self.sched = ds.initialize(objective, self.ds_config, lr=cfg.lr,
                                                              weight_decay=cfg.weight_decay,
                                                              lr_factor=lr_lambda(cfg, self.total))
        else:
            self.engine = objective
            if cfg.engine == "ddp" and self.world > 1:
                self.engine = torch.nn.parallel.DistributedDataParallel(objective, find_unused_parameters=True)
            self.opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
            self.sched = self.scheduler(self.opt, cfg.warmup_ratio, self.total)
        self.resume()

    # -- data --------------------------------------------------------------
    def global_indices(self, step: int) -> list[int]:
        """Sample indices of the global batch of micro step `step` (optimizer step x
        accumulation + k): seeded permutation per epoch, the last incomplete global batch of an
        epoch dropped, so a batch never holds a sample twice."""
        G = self.batching.global_micro
        n = len(self.samples)
        if n < G:
            from interlat.errors import InterlatError

            raise InterlatError(f"train: {n} samples, fewer than the global batch {G} (batch_size x ranks)")
        per_epoch = n // G
        epoch, k = divmod(step, per_epoch)
        return list(epoch_order(self.cfg.seed, epoch, n)[k * G : (k + 1) * G])

    def make_batch(self, step: int, k: int = 0) -> tuple[dict, list[int]]:
        """This rank's part of micro step `k` of optimizer step `step` (and its negatives). The
        draws of micro step 0 are keyed as without accumulation; later ones by the micro step."""
        micro = step * self.batching.accumulation + k
        gidx = self.global_indices(micro)
        B = self.batching.micro
        mine = gidx[self.rank * B : (self.rank + 1) * B]
        batch = collate([self.samples[i] for i in mine], pad_id(self.tokenizer))
        if self.cfg.mode == "interlat":
            slots = list(range(self.rank * B, (self.rank + 1) * B))
            keys = [s + k * len(gidx) for s in slots]
            batch["r"] = mixing_ratios(self.cfg, step, keys, self.cfg.seed, self.total)
            if len(gidx) > 1:
                self.add_negatives(batch, gidx, slots, micro)
        return {k: v.to(self.device) for k, v in batch.items()}, mine

    def add_negatives(self, batch: dict, gidx: list[int], slots: list[int], step: int) -> None:
        """Pass R's messages: for each sample, another slot of the global batch (any rank)."""
        H, H_len = pad_messages([self.samples[i].H for i in gidx])  # the global batch's messages
        G = len(gidx)
        neg = []
        for s in slots:
            rng = random.Random(f"{self.cfg.seed}:neg:{step}:{s}")
            neg.append((s + rng.randint(1, G - 1)) % G)
        neg = torch.tensor(neg)
        batch["neg_H"], batch["neg_len"] = H[neg], H_len[neg]
        self.last_negatives = [self.samples[gidx[n]].task_id for n in neg.tolist()]
        g = torch.Generator().manual_seed(hash((self.cfg.seed, step, self.rank)) % (2**31))
        L = int(batch["H_len"].max().item())  # already capped (build_samples; see check_cap)
        batch["neg_noise"] = 0.01 * torch.randn(len(slots), max(L, 1), H.shape[-1], generator=g)

    # -- train -------------------------------------------------------------
    def train(self, log_path: Path) -> None:
        cfg = self.cfg
        rows = self.rows  # resumed rows, or none
        start = time.perf_counter()
        tokens = 0
        from interlat.progress import progress

        bar = progress(total=self.total, initial=self.step, desc=f"train {cfg.mode}", disable=self.rank != 0)
        self.engine.train()
        accum = self.batching.accumulation
        while self.step < self.total:
            if cfg.engine != "deepspeed":
                self.opt.zero_grad(set_to_none=True)
            parts = []
            for k in range(accum):
                self.last_negatives = []
                batch, mine = self.make_batch(self.step, k)
                self.trace(mine, k)
                out = self.micro_step(batch, last=k == accum - 1)
                tokens += int(batch["lengths"].sum()) * self.world
                parts.append({key: float(out[key].detach()) for key in LOG_FIELDS if key in out})
            if cfg.engine != "deepspeed":
                torch.nn.utils.clip_grad_norm_(self.engine.parameters(), cfg.max_grad_norm)
                self.opt.step()
                self.sched.step()
            row = {key: sum(p[key] for p in parts) / accum for key in parts[0]}
            row.update(step=self.step, lr=self.sched.get_last_lr()[0], tokens_per_s=tokens / (time.perf_counter() - start))
            rows.append(row)
            self.step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.3f}", ce=f"{row['ce']:.3f}")
            self.checkpoint_or_stop(cfg.checkpoint_every, self.total)
        bar.close()

    def micro_step(self, batch: dict, last: bool) -> dict:
        """Forward and backward of one micro step. DeepSpeed scales by its accumulation and steps
        the optimizer at the boundary itself; otherwise the loss is divided by the accumulation,
        under bf16 autocast on GPUs (`interlat.runtime.autocast`), DDP syncing on the last only."""
        if self.cfg.engine == "deepspeed":
            out = self.engine(batch)
            self.engine.backward(out["loss"])
            self.engine.step()
            return out
        ddp = isinstance(self.engine, torch.nn.parallel.DistributedDataParallel)
        with self.engine.no_sync() if ddp and not last else nullcontext():
            with runtime.autocast(self.device):
                out = self.engine(batch)
            (out["loss"] / self.batching.accumulation if self.batching.accumulation > 1 else out["loss"]).backward()
        return out

    def trace(self, mine: list[int], micro: int = 0) -> None:
        """Append this rank's task ids (and negatives' ids) for the micro step: which data each rank saw."""
        rec = {"step": self.step, "micro": micro, "rank": self.rank, "tasks": [self.samples[i].task_id for i in mine],
               "negatives": self.last_negatives}
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with open(self.work_dir / f"trace-rank{self.rank}.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")

    # -- checkpointing (TrainLoop hooks) -------------------------------------
    def settings(self) -> dict:
        """What the state depends on: the config, ranks, samples, steps and the resolved DeepSpeed JSON."""
        return {**asdict(self.cfg), "world": self.world, "n_samples": len(self.samples), "total_steps": self.total,
                "deepspeed": self.ds_config}

    def state_module(self) -> torch.nn.Module:
        return self.engine.module if hasattr(self.engine, "module") else self.engine

    def engine_state(self, folder: Path) -> None:
        if self.cfg.engine == "deepspeed":  # DeepSpeed's own (partitioned) checkpoint format
            ds.save_state(self.engine, folder, self.rank, self.step)
        else:
            super().engine_state(folder)

    def load_engine_state(self, folder: Path) -> None:
        if self.cfg.engine == "deepspeed":
            ds.load_state(self.engine, folder, self.rank)
        else:
            super().load_engine_state(folder)

    def save_checkpoint(self, out_dir: Path, log_csv: Path, extra: dict) -> None:
        """Final receiver (HF model + adapter + interlat.json) and the per-step CSV log."""
        with ds.gathered(self.engine if self.cfg.engine == "deepspeed" else None, self.receiver.parameters()):
            if self.rank == 0:
                self._write(out_dir, log_csv, extra)
        if self.world > 1:
            dist.barrier()

    def _write(self, out_dir: Path, log_csv: Path, extra: dict) -> None:
        from interlat.model.card import write_card

        last = self.rows[-1] if self.rows else {}
        with atomic_dir(out_dir) as tmp:
            self.receiver.save(tmp, self.tokenizer, {"train": asdict(self.cfg), **extra})
            write_card(tmp, "receiver", name=f"{Path(out_dir).name}-receiver", base=self.inputs.get("base"),
                       data={k: self.inputs.get(k) for k in ("conversations", "latents")}, settings=asdict(self.cfg),
                       metrics={"final_loss": last.get("loss"), "final_ce": last.get("ce"), "steps": self.step})
        write_log_csv(log_csv, LOG_FIELDS, self.rows)

    def cleanup(self, failed: bool = False) -> None:
        """Tear down in an order that cannot block: wrapped model, optimizer and scheduler first,
        the process group last. A DDP `Reducer` (or a DeepSpeed engine) still alive when the group
        is destroyed keeps the gloo group until interpreter exit, where `~ProcessGroupGloo` can wait
        forever joining its worker thread. A DeepSpeed engine is kept alive by the hooks it put on
        the receiver's modules and parameters until `destroy()` removes them, and it initialises
        a process group even for one process. After a failure (`failed`) there are no barriers:
        the other ranks may be gone, and waiting for them would hang instead of exiting."""
        distributed = dist.is_initialized()
        if distributed and not failed:
            dist.barrier()
        if self.cfg.engine == "deepspeed" and self.engine is not None:
            self.engine.destroy()
        self.engine = self.opt = self.sched = self.receiver = None
        gc.collect()
        if distributed:
            if not failed:
                dist.barrier()
            dist.destroy_process_group()


def check_deepspeed_config(cfg: TrainConfig) -> None:
    """Engine deepspeed needs a DeepSpeed JSON that exists, parses and resolves (else one line)."""
    ds.resolve(cfg.deepspeed_config, batch_size=cfg.batch_size, accumulation=cfg.gradient_accumulation,
               world=runtime.rank_and_world()[1], max_grad_norm=cfg.max_grad_norm, lr=cfg.lr,
               weight_decay=cfg.weight_decay, device=runtime.local_device())


def run_training(cfg: TrainConfig, *, base: Path, conversations: Path, latents, work_dir: Path, log_csv: Path, out: Path) -> None:
    """The train stage: base LM + messages + conversations -> a receiver checkpoint in `out`."""
    from interlat import shards
    from interlat.conversations import check_messages, read_conversations
    from interlat.errors import InterlatError
    from interlat.model.folders import load_lm
    from interlat.text.tokenizer import load_tokenizer
    from interlat.train.samples import build_samples

    if cfg.engine == "deepspeed":
        check_deepspeed_config(cfg)
    torch.manual_seed(cfg.seed)
    tok = load_tokenizer(base)
    lm = load_lm(base, torch.float32, "base model")
    messages, sender_dim = {}, lm.config.hidden_size
    if cfg.mode == "interlat":
        if not latents:
            raise InterlatError("--latents: required with --mode interlat")
        messages = shards.load_messages_of(latents)
        sender_dim = int(shards.read_manifest(latents[0])["hidden_size"])
    rows = read_conversations(conversations)
    if cfg.mode == "interlat":
        check_messages(rows, messages, conversations, latents)
    receiver = build_receiver(lm, tok, sender_dim, cfg)
    samples = build_samples(rows, messages, tok, cfg.mode, str(conversations), cfg.prepended_length)
    inputs = {"base": base, "conversations": conversations, "latents": list(latents or [])}
    trainer = Trainer(cfg, receiver, tok, samples, work_dir, inputs)
    del receiver, lm  # the trainer holds the only references, so cleanup() can free the engine
    try:
        with runtime.sigterm_stops():  # SIGTERM: save the state at the end of the step, exit 143
            trainer.setup()
            trainer.train(log_csv)
        log_csv.parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(out, log_csv, {"mode": cfg.mode, "base": str(base)})
    except BaseException:
        trainer.cleanup(failed=True)
        raise
    trainer.cleanup()
