"""Student training: setup / train / save_checkpoint / cleanup (docs/method.md section 4).

AdamW on the student (LM + bridge + lat_bos [+ projection]) with linear warm-up and linear
decay; the teacher stays frozen in eval mode (`CompressionLoss`), in the forward dtype of
`interlat.runtime` (bf16 on GPUs, fp32 on CPUs), a full copy on every rank. The student keeps
fp32 master weights: one process under bf16 autocast on GPUs (`engine="single"`), or DeepSpeed
ZeRO-2/3 (`engine="deepspeed"`, the receivers' JSON handling, `interlat.train.engine`) over the
ranks torchrun starts, each rank taking its own slice of every micro step's global batch.
Training runs `epochs` passes over the training part (the samples as one continuous stream),
an optimizer step being `gradient_accumulation` micro steps. A held-out part
of the tasks (`eval_fraction`, 5% in the paper) is scored every `eval_every` steps; the best
student so far is written to `work_dir/best` and training stops early after `patience`
evaluations without improvement. Training state (weights, optimizer, scheduler, step, RNG,
early-stopping counters, log rows) is saved under `work_dir/state` every `checkpoint_every`
steps, so a killed run resumes where it stopped; state made with other settings or inputs is
discarded, never reused (`interlat.train.loop.TrainLoop`, shared with the receiver's trainer).
The best student is copied to the output folder at the end, with `log.csv`, and the work
folder is removed.
"""

import gc
import json
import logging
import math
import shutil
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from interlat import runtime
from interlat.atomic import atomic_dir
from interlat.compress.checkpoint import save_student
from interlat.compress.data import make_batch
from interlat.compress.objective import CompressionLoss
from interlat.compress.reference import ReferenceCache
from interlat.errors import InterlatError
from interlat.model.card import write_card
from interlat.train import engine as ds
from interlat.train.loop import TrainLoop, epoch_order, linear_schedule, write_log_csv
from interlat.workdir import finish

log = logging.getLogger(__name__)

LOG_FIELDS = ("step", "loss", "ce", "l_kl", "l_align", "lr", "eval_loss", "eval_answers")


