"""P3b: the three-pass step's vocabulary-sized losses in chunks of tokens vs from full logits.

One forward + backward of `ReceiverObjective` (passes N, P, R; CE, L_plan, L_rand) on the same
seeded random-init receiver and batch, computed two ways (docs/method.md section 3):

- (a) chunked: the passes stop at their hidden states and the LM head and the losses run
  `loss_chunk` tokens at a time, checkpointed (`interlat.train.head_losses`);
- (b) unchunked: every pass's full [B, S, V] logits, the losses on [N, V] tensors.

Each method runs in its own spawned process. Gradient buffers are allocated before the
measured steps (zero-filled, as after a first optimizer step), so the memory figure is what
the step itself adds: the process's peak resident set (`getrusage` high-water mark) minus its
resident set just before the first measured step. Time is the median over the measured steps.
Each process returns its loss terms and per-parameter gradient norms, so the table shows the
two methods' largest differences too.
"""

import resource
import statistics
import time

import torch

from interlat.bench.train import collate, make_receiver
from interlat.model.shapes import SHAPES
from interlat.text.chat import IGNORE
from interlat.train.objective import ReceiverObjective

COLUMNS = ["method", "s/step", "peak MB over the step", "memory vs (b)", "time vs (b)", "loss", "max abs Δ terms", "max rel Δ grad norms"]


def paper_receiver(shape: str, layers: int, seed: int):
    """A random-init receiver with `shape`'s widths and vocabulary and `layers` layers."""
    if shape in SHAPES:
        s = SHAPES[shape]
        spec = dict(hidden_size=s["hidden_size"], num_layers=layers, num_heads=s["num_attention_heads"],
                    num_kv_heads=s["num_key_value_heads"], intermediate_size=s["intermediate_size"], vocab=s["vocab_size"])
        return make_receiver(spec, seed, max_positions=4096)
    return make_receiver(shape, seed)


def long_samples(n: int, vocab: int, d: int, tokens: int, message_rows: int, seed: int) -> list[dict]:
    """Samples with a 32-token prompt (marker inside), `tokens` supervised answer tokens and a
    `message_rows`-row message and plan."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        prompt = 32
        ids = torch.randint(10, vocab, (prompt + tokens,), generator=g)
        ids[prompt - 6] = 3  # the marker
        labels = torch.full_like(ids, IGNORE)
        labels[prompt:] = ids[prompt:]
        out.append({"ids": ids.tolist(), "labels": labels.tolist(), "marker": prompt - 6,
                    "plan": torch.randint(10, vocab, (message_rows,), generator=g).tolist(),
                    "H": torch.randn(message_rows, d, generator=g)})
    return out


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_method(chunk, shape, layers, batch_size, tokens, message_rows, steps, seed, threads) -> dict:
    """One method in a fresh process: step times, peak growth, loss terms, gradient norms."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rec = paper_receiver(shape, layers, seed)
    obj = ReceiverObjective(rec, loss_chunk=chunk).train()
    d = rec.lm.config.hidden_size
    samples = long_samples(batch_size, rec.lm.config.vocab_size, d, tokens, message_rows, seed)
    batch = collate(samples, samples[1:] + samples[:1], 0.5)
    for p in obj.parameters():
        p.grad = torch.zeros_like(p)
    base = _rss_mb()
    times = []
    for _ in range(steps):
        for p in obj.parameters():
            p.grad.zero_()
        torch.manual_seed(seed + 1)  # the same dropout masks in both methods
        t0 = time.perf_counter()
        out = obj(batch)
        out["loss"].backward()
        times.append(time.perf_counter() - t0)
    return {"seconds": statistics.median(times), "peak_mb": _peak_mb() - base,
            "terms": {k: float(v.detach()) for k, v in out.items()},
            "grad_norms": [float(p.grad.norm()) for p in obj.parameters()]}


def bench_chunking(shape: str, layers: int, batch_size: int, tokens: int, message_rows: int, loss_chunk: int,
                   steps: int, seed: int) -> list[dict]:
    """(a) chunked and (b) unchunked, each in its own spawned process; one table row each."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from interlat.errors import InterlatError

    res = {}
    for name, chunk in ((f"(a) chunked, {loss_chunk} tokens per chunk", loss_chunk), ("(b) unchunked: full logits", None)):
        args = (chunk, shape, layers, batch_size, tokens, message_rows, steps, seed, torch.get_num_threads())
        try:
            with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
                res[name] = pool.submit(run_method, *args).result()
        except BrokenProcessPool:  # killed, e.g. by the kernel's OOM killer: a row that says so
            res[name] = None
    if not any(res.values()):
        raise InterlatError("bench train: every method's process died (out of memory?)")
    if not all(res.values()):
        return [{c: "-" for c in COLUMNS} | ({"method": n, "s/step": f"{r['seconds']:.3g}", "peak MB over the step": f"{r['peak_mb']:.0f}",
                                              "loss": f"{r['terms']['loss']:.6f}"} if r else {"method": f"{n}: process died (out of memory?)"})
                for n, r in res.items()]
    (a, ra), (b, rb) = res.items()
    diff = max(abs(ra["terms"][k] - rb["terms"][k]) for k in rb["terms"])
    rel = max(abs(x - y) / max(abs(y), 1e-12) for x, y in zip(ra["grad_norms"], rb["grad_norms"], strict=True))
    rows = []
    for name, r in res.items():
        rows.append({"method": name, "s/step": f"{r['seconds']:.3g}", "peak MB over the step": f"{r['peak_mb']:.0f}",
                     "memory vs (b)": f"{r['peak_mb'] / rb['peak_mb']:.2f}x", "time vs (b)": f"{r['seconds'] / rb['seconds']:.2f}x",
                     "loss": f"{r['terms']['loss']:.6f}", "max abs Δ terms": f"{diff:.1e}" if r is ra else "-",
                     "max rel Δ grad norms": f"{rel:.1e}" if r is ra else "-"})
    return rows
