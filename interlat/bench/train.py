"""P3: the receiver's training step, batched vs per-sample loops vs plain CE (docs/method.md section 3).

Three ways to take one optimizer step on the same random-init receiver and the same batch:

- (a) interlat: `ReceiverObjective` on the whole batch (passes P, R and N batched, one backward);
- (b) the reference's structure: the same objective computed one sample at a time (each sample's
  three passes and backward, gradients accumulated, its negative another sample of the batch);
- (c) the limit: a plain CE fine-tuning step of the same LM on the same token batch.

Samples are synthetic (random tokens around a marker, random messages), so the benchmark
needs no pipeline outputs. Each method runs in its own spawned process; peak memory is that
process's resident-set high-water mark growth over its steps (the model is built before).
"""

import resource
import statistics
import time

import torch

from interlat.model.adapter import LatentAdapter
from interlat.model.build import build_model
from interlat.model.insertion import pad_messages
from interlat.model.receiver import Receiver
from interlat.text.batching import pad_right
from interlat.text.chat import IGNORE
from interlat.text.prompts import BOP, EOP, MARKER
from interlat.train.objective import ReceiverObjective

SHAPES = {
    "default": dict(hidden_size=128, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=256, vocab=128),
    "small": dict(hidden_size=256, num_layers=4, num_heads=8, num_kv_heads=2, intermediate_size=768, vocab=1024),
}


def make_receiver(shape: str | dict, seed: int, max_positions: int = 2048) -> Receiver:
    """A random-init Qwen2 receiver of a named shape (`SHAPES`) or of the given sizes."""
    s = SHAPES[shape] if isinstance(shape, str) else shape
    lm = build_model("qwen2", vocab_size=s["vocab"], pad_token_id=0, eos_token_id=4,
                     hidden_size=s["hidden_size"], num_layers=s["num_layers"], num_heads=s["num_heads"],
                     num_kv_heads=s["num_kv_heads"], intermediate_size=s["intermediate_size"],
                     max_positions=max_positions, seed=seed)
    adapter = LatentAdapter(s["hidden_size"], s["hidden_size"])
    return Receiver(lm, adapter, {BOP: 1, EOP: 2, MARKER: 3}, prepended_length=800)


def make_samples(n: int, vocab: int, d: int, seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        prompt = int(torch.randint(20, 40, (1,), generator=g))
        answer = int(torch.randint(4, 12, (1,), generator=g))
        ids = torch.randint(10, vocab, (prompt + answer,), generator=g)
        ids[prompt - 6] = 3  # the marker
        labels = torch.full_like(ids, IGNORE)
        labels[prompt:] = ids[prompt:]
        n_msg = int(torch.randint(16, 48, (1,), generator=g))
        out.append({
            "ids": ids.tolist(), "labels": labels.tolist(), "marker": prompt - 6,
            "plan": torch.randint(10, vocab, (n_msg,), generator=g).tolist(),
            "H": torch.randn(n_msg, d, generator=g),
        })
    return out


def collate(samples: list[dict], negatives: list[dict], r: float) -> dict:
    ids, lengths = pad_right([s["ids"] for s in samples], 0)
    labels, _ = pad_right([s["labels"] for s in samples], IGNORE)
    plan, plan_len = pad_right([s["plan"] for s in samples], 0)
    H, H_len = pad_messages([s["H"] for s in samples])
    nH, n_len = pad_messages([s["H"] for s in negatives])
    B = len(samples)
    return {
        "input_ids": ids, "labels": labels, "lengths": lengths,
        "attention_mask": (torch.arange(ids.shape[1])[None] < lengths[:, None]).long(),
        "marker_pos": torch.tensor([s["marker"] for s in samples]),
        "plan_ids": plan, "plan_len": plan_len, "H": H, "H_len": H_len,
        "r": torch.full((B,), r), "neg_H": nH, "neg_len": n_len,
        "neg_noise": 0.01 * torch.randn(B, max(int(H_len.max()), 1), H.shape[-1]),
    }


def step_batched(obj, opt, samples):
    batch = collate(samples, samples[1:] + samples[:1], 0.5)
    opt.zero_grad(set_to_none=True)
    obj(batch)["loss"].backward()
    opt.step()


def step_per_sample(obj, opt, samples):
    opt.zero_grad(set_to_none=True)
    for i, s in enumerate(samples):
        batch = collate([s], [samples[(i + 1) % len(samples)]], 0.5)
        (obj(batch)["loss"] / len(samples)).backward()
    opt.step()


def step_ce(obj, opt, samples):
    ids, lengths = pad_right([s["ids"] for s in samples], 0)
    labels, _ = pad_right([s["labels"] for s in samples], IGNORE)
    mask = (torch.arange(ids.shape[1])[None] < lengths[:, None]).long()
    opt.zero_grad(set_to_none=True)
    obj.receiver.lm(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
    opt.step()


METHODS = {
    "(a) interlat: three passes, batched": step_batched,
    "(b) reference: three passes per sample": step_per_sample,
    "(c) limit: plain CE step, batched": step_ce,
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_method(name: str, shape: str, batch_size: int, steps: int, warmup: int, seed: int, threads: int) -> dict:
    """One method in a fresh process: same seeded model and batches; step times and peak RSS."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rec = make_receiver(shape, seed)
    obj = ReceiverObjective(rec).train()
    opt = torch.optim.AdamW(obj.parameters(), lr=1e-4)
    samples = make_samples(batch_size * (steps + warmup), SHAPES[shape]["vocab"], SHAPES[shape]["hidden_size"], seed)
    before = peak_rss_mb()
    times = []
    for k in range(steps + warmup):
        chunk = samples[k * batch_size : (k + 1) * batch_size]
        t0 = time.perf_counter()
        METHODS[name](obj, opt, chunk)
        if k >= warmup:
            times.append(time.perf_counter() - t0)
    return {"seconds": statistics.median(times), "peak_growth_mb": max(peak_rss_mb() - before, 0.0)}


def bench_train(shape: str = "default", batch_size: int = 16, steps: int = 10, warmup: int = 2, seed: int = 0) -> list[dict]:
    """Time each method's optimizer step (each in its own spawned process); one row each."""
    import multiprocessing as mp

    rows = []
    ctx = mp.get_context("spawn")
    for name in METHODS:
        with ctx.Pool(1) as pool:
            res = pool.apply(run_method, (name, shape, batch_size, steps, warmup, seed, torch.get_num_threads()))
        rows.append({"method": name, "seconds_per_step": res["seconds"], "samples_per_s": batch_size / res["seconds"],
                     "peak_rss_growth_mb": res["peak_growth_mb"]})
    base = rows[1]["seconds_per_step"]
    ce = rows[2]["seconds_per_step"]
    for r in rows:
        r["speedup_vs_b"] = base / r["seconds_per_step"]
        r["time_vs_ce"] = r["seconds_per_step"] / ce
    return rows
