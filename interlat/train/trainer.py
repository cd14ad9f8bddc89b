"""Receiver training: setup / train / save_checkpoint / cleanup (docs/method.md section 3).

One process (`engine="single"`), plain DDP, or DeepSpeed ZeRO-2/3, all launched by torchrun
with gloo on the CPU and NCCL on GPUs. Each rank takes its own slice of every global batch;
negatives for pass R are drawn from the whole global batch (all ranks), never the sample
itself. Training state (weights, optimizer, scheduler, step, RNG) is checkpointed every
`checkpoint_every` steps under a work folder outside Snakemake's outputs, so a killed run
resumes where it stopped; the final receiver is written to the output folder at the end.
"""

import csv
import gc
import json
import logging
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from interlat.model.adapter import LatentAdapter
from interlat.model.insertion import pad_messages
from interlat.model.receiver import Receiver, add_special_tokens
from interlat.train.objective import ReceiverObjective
from interlat.train.samples import collate

log = logging.getLogger(__name__)

LOG_FIELDS = ("step", "loss", "ce", "l_plan", "l_rand", "w_plan", "w_rand", "hinge_active", "r", "lr", "tokens_per_s")


@dataclass
class TrainConfig:
    """Receiver training settings (config section `train`)."""

    mode: str = "interlat"  # interlat | text | none
    steps: int = 1000
    batch_size: int = 16  # per rank
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
            "train.batch_size": self.batch_size > 0,
            "train.ramp_start": 0.0 <= self.ramp_start < 1.0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            from interlat.errors import InterlatError

            raise InterlatError(f"config: field \"{bad[0]}\": invalid value")


def mixing_ratios(cfg: TrainConfig, step: int, global_ids: list[int], seed: int) -> torch.Tensor:
    """r per sample for this step: uniform over {0.1..0.9}, or pure latents (r=1) with a
    probability that ramps linearly from 0 at `ramp_start` of training to 1 at the last step."""
    progress = step / max(cfg.steps - 1, 1)
    p_pure = 0.0
    if cfg.curriculum == "ramp_to_pure":
        p_pure = min(max((progress - cfg.ramp_start) / (1 - cfg.ramp_start), 0.0), 1.0)
    out = []
    for g in global_ids:
        rng = random.Random(f"{seed}:{step}:{g}")
        out.append(1.0 if rng.random() < p_pure else rng.randint(1, 9) / 10)
    return torch.tensor(out)


def lr_lambda(cfg: TrainConfig):
    warm = max(int(cfg.warmup_ratio * cfg.steps), 1)

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (cfg.steps - step) / max(cfg.steps - warm, 1))

    return f


def build_receiver(lm, tokenizer, sender_dim: int, cfg: TrainConfig) -> Receiver:
    ids = add_special_tokens(tokenizer, lm)
    d = lm.config.hidden_size
    torch.manual_seed(cfg.seed)
    adapter = LatentAdapter(d, sender_dim, num_heads=cfg.adapter_heads, dropout=cfg.adapter_dropout)
    if cfg.gradient_checkpointing:
        lm.gradient_checkpointing_enable()
        lm.config.use_cache = False
    return Receiver(lm, adapter, ids, cfg.prepended_length)