@dataclass
class CompressConfig:
    """Student training settings (config section `compress`; K comes from the `K` wildcard)."""

    K: int = 8  #: latent steps the student emits
    epochs: float = 12.0  #: passes over the training part (paper 3)
    max_steps: int = 0  #: cap on optimizer steps (0: epochs decide)
    batch_size: int = 16  #: tasks per rank per micro step (paper 2)
    gradient_accumulation: int = 1  #: micro steps per optimizer step
    lr: float = 0.0005  #: peak learning rate (paper 5e-5)
    warmup_ratio: float = 0.03  #: linear warm-up fraction, then linear decay
    weight_decay: float = 0.0  #: AdamW weight decay
    max_grad_norm: float = 1.0  #: gradient clipping norm
    eval_fraction: float = 0.05  #: held-out share of tasks for early stopping (paper 5%)
    eval_every: int = 20  #: steps between evaluations
    patience: int = 30  #: evaluations without improvement before stopping (paper 5)
    select: str = "loss"  #: what early stopping keeps: lowest held-out loss, or most held-out answers right
    kl_weight: float = 0.1  #: weight of L_kl
    align_weight: float = 0.1  #: weight of L_align
    temperature: float = 4.0  #: distillation temperature T of L_kl
    gradient_checkpointing: bool = False  #: checkpoint the student LM's layers
    cache_reference: bool = True  #: compute paths D and B once per task (memory: interlat.compress.reference)
    checkpoint_every: int = 50  #: steps between resumable checkpoints
    seed: int = 0  #: seed of initialisation, data order and the eval split
    engine: str = "single"  #: single (one process) | deepspeed (ZeRO-2/3, any number of ranks)
    deepspeed_config: str | None = "config/deepspeed/zero2.json"  #: DeepSpeed JSON (engine deepspeed)

    def __post_init__(self):
        checks = {
            "compress.K": self.K >= 1,
            "compress.epochs": self.epochs > 0,
            "compress.max_steps": self.max_steps >= 0,
            "compress.batch_size": self.batch_size >= 1,
            "compress.gradient_accumulation": self.gradient_accumulation >= 1,
            "compress.engine": self.engine in ("single", "deepspeed"),
            "compress.lr": self.lr > 0,
            "compress.warmup_ratio": 0 <= self.warmup_ratio <= 1,
            "compress.eval_fraction": 0 <= self.eval_fraction < 1,
            "compress.eval_every": self.eval_every >= 1,
            "compress.patience": self.patience >= 1,
            "compress.select": self.select in ("loss", "answers"),
            "compress.temperature": self.temperature > 0,
            "compress.checkpoint_every": self.checkpoint_every >= 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise InterlatError(f"config: field \"{bad[0]}\": invalid value {getattr(self, bad[0].split('.')[1])!r}")

    def total_steps(self, n_train: int, batching: ds.Batching | None = None) -> int:
        """Optimizer steps of `epochs` passes over `n_train` tasks (capped at `max_steps`)."""
        batching = batching or ds.Batching(self.batch_size, self.gradient_accumulation, 1)
        steps = batching.steps_for(self.epochs, n_train, "compress", whole_steps=False)
        return min(steps, self.max_steps) if self.max_steps else steps


class CompressTrainer(TrainLoop):
    """setup / train / save_checkpoint / cleanup, as `interlat.train.trainer.Trainer`.

    `inputs` (name -> file or folder: teacher, student, conversations, latents) stamp the work
    folder together with the settings; see `interlat.workdir.open_state`.
    """

    def __init__(self, cfg: CompressConfig, student, teacher, tokenizer, train_samples, eval_samples, work_dir,
                 inputs: dict | None = None):
        if not train_samples:
            raise InterlatError("compress: no training samples")
        super().__init__(work_dir, inputs, *runtime.rank_and_world())
        if self.world > 1 and cfg.engine != "deepspeed":
            raise InterlatError(f"compress: {self.world} ranks need --engine deepspeed (engine single is one process)")
        self.check_cap([*train_samples, *eval_samples], teacher.prepended_length)
        self.cfg = cfg
        self.student = student
        self.teacher = teacher
        self.tokenizer = tokenizer
        self.train_samples = train_samples
        self.eval_samples = eval_samples
        self.batching = ds.Batching(cfg.batch_size, cfg.gradient_accumulation, self.world)
        self.total = cfg.total_steps(len(train_samples), self.batching)
        self.engine, self.ds_config = None, None
        self.vocab = student.lm.get_input_embeddings().weight.shape[0]
        self.best_step, self.bad_evals = -1, 0
        self.best_eval = [math.inf, -math.inf]  # held-out (loss, answers right) of the best student so far

    # -- setup -------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.cfg
        self.device = self.student.device
        if cfg.gradient_checkpointing:
            self.student.enable_gradient_checkpointing()
        model = self.student
        if cfg.engine == "deepspeed":
            self.ds_config, self.batching = ds.resolve(
                cfg.deepspeed_config, batch_size=cfg.batch_size, accumulation=cfg.gradient_accumulation,
                world=self.world, max_grad_norm=cfg.max_grad_norm, lr=cfg.lr, weight_decay=cfg.weight_decay,
                device=self.device)
            self.total = cfg.total_steps(len(self.train_samples), self.batching)
            self.engine, self.opt, self.sched = ds.initialize(self.student, self.ds_config, lr=cfg.lr,
                                                              weight_decay=cfg.weight_decay,
                                                              lr_factor=linear_schedule(cfg.warmup_ratio, self.total))
            model = self.engine
        else:
            params = [p for p in self.student.parameters() if p.requires_grad]
            self.opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
            self.sched = self.scheduler(self.opt, cfg.warmup_ratio, self.total)
        cache = ReferenceCache() if cfg.cache_reference else None
        self.loss_fn = CompressionLoss(model, self.teacher, cfg.K, cfg.kl_weight, cfg.align_weight, cfg.temperature,
                                       cache=cache)
        if cache is not None:
            with runtime.autocast(self.device) if self.engine is None else nullcontext():
                cache.fill(self.loss_fn, [*self.train_samples, *self.eval_samples], self.tokenizer, self.vocab,
                           self.device, cfg.batch_size)
        log.info("%d optimizer steps (%s epochs over %d tasks; %d tasks a step = %d x %d accumulation x %d ranks)",
                 self.total, cfg.epochs, len(self.train_samples), self.batching.per_step, self.batching.micro,
                 self.batching.accumulation, self.world)
        self.resume()

    def picks(self, step: int, micro: int = 0) -> list:
        """This rank's tasks of micro step `micro` of optimizer step `step`: positions
        [u x G + rank x B, + B) of one continuous stream (u the micro step's index, G the global
        micro batch), the stream being epoch-wise seeded permutations of the training tasks."""
        n, B, G = len(self.train_samples), self.batching.micro, self.batching.global_micro
        start = (step * self.batching.accumulation + micro) * G + self.rank * B
        picked = []
        for k in range(start, start + B):
            epoch, pos = divmod(k, n)
            picked.append(self.train_samples[epoch_order(self.cfg.seed, epoch, n)[pos]])
        return picked

    def batch(self, step: int, micro: int = 0) -> tuple[dict, list[str]]:
        """The batch of `picks(step, micro)` and its task ids."""
        picked = self.picks(step, micro)
        return make_batch(picked, self.tokenizer, self.vocab, self.device), [s.task_id for s in picked]

    # -- train -------------------------------------------------------------
    def train(self) -> None:
        cfg = self.cfg
        accum = self.batching.accumulation
        while self.step < self.total and self.bad_evals < cfg.patience:
            self.student.train()
            if self.engine is None:
                self.opt.zero_grad(set_to_none=True)
            parts = [self.micro_step(*self.batch(self.step, k)) for k in range(accum)]
            if self.engine is None:
                torch.nn.utils.clip_grad_norm_(self.student.parameters(), cfg.max_grad_norm)
                self.opt.step()
                self.sched.step()
            row = {k: sum(p[k] for p in parts) / accum for k in ("loss", "ce", "l_kl", "l_align")}
            row.update(step=self.step, lr=self.sched.get_last_lr()[0], eval_loss=math.nan, eval_answers=math.nan)
            self.step += 1
            if self.step % cfg.eval_every == 0 or self.step == self.total:
                row["eval_loss"], row["eval_answers"] = self.score()
            self.rows.append(row)
            if self.step % 10 == 0 or self.step == self.total:
                log.info("step %d/%d loss %.4f ce %.4f eval %.4f", self.step, self.total, row["loss"], row["ce"], row["eval_loss"])
            self.checkpoint_or_stop(cfg.checkpoint_every, self.total)
        if self.bad_evals >= cfg.patience:
            log.info("early stop at step %d (best %.4f at step %d)", self.step, self.best_eval[0], self.best_step)

    def micro_step(self, batch: dict, task_ids: list[str] | None = None) -> dict:
        """Forward and backward of one micro step (see `interlat.train.trainer.Trainer.micro_step`)."""
        if self.engine is not None:
            out = self.loss_fn(batch, task_ids=task_ids)
            self.engine.backward(out["loss"])
            self.engine.step()
        else:
            with runtime.autocast(self.device):
                out = self.loss_fn(batch, task_ids=task_ids)
            accum = self.batching.accumulation
            (out["loss"] / accum if accum > 1 else out["loss"]).backward()
        return {k: float(out[k].detach()) for k in ("loss", "ce", "l_kl", "l_align")}

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """(mean total loss, share of tasks answered right greedily) over the held-out tasks, student
        in eval mode. Every rank scores all of them (ZeRO-3 gathers parameters collectively); rank
        0's values are the ones all ranks use."""
        self.student.eval()
        total, right, n = 0.0, 0, 0
        for i in range(0, len(self.eval_samples), self.cfg.batch_size):
            part = self.eval_samples[i : i + self.cfg.batch_size]
            batch = make_batch(part, self.tokenizer, self.vocab, self.device)
            with runtime.autocast(self.device) if self.engine is None else nullcontext():
                out = self.loss_fn(batch, answers=self.cfg.select == "answers", task_ids=[s.task_id for s in part])
            total += float(out["loss"]) * len(part)
            right += int(out["right"].sum()) if "right" in out else 0
            n += len(part)
        value = torch.tensor([total / n, right / n], dtype=torch.float64, device=self.device)
        if self.world > 1:
            dist.broadcast(value, 0)
        return float(value[0]), float(value[1]) if self.cfg.select == "answers" else math.nan

    def rank_key(self, loss: float, answers: float) -> tuple:
        """What early stopping minimises: the held-out loss (select "loss"), or the most held-out
        answers right with the loss breaking ties (select "answers")."""
        return (loss,) if self.cfg.select == "loss" else (-answers, loss)

    def score(self) -> tuple[float, float]:
        """Evaluate; keep the best student under work_dir/best; count evaluations without gain."""
        if not self.eval_samples:  # no held-out part: the latest is best
            loss, answers, better = math.nan, math.nan, True
        else:
            loss, answers = self.evaluate()
            better = self.rank_key(loss, answers) < self.rank_key(*self.best_eval)
        if better:
            self.best_step, self.bad_evals = self.step, 0
            self.best_eval = [loss, answers]
            with ds.gathered(self.engine, self.student.parameters()):
                if self.rank == 0:
                    with atomic_dir(self.work_dir / "best") as tmp:
                        save_student(self.student, self.tokenizer, tmp, self.cfg.K)
            self._barrier()
        else:
            self.bad_evals += 1
        return loss, answers

    # -- checkpointing (TrainLoop hooks) -------------------------------------
    def settings(self) -> dict:
        """What the state depends on: the config, tasks, ranks, steps and the resolved DeepSpeed JSON."""
        return {**asdict(self.cfg), "n_train": len(self.train_samples), "n_eval": len(self.eval_samples),
                "world": self.world, "total_steps": self.total, "deepspeed": self.ds_config}

    def state_module(self) -> torch.nn.Module:
        return self.student

    def loop_state(self) -> dict:
        return {"early_stopping": [self.best_step, self.bad_evals, *self.best_eval]}

    def load_loop_state(self, state: dict) -> None:
        self.best_step, self.bad_evals, *self.best_eval = state["early_stopping"]

    def engine_state(self, folder: Path) -> None:
        if self.engine is not None:
            ds.save_state(self.engine, folder, self.rank, self.step)
        else:
            super().engine_state(folder)

    def load_engine_state(self, folder: Path) -> None:
        if self.engine is not None:
            ds.load_state(self.engine, folder, self.rank)
        else:
            super().load_engine_state(folder)

    def save_checkpoint(self, out_dir: Path, extra: dict) -> None:
        """The best student (HF LM + student.safetensors + student.json) and log.csv into out_dir."""
        if self.rank != 0:
            return
        best = self.work_dir / "best"
        with atomic_dir(out_dir) as tmp:
            shutil.copytree(best, tmp, dirs_exist_ok=True)
            cfg = json.loads((tmp / "student.json").read_text())
            cfg.update(compress=asdict(self.cfg), best_step=self.best_step, steps_run=self.step, **extra)
            (tmp / "student.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
            write_log_csv(tmp / "log.csv", LOG_FIELDS, self.rows)
            write_card(tmp, "student", name=f"{Path(out_dir).name}-student", base=self.inputs.get("student"),
                       data={k: self.inputs.get(k) for k in ("teacher", "conversations", "latents")},
                       settings=asdict(self.cfg),
                       metrics={"best_heldout_loss": self.best_eval[0] if math.isfinite(self.best_eval[0]) else None,
                                "best_heldout_answers": self.best_eval[1] if math.isfinite(self.best_eval[1]) else None,
                                "best_step": self.best_step, "steps": self.step})

    def cleanup(self, failed: bool = False) -> None:
        """Drop the resumable state once the output is in place (not after a failure); free the
        DeepSpeed engine before the process group (see `interlat.train.trainer.Trainer.cleanup`;
        no barrier after a failure)."""
        distributed = dist.is_initialized()
        if distributed and not failed:
            dist.barrier()
        if not failed and self.rank == 0:
            finish(self.work_dir)
        if self.engine is not None:
            self.engine.destroy()
        self.engine = self.opt = self.sched = self.loss_fn = self.student = None
        gc.collect()
        if distributed:
            if not failed:
                dist.barrier()
            dist.destroy_process_group()


def check_shared_tokenizer(student_dir: Path, tokenizer) -> None:
    """The student's own tokenizer (if its folder has one) must agree with the teacher's on every id."""
    from interlat.text.tokenizer import load_tokenizer

    if not (Path(student_dir) / "tokenizer_config.json").is_file():
        return
    own = load_tokenizer(student_dir).get_vocab()
    teacher = tokenizer.get_vocab()
    differ = sorted(t for t, i in own.items() if teacher.get(t) != i)
    if differ:
        raise InterlatError(
            f"{student_dir}: field \"tokenizer\": {len(differ)} tokens differ from the teacher's (e.g. {differ[0]!r}); "
            "the student must share the teacher's tokenizer"
        )


def run_compression(cfg: CompressConfig, *, teacher_dir, student_dir, conversations, latents, work_dir, out) -> dict:
    """Load the teacher, data and student; train; write the best student to `out`. Returns a summary."""
    from interlat import load_receiver, shards
    from interlat.compress.data import split
    from interlat.compress.student import Student
    from interlat.conversations import check_messages, read_conversations
    from interlat.model.folders import load_lm
    from interlat.train.samples import build_samples

    device = runtime.local_device()
    if cfg.engine == "deepspeed":
        ds.read_json(cfg.deepspeed_config)  # a missing or broken JSON fails before any model loads
    teacher, tok = load_receiver(teacher_dir, device=device)  # frozen: bf16 on GPUs, fp32 on CPUs
    check_shared_tokenizer(student_dir, tok)
    dim = teacher.adapter.sender_dim
    messages = shards.load_messages_of(latents, hidden_size=dim, reader="the teacher's adapter")
    conversations = [conversations] if isinstance(conversations, (str, Path)) else list(conversations)
    samples, seen = [], {}
    for path in conversations:
        rows = read_conversations(path)
        check_messages(rows, messages, path, latents)
        for i, row in enumerate(rows, 1):
            if row["id"] in seen:
                raise InterlatError(f'{path}: row {i}: id "{row["id"]}": already in {seen[row["id"]]}')
            seen[row["id"]] = path
        samples += build_samples(rows, messages, tok, "interlat", str(path), teacher.prepended_length)
    train, held = split(samples, cfg.eval_fraction, cfg.seed)
    torch.manual_seed(cfg.seed)
    lm = load_lm(student_dir, torch.float32, "student model")  # trained: fp32 master weights
    student = Student(lm, out_dim=dim).to(device)
    log.info("student %s: %d parameters; %d training / %d held-out tasks; K=%d",
             student_dir, sum(p.numel() for p in student.parameters()), len(train), len(held), cfg.K)
    inputs = {"teacher": teacher_dir, "student": student_dir, "conversations": conversations, "latents": list(latents)}
    trainer = CompressTrainer(cfg, student, teacher, tok, train, held, work_dir, inputs)
    del student, lm  # the trainer holds the only references, so cleanup() can free the engine
    try:
        with runtime.sigterm_stops():  # SIGTERM: save the state at the end of the step, exit 143
            trainer.setup()
            trainer.train()
        trainer.save_checkpoint(Path(out), {"teacher": str(teacher_dir), "student_init": str(student_dir)})
    except BaseException:
        trainer.cleanup(failed=True)
        raise
    summary = {"steps": trainer.step, "best_step": trainer.best_step, "best_eval_loss": trainer.best_eval[0],
               "best_eval_answers": trainer.best_eval[1]}
    trainer.cleanup()
    return summary
