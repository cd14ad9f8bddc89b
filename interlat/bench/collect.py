"""P2 benchmark: generating plans while capturing the sender's states (docs/method.md sections 1, 6).

The same left-padded random prompts, the same seeded random-init Qwen2 sender and the same
number of new tokens per prompt (end-of-sequence is ignored, so every method does the same
work) are run three ways:

(a) interlat: `interlat.model.decode.decode(..., keep_states=True)`, batched; only the last
    layer's post-norm state of each step is kept (docs/method.md section 1);
(b) the reference's way: `model.generate(output_hidden_states=True,
    return_dict_in_generate=True)` one prompt at a time, every layer's states returned, and
    the last layer's picked out afterwards;
(c) the limit: batched `model.generate` with no state capture at all;
(a') interlat's loop with `keep_states=False`: (a) / (a') is what capture itself costs,
    apart from the loop's other differences from `generate` (it samples from the top-k
    only, where `generate`'s top-p sorts the whole vocabulary, and it skips the logits
    processors and stopping criteria).

All three sample with the same temperature, top-k and top-p. Each method runs in its own
fresh process (spawned), so that peak memory is its own: the process builds the model and
the prompts, runs once cold, recording the peak resident memory above what it held before
the run (CPU: the resident-set high-water mark `VmHWM`, reset just before the run, minus
the resident set size then; CUDA: the allocator's peak minus its allocation then). Then
the timed runs go round-robin over the methods, `repeats` each, and the median is reported.
"""

import multiprocessing
import statistics
import time
from dataclasses import dataclass

import torch
import transformers
from transformers import Qwen2Config, Qwen2ForCausalLM

from interlat.model.decode import Sampling, decode
from interlat.runtime import cpu_name

#: Model shapes: Qwen2.5-0.5B's (config.json of Qwen/Qwen2.5-0.5B) and a tiny one for tests.
SHAPES = {
    "qwen2.5-0.5b": {
        "hidden_size": 896,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "intermediate_size": 4864,
        "vocab_size": 151936,
    },
    "tiny": {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 128,
        "vocab_size": 1024,
    },
}
OURS = "(a) interlat decode, batched, last layer"
OURS_PLAIN = "(a') interlat decode, batched, no states"
REFERENCE = "(b) reference: generate, batch 1, all layers"
LIMIT = "(c) limit: generate, batched, no states"
METHODS = {"ours": OURS, "ours_plain": OURS_PLAIN, "reference": REFERENCE, "limit": LIMIT}
COLUMNS = [
    "method",
    "rows per call",
    "new tokens",
    "seconds",
    "tokens/s",
    "speedup vs (b)",
    "time vs (c)",
    "peak MB",
]
PAD = 0


@dataclass(frozen=True)
class Spec:
    """One benchmark setting (picklable: it is handed to each spawned worker)."""

    shape: str = "qwen2.5-0.5b"
    layers: int | None = None  # overrides the shape's decoder layer count
    prompts: int = 8
    new_tokens: int = 32
    min_prompt: int = 16
    max_prompt: int = 32
    temperature: float = 0.8
    top_p: float = 0.9
    top_k: int = 50
    dtype: str = "float32"
    device: str = "cpu"
    threads: int = 1
    repeats: int = 1
    seed: int = 0

    def config(self) -> Qwen2Config:
        """The sender's Qwen2 config (tied embeddings, as Qwen2.5-0.5B)."""
        shape = dict(SHAPES[self.shape])
        if self.layers:
            shape["num_hidden_layers"] = self.layers
        positions = self.max_prompt + self.new_tokens + 8
        return Qwen2Config(
            **shape, max_position_embeddings=positions, tie_word_embeddings=True,
            pad_token_id=PAD, eos_token_id=1, bos_token_id=None,
        )  # fmt: skip


def build_sender(spec: Spec) -> Qwen2ForCausalLM:
    """The random-init sender of `spec` (seeded), in eval mode on its device and dtype."""
    torch.manual_seed(spec.seed)
    model = Qwen2ForCausalLM(spec.config())
    return model.to(device=spec.device, dtype=getattr(torch, spec.dtype)).eval()