class Trainer:
    """setup / train / save_checkpoint / cleanup, in the manner of torchtune recipes."""

    def __init__(self, cfg: TrainConfig, receiver: Receiver, tokenizer, samples, work_dir: Path):
        self.cfg = cfg
        self.receiver = receiver
        self.tokenizer = tokenizer
        self.samples = samples
        self.work_dir = Path(work_dir)
        self.rank = int(os.environ.get("RANK", 0))
        self.world = int(os.environ.get("WORLD_SIZE", 1))
        self.step = 0
        self.engine = None

    # -- setup -------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.cfg
        if self.world > 1 and not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            dist.init_process_group(backend)
        self.device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
        objective = ReceiverObjective(self.receiver, cfg.mode, cfg.margin, cfg.contrast).to(self.device)
        params = [p for p in objective.parameters() if p.requires_grad]
        if cfg.engine == "deepspeed":
            import deepspeed

            ds_cfg = json.loads(Path(cfg.deepspeed_config).read_text())
            ds_cfg.update(
                train_micro_batch_size_per_gpu=cfg.batch_size,
                gradient_accumulation_steps=1,
                gradient_clipping=cfg.max_grad_norm,
            )
            ds_cfg.pop("train_batch_size", None)
            ds_cfg["bf16"] = {"enabled": torch.cuda.is_available()}
            opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
            self.engine, self.opt, _, self.sched = deepspeed.initialize(
                model=objective, optimizer=opt, lr_scheduler=sched, config=ds_cfg
            )
        else:
            self.engine = objective
            if cfg.engine == "ddp" and self.world > 1:
                self.engine = torch.nn.parallel.DistributedDataParallel(objective, find_unused_parameters=True)
            self.opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
            self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_lambda(cfg))
        self.resume()

    # -- data --------------------------------------------------------------
    def global_indices(self, step: int) -> list[int]:
        """Sample indices of the global batch at `step`: seeded permutation per epoch, the last
        incomplete global batch of an epoch dropped, so a batch never holds a sample twice."""
        G = self.cfg.batch_size * self.world
        n = len(self.samples)
        if n < G:
            from interlat.errors import InterlatError

            raise InterlatError(f"train: {n} samples, fewer than the global batch {G} (batch_size x ranks)")
        per_epoch = n // G
        epoch, k = divmod(step, per_epoch)
        perm = list(range(n))
        random.Random(f"{self.cfg.seed}:epoch:{epoch}").shuffle(perm)
        return perm[k * G : (k + 1) * G]

    def make_batch(self, step: int) -> tuple[dict, list[int]]:
        gidx = self.global_indices(step)
        B = self.cfg.batch_size
        mine = gidx[self.rank * B : (self.rank + 1) * B]
        batch = collate([self.samples[i] for i in mine], self.tokenizer.pad_token_id)
        if self.cfg.mode == "interlat":
            slots = list(range(self.rank * B, (self.rank + 1) * B))
            batch["r"] = mixing_ratios(self.cfg, step, slots, self.cfg.seed)
            if len(gidx) > 1:
                self.add_negatives(batch, gidx, slots, step)
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
        L = int(batch["H_len"].max().clamp(max=self.cfg.prepended_length).item())
        batch["neg_noise"] = 0.01 * torch.randn(len(slots), max(L, 1), H.shape[-1], generator=g)

    # -- train -------------------------------------------------------------
    def train(self, log_path: Path) -> None:
        cfg = self.cfg
        rows = self.read_log(log_path)
        start = time.perf_counter()
        tokens = 0
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=self.step, desc=f"train {cfg.mode}", disable=self.rank != 0, mininterval=2.0)
        self.engine.train()
        while self.step < cfg.steps:
            self.last_negatives = []
            batch, mine = self.make_batch(self.step)
            self.trace(mine)
            out = self.engine(batch)
            if cfg.engine == "deepspeed":
                self.engine.backward(out["loss"])
                self.engine.step()
            else:
                self.opt.zero_grad(set_to_none=True)
                out["loss"].backward()
                torch.nn.utils.clip_grad_norm_(self.engine.parameters(), cfg.max_grad_norm)
                self.opt.step()
                self.sched.step()
            tokens += int(batch["lengths"].sum()) * self.world
            row = {k: float(out[k].detach()) for k in LOG_FIELDS if k in out}
            row.update(step=self.step, lr=self.sched.get_last_lr()[0], tokens_per_s=tokens / (time.perf_counter() - start))
            rows.append(row)
            self.step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.3f}", ce=f"{row['ce']:.3f}")
            if self.step % cfg.checkpoint_every == 0 and self.step < cfg.steps:
                self.save_state(rows)
        bar.close()
        self.rows = rows

    def trace(self, mine: list[int]) -> None:
        """Append this rank's task ids (and negatives' ids) for the step: which data each rank saw."""
        rec = {"step": self.step, "rank": self.rank, "tasks": [self.samples[i].task_id for i in mine],
               "negatives": self.last_negatives}
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with open(self.work_dir / f"trace-rank{self.rank}.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")

    def read_log(self, log_path: Path) -> list[dict]:
        path = self.work_dir / "log.json"
        return json.loads(path.read_text()) if path.exists() and self.step > 0 else []

    # -- checkpointing -----------------------------------------------------
    def save_state(self, rows: list[dict]) -> None:
        """Resumable state under work_dir/state (atomic: written to a temp folder, then renamed)."""
        final = self.work_dir / "state"
        tmp = self.work_dir / f".state.tmp.{self.step}"
        if self.cfg.engine == "deepspeed":
            self.engine.save_checkpoint(str(tmp), tag="latest", client_state={"step": self.step})
        elif self.rank == 0:
            tmp.mkdir(parents=True, exist_ok=True)
            module = self.engine.module if hasattr(self.engine, "module") else self.engine
            torch.save(
                {
                    "model": module.state_dict(),
                    "opt": self.opt.state_dict(),
                    "sched": self.sched.state_dict(),
                    "step": self.step,
                    "torch_rng": torch.get_rng_state(),
                },
                tmp / "state.pt",
            )
        if self.world > 1:
            dist.barrier()
        if self.rank == 0:
            (tmp / "log.json").write_text(json.dumps(rows))
            (tmp / "step").write_text(str(self.step))
            old = self.work_dir / ".state.old"
            if final.exists():
                os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
            shutil.copy(final / "log.json", self.work_dir / "log.json")
        if self.world > 1:
            dist.barrier()

    def resume(self) -> None:
        state = self.work_dir / "state"
        if not (state / "step").exists():
            return
        if self.cfg.engine == "deepspeed":
            _, client = self.engine.load_checkpoint(str(state), tag="latest")
            self.step = int(client["step"])
        else:
            ck = torch.load(state / "state.pt", weights_only=False)
            module = self.engine.module if hasattr(self.engine, "module") else self.engine
            module.load_state_dict(ck["model"])
            self.opt.load_state_dict(ck["opt"])
            self.sched.load_state_dict(ck["sched"])
            self.step = ck["step"]
            torch.set_rng_state(ck["torch_rng"])
        log.info("resumed from step %d (%s)", self.step, state)

    def save_checkpoint(self, out_dir: Path, log_csv: Path, extra: dict) -> None:
        """Final receiver (HF model + adapter + interlat.json) and the per-step CSV log."""
        if self.cfg.engine == "deepspeed" and self.engine.zero_optimization_stage() == 3:
            import deepspeed

            with deepspeed.zero.GatheredParameters(list(self.receiver.parameters()), modifier_rank=None):
                if self.rank == 0:
                    self._write(out_dir, log_csv, extra)
        elif self.rank == 0:
            self._write(out_dir, log_csv, extra)
        if self.world > 1:
            dist.barrier()

    def _write(self, out_dir: Path, log_csv: Path, extra: dict) -> None:
        tmp = out_dir.with_name(f".{out_dir.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        self.receiver.save(tmp, self.tokenizer, {"train": asdict(self.cfg), **extra})
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
        tmp_csv = log_csv.with_name(f".{log_csv.name}.tmp")
        with open(tmp_csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=LOG_FIELDS, extrasaction="ignore")
            w.writeheader()
            for row in self.rows:
                w.writerow({k: (f"{row[k]:.6g}" if k in row and not math.isnan(row[k]) else "") for k in LOG_FIELDS})
        os.replace(tmp_csv, log_csv)

    def cleanup(self) -> None:
        """Tear down in an order that cannot block: wrapped model, optimizer and scheduler first,
        the process group last. A DDP `Reducer` (or a DeepSpeed engine) still alive when the group
        is destroyed keeps the gloo group until interpreter exit, where `~ProcessGroupGloo` can wait
        forever joining its worker thread."""
        distributed = self.world > 1 and dist.is_initialized()
        if distributed:
            dist.barrier()
        self.engine = self.opt = self.sched = None
        gc.collect()
        if distributed:
            dist.barrier()
            dist.destroy_process_group()