def make_prompts(spec: Spec, vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded random prompts (ids [P, S], mask [P, S]) with lengths in [min, max]."""
    gen = torch.Generator().manual_seed(spec.seed)
    lengths = torch.randint(spec.min_prompt, spec.max_prompt + 1, (spec.prompts,), generator=gen)
    width = int(lengths.max())
    ids = torch.full((spec.prompts, width), PAD, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, n in enumerate(lengths.tolist()):
        ids[i, width - n :] = torch.randint(2, vocab, (n,), generator=gen)
        mask[i, width - n :] = 1
    return ids.to(spec.device), mask.to(spec.device)


def _sampling(spec: Spec) -> dict:
    return {"do_sample": True, "temperature": spec.temperature, "top_p": spec.top_p,
            "top_k": spec.top_k}  # fmt: skip


@torch.no_grad()
def run_ours(model, ids, mask, spec: Spec, keep_states: bool = True) -> list[torch.Tensor]:
    """(a): one batched decode keeping the last layer's states; returns H [N, d] per prompt.

    With `keep_states=False` (a'), the same loop without capture; returns the tokens [P, N].
    """
    cfg = Sampling(spec.temperature, spec.top_p, spec.top_k, spec.new_tokens)
    out = decode(
        model, model.get_input_embeddings()(ids), mask, eos_ids=set(), cfg=cfg,
        generator=torch.Generator().manual_seed(spec.seed), keep_states=keep_states,
        force_length=spec.new_tokens,
    )  # fmt: skip
    return out.states if keep_states else torch.tensor(out.tokens)


def run_ours_plain(model, ids, mask, spec: Spec) -> torch.Tensor:
    """(a'): (a) without state capture, to isolate what capture itself costs."""
    return run_ours(model, ids, mask, spec, keep_states=False)


@torch.no_grad()
def run_reference(model, ids, mask, spec: Spec) -> list[torch.Tensor]:
    """(b): generate one prompt at a time with every layer's states, then pick the last layer.

    Step 0's states cover the whole prompt; the state that sampled token t is the last
    position of step t's last layer.
    """
    states = []
    for row, row_mask in zip(ids, mask, strict=True):
        prompt = row[row_mask.bool()][None]
        out = model.generate(
            prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=spec.new_tokens,
            min_new_tokens=spec.new_tokens, output_hidden_states=True,
            return_dict_in_generate=True, pad_token_id=PAD, **_sampling(spec),
        )  # fmt: skip
        states.append(torch.cat([step[-1][0, -1:] for step in out.hidden_states]))
    return states


@torch.no_grad()
def run_limit(model, ids, mask, spec: Spec) -> torch.Tensor:
    """(c): batched generate without capture; returns the new tokens [P, N]."""
    out = model.generate(
        ids, attention_mask=mask, max_new_tokens=spec.new_tokens,
        min_new_tokens=spec.new_tokens, pad_token_id=PAD, **_sampling(spec),
    )  # fmt: skip
    return out[:, ids.shape[1] :]


RUNNERS = {
    "ours": run_ours,
    "ours_plain": run_ours_plain,
    "reference": run_reference,
    "limit": run_limit,
}


def _reset_peak_rss() -> None:
    """Reset this process's resident-set high-water mark (Linux: `clear_refs` value 5)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _rss_bytes(field: str) -> int:
    """This process's resident set size now (`VmRSS`) or at its peak (`VmHWM`), from /proc."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status: no {field}")


def _check(method: str, out, spec: Spec, hidden: int) -> None:
    """Every method must return N new tokens (and, with states, N states) per prompt."""
    if method in ("limit", "ours_plain"):
        shapes = {tuple(out.shape)}
        expected = {(spec.prompts, spec.new_tokens)}
    else:
        shapes = {tuple(h.shape) for h in out}
        expected = {(spec.new_tokens, hidden)}
    if shapes != expected or len(out) != spec.prompts:
        raise RuntimeError(f"{method}: output shapes {shapes}, expected {expected}")


def _sync(spec: Spec) -> None:
    if spec.device.startswith("cuda"):
        torch.cuda.synchronize()


def _worker(method: str, spec: Spec, inbox, outbox) -> None:
    """A spawned process holding one method: a cold run for memory, then runs on request.

    Replies {"peak_bytes"} after the cold run, then {"seconds"} per request, until None.
    """
    try:
        torch.set_num_threads(spec.threads)
        model = build_sender(spec)
        ids, mask = make_prompts(spec, model.config.vocab_size)
        run, cuda = RUNNERS[method], spec.device.startswith("cuda")
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        else:
            _reset_peak_rss()  # building the model peaked higher than any run will
        before = torch.cuda.memory_allocated() if cuda else _rss_bytes("VmRSS")
        out = run(model, ids, mask, spec)
        _check(method, out, spec, model.config.hidden_size)
        del out
        peak = (torch.cuda.max_memory_allocated() if cuda else _rss_bytes("VmHWM")) - before
        outbox.put({"peak_bytes": max(peak, 0)})
        while inbox.get() is not None:
            _sync(spec)
            start = time.perf_counter()
            out = run(model, ids, mask, spec)
            _sync(spec)
            outbox.put({"seconds": time.perf_counter() - start})
            del out
    except BaseException as e:  # reported by the parent, which raises
        outbox.put({"error": f"{type(e).__name__}: {e}"})


def _reply(method: str, outbox) -> dict:
    reply = outbox.get()
    if "error" in reply:
        raise RuntimeError(f"{METHODS[method]}: {reply['error']}")
    return reply


def measure(spec: Spec, methods, log) -> dict[str, dict]:
    """Per method: the cold run's peak memory and the seconds of each timed run.

    One spawned process per method (its own heap, so its own peak). The processes start one
    after another (each cold run alone on the machine); then the timed runs go round-robin,
    one method at a time, so that load from other processes hits every method alike.
    """
    ctx = multiprocessing.get_context("spawn")
    workers, results = {}, {}
    try:
        for m in methods:
            inbox, outbox = ctx.Queue(), ctx.Queue()
            proc = ctx.Process(target=_worker, args=(m, spec, inbox, outbox), daemon=True)
            proc.start()
            workers[m] = (proc, inbox, outbox)
            results[m] = {**_reply(m, outbox), "seconds": []}
            log(f"{METHODS[m]}: cold run done")
        for r in range(spec.repeats):
            for m, (_, inbox, outbox) in workers.items():
                inbox.put("run")
                results[m]["seconds"].append(_reply(m, outbox)["seconds"])
            log(f"timed round {r + 1}/{spec.repeats} done")
    finally:
        for proc, inbox, _ in workers.values():
            inbox.put(None)
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
    return results


def bench_collect(
    spec: Spec, methods=("limit", "ours", "ours_plain", "reference"), log=print
) -> list[dict]:
    """Measure each method in its own process; return one table row per method."""
    results = measure(spec, methods, log)
    median = {m: statistics.median(r["seconds"]) for m, r in results.items()}
    tokens = spec.prompts * spec.new_tokens
    rows = []
    for m, r in results.items():
        s = median[m]
        rows.append({
            "method": METHODS[m],
            "rows per call": 1 if m == "reference" else spec.prompts,
            "new tokens": f"{spec.prompts} x {spec.new_tokens}",
            "seconds": float(f"{s:.4g}"),
            "tokens/s": float(f"{tokens / s:.4g}"),
            "speedup vs (b)": f"{median['reference'] / s:.2f}x" if "reference" in median else "",
            "time vs (c)": f"{s / median['limit']:.3f}x" if "limit" in median else "",
            "peak MB": round(r["peak_bytes"] / 2**20, 1),
        })  # fmt: skip
    return rows


def describe_setup(spec: Spec) -> str:
    """One paragraph naming the model shape, workload and machine, for the table's caption."""
    cfg = spec.config()
    where = torch.cuda.get_device_name() if spec.device.startswith("cuda") else f"{cpu_name()}, {spec.threads} thread(s) per method"  # fmt: skip
    return (
        f"Random-init Qwen2, shape {spec.shape}"
        + (f" cut to {cfg.num_hidden_layers} layers" if spec.layers else "")
        + f" (hidden {cfg.hidden_size}, {cfg.num_hidden_layers} layers, {cfg.num_attention_heads}"
        f"/{cfg.num_key_value_heads} heads, MLP {cfg.intermediate_size}, vocab {cfg.vocab_size}),"
        f" {spec.dtype} on {where}; {spec.prompts} prompts of {spec.min_prompt}-{spec.max_prompt}"
        f" tokens, {spec.new_tokens} new tokens each (EOS ignored), T={spec.temperature}, "
        f"top-p {spec.top_p}, top-k {spec.top_k}; median of {spec.repeats} timed runs after a "
        f"cold run; peak MB = the cold run's peak above the memory held before it (model "
        f"excluded); torch {torch.__version__}, transformers {transformers.__version__}"
    )

