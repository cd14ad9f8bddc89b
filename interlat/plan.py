"""A resource plan checkable without a GPU: per rule, parameters, peak GPU memory, host memory and
time, next to what a SLURM profile books (`interlat plan --configfile config/paper/<name>.yaml`).

Parameter counts are exact: each model is instantiated on PyTorch's `meta` device (no memory)
from its architecture, the paper models' published values (`interlat.model.shapes.SHAPES`) or
the tiny models' config keys, plus the receiver's adapter. Memory per GPU, in GiB, is
weights + gradients + optimizer states + activations + the vocabulary-sized loss tensors:

- training (bf16, fp32 master weights, AdamW; ZeRO stage from the DeepSpeed JSON, over the
  rule's G GPUs): 2N weights, 2N gradients, 12N optimizer (fp32 master, m, v); ZeRO-1 shards
  the optimizer, ZeRO-2 also the gradients, ZeRO-3 also the weights (/G); a JSON with
  `offload_optimizer` moves the 12N to host memory. Engines single/ddp train in fp32: 16N.
- activations with gradient checkpointing: every layer's input (B x T x d, bf16) plus one
  layer's working set recomputed (B x T x (8d + 3I), forward and backward); without it every
  layer's working set. Attention is SDPA (no T x T matrix).
- vocabulary-sized losses: computed from hidden states in checkpointed chunks of
  `interlat.losses.DEFAULT_CHUNK` tokens (interlat/train/head_losses.py): per chunk, pass N's
  fp32 logits, log-probabilities and gradient and passes P and R's probabilities and the JSD
  mixture, 6 x chunk x V x 4 bytes, plus the three passes' final hidden states (B x T x d, fp32);
  compression the same for paths A, D and B.
- inference (collect, evaluate, latency): bf16 weights, the KV cache (B x T x layers x 2 x
  kv_heads x head_dim), one layer's prefill working set, and B x V logits.

T, the longest sequence, is the prompt (PROMPT_TOKENS), the message cap (train.prepended_length)
and the text after it (TEXT_TOKENS per benchmark; ALFWorld evaluation: max_steps x (new tokens +
an observation)). Time is FLOPs / (GPUs x peak x MFU) for compute-bound training and weights
bytes / memory bandwidth per decoding step; both are estimates with the constants below.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import click
import yaml

from interlat.errors import InterlatError

GIB = 2**30
#: GPU name -> (memory GiB as nvidia-smi reports it, bf16 dense TFLOP/s, memory TB/s)
GPUS = {"H100 80GB": (79.6, 989.0, 3.35), "H200 141GB": (140.4, 989.0, 4.8)}
#: profile gpu_model values -> GPUS key (a rule without gpu_model must fit the smallest)
GPU_MODELS = {"h100": "H100 80GB", "h200": "H200 141GB"}
HEADROOM = 0.9  # usable share of a GPU's memory (CUDA context, allocator fragmentation)
MFU = 0.3  # model FLOPs utilisation assumed for training and prefill
HUB_SHAPES = {"Qwen/Qwen2.5-0.5B": "qwen2.5-0.5b", "Qwen/Qwen2.5-7B": "qwen2.5-7b", "meta-llama/Llama-3.1-8B": "llama3.1-8b"}
TOY_VOCAB = 4096  # upper bound of the embedded default's word-level vocabulary
PROMPT_TOKENS = {"math": 256, "alfworld": 384}  # task + plan sentence (ALFWorld: room description)
TEXT_TOKENS = {"math": 1024, "alfworld": 1536}  # solution; ALFWorld: the expert trajectory
OBSERVATION_TOKENS = 64  # one ALFWorld observation turn
PAPER_SIZES = {"math": (7500, 5000), "alfworld": (3553, 274)}  # train tasks, test tasks (all subjects)


@dataclass(frozen=True)
class Arch:
    name: str
    params: int
    layers: int
    hidden: int
    intermediate: int
    kv_dim: int  # kv_heads x head_dim
    vocab: int


def architecture(spec: dict) -> Arch:
    """The architecture of one `models.<model>` entry, counted exactly on the meta device."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    from interlat.model.shapes import SHAPES

    if spec.get("hf_id"):
        if spec["hf_id"] not in HUB_SHAPES:
            raise InterlatError(f"models: hf_id {spec['hf_id']!r}: no known architecture ({', '.join(HUB_SHAPES)})")
        name, values = spec["hf_id"], dict(SHAPES[HUB_SHAPES[spec["hf_id"]]])
        arch = values.pop("arch")
    else:
        name, arch = f"tiny {spec['arch']}", spec["arch"]
        values = dict(vocab_size=TOY_VOCAB, hidden_size=spec["hidden_size"], intermediate_size=spec["intermediate_size"],
                      num_hidden_layers=spec["layers"], num_attention_heads=spec["heads"],
                      num_key_value_heads=spec["kv_heads"], max_position_embeddings=spec["max_positions"])
    config = {"qwen2": Qwen2Config, "llama": LlamaConfig}[arch](**values)
    with torch.device("meta"):
        params = sum(p.numel() for p in AutoModelForCausalLM.from_config(config).parameters())
    head_dim = config.hidden_size // config.num_attention_heads
    return Arch(name, params, config.num_hidden_layers, config.hidden_size, config.intermediate_size,
                config.num_key_value_heads * head_dim, config.vocab_size)


def adapter_params(receiver_dim: int, sender_dim: int) -> int:
    import torch

    from interlat.model.adapter import LatentAdapter

    with torch.device("meta"):
        return sum(p.numel() for p in LatentAdapter(receiver_dim, sender_dim).parameters())


def zero_stage(config: dict, section: str) -> tuple[int | None, bool]:
    """(ZeRO stage, optimizer offloaded) of a section's engine; stage None: plain fp32 training."""
    if config[section].get("engine", "single") != "deepspeed":
        return None, False
    path = Path(config[section]["deepspeed_config"])
    try:
        zero = json.loads(path.read_text()).get("zero_optimization", {})
    except (OSError, ValueError) as e:
        raise InterlatError(f"{path}: {e}") from None
    offload = zero.get("offload_optimizer", {}).get("device", "none") not in ("none", None)
    return int(zero.get("stage", 0)), offload


def training_state(n: int, stage: int | None, offload: bool, g: int) -> tuple[float, float, float, float]:
    """(weights, gradients, optimizer on GPU, optimizer on host) bytes per GPU for n trainable parameters."""
    if stage is None:
        return 4 * n, 4 * n, 8 * n, 0.0
    weights = 2 * n / (g if stage >= 3 else 1)
    grads = 2 * n / (g if stage >= 2 else 1)
    optim = 12 * n / (g if stage >= 1 else 1)
    return (weights, grads, 0.0, optim) if offload else (weights, grads, optim, 0.0)


def activations(a: Arch, b: int, t: int, checkpointing: bool) -> float:
    layer = b * t * (8 * a.hidden + 3 * a.intermediate) * 2
    if checkpointing:
        return a.layers * b * t * a.hidden * 2 + 2 * layer
    return a.layers * layer


def vocab_losses(a: Arch, b: int, t: int) -> float:
    from interlat.losses import DEFAULT_CHUNK

    return 6 * min(b * t, DEFAULT_CHUNK) * a.vocab * 4 + 3 * b * t * a.hidden * 4


def kv_cache(a: Arch, b: int, t: int) -> float:
    return b * t * a.layers * 2 * a.kv_dim * 2


@dataclass
class Row:
    rule: str
    job: str
    models: str
    params: int
    gpus: int
    zero: str
    batch: int
    seq: int
    weights: float
    grads: float
    optim: float
    acts: float
    vocab: float
    host: float
    hours: float
    booked: dict

    @property
    def peak(self) -> float:
        return self.weights + self.grads + self.optim + self.acts + self.vocab


def booked(profile: dict, rule: str) -> dict:
    """What the profile requests for `rule`: GPUs per node (`gpu`, or `gres` gpu:G for several
    nodes), nodes, gpu_model, mem_mb (per node), runtime (minutes)."""
    from interlat.launch import gpus_per_node

    res = {**profile.get("default-resources", {}), **profile.get("set-resources", {}).get(rule, {})}
    return {"gpu": gpus_per_node(res), "nodes": int(res.get("nodes", 1)), "gpu_model": res.get("gpu_model"),
            "mem_mb": int(res.get("mem_mb", 0)), "runtime": int(res.get("runtime", 0))}


def sizes(config: dict, bench: str) -> tuple[int, int]:
    """(train tasks, test tasks) of a benchmark under the config's data section."""
    d = config["data"][bench]
    if bench == "math":
        if d["source"] == "generated":
            return d["n_train"] * len(d["subjects"]), d["n_test"] * len(d["subjects"])
        share = len(d["subjects"]) / 7
        return round(PAPER_SIZES["math"][0] * share), round(PAPER_SIZES["math"][1] * share)
    if d["source"] == "generated":
        k = len(d["task_types"])
        train, test = d["n_train"] * k, (d["n_valid_seen"] + d["n_valid_unseen"]) * k
    else:
        train, test = PAPER_SIZES["alfworld"]
    return train * (1 + d.get("renamed_copies", 0)), test


def student_only(config: dict, bench: str) -> int:
    """Tasks only the compression student trains on (generated MATH's `n_compress` per subject)."""
    d = config["data"][bench]
    return d.get("n_compress", 0) * len(d["subjects"]) if bench == "math" and d["source"] == "generated" else 0


def decode_seconds(weights: float, tokens_per_step: int, n: int, gpus: int = 1) -> float:
    """Seconds per decoding step: the larger of reading the weights and the step's FLOPs."""
    _, tflops, tbs = GPUS["H100 80GB"]
    return max(weights / (tbs * 1e12 * gpus), 2 * n * tokens_per_step / (tflops * 1e12 * MFU * gpus))


def plan_rows(config: dict, profile: dict) -> list[Row]:
    """One row per GPU rule and benchmark (train: per receiver base) of a merged, defaulted config."""
    from interlat.variants import RECEIVERS, receivers_of, variants_for

    _, tflops, _ = GPUS["H100 80GB"]
    arch = {m: architecture(s) for m, s in config["models"].items()}
    sender = arch["sender"]
    rows = []
    for bench in config["benchmarks"]:
        n_train, n_test = sizes(config, bench)
        prompt, text = PROMPT_TOKENS[bench], TEXT_TOKENS[bench]
        cap = config["train"]["prepended_length"]
        c = config["collect"]
        b = booked(profile, "collect")
        t = prompt + c["max_new_tokens"]
        w = 2 * sender.params
        steps = math.ceil((n_train + n_test + student_only(config, bench)) / c["batch_size"]) * c["max_new_tokens"] / len(
            config["data"][bench].get("subjects") or config["data"][bench]["task_types"])
        rows.append(Row("collect", f"{bench}/<subject>", sender.name, sender.params, b["gpu"], "-", c["batch_size"], t,
                        w, 0, 0, kv_cache(sender, c["batch_size"], t) + activations(sender, c["batch_size"], prompt, False) / sender.layers,
                        4 * c["batch_size"] * sender.vocab * 4, 1.2 * w, steps * decode_seconds(w, c["batch_size"], sender.params) / 3600, b))
        tr = config["train"]
        bb = tr.get(bench, {}).get("batch_size") or tr["batch_size"]
        b = booked(profile, "train")
        g = max(1, b["gpu"]) * b["nodes"]
        stage, offload = zero_stage(config, "train")
        t = prompt + cap + text
        for base in sorted({RECEIVERS[r][1] or tr["receiver_base"] for r in receivers_of(variants_for(config, bench))}):
            a = arch[base]
            n = a.params + adapter_params(a.hidden, sender.hidden)
            wt, gr, op, host_opt = training_state(n, stage, offload, g)
            own_steps = tr.get(bench, {}).get("steps") or tr["steps"]
            epochs = tr.get("epochs") or own_steps * bb * tr.get("gradient_accumulation", 1) * g / n_train
            flops = epochs * n_train * t * 12 * n  # N pass with recompute (8N) + P and R passes (2N each)
            rows.append(Row("train", f"{bench}/{base}", a.name, n, g, "fp32" if stage is None else f"ZeRO-{stage}", bb, t,
                            wt, gr, op, activations(a, bb, t, tr["gradient_checkpointing"]), vocab_losses(a, bb, t),
                            (4 * n + host_opt) * (g // b["nodes"]), flops / (g * tflops * 1e12 * MFU) / 3600, b))
        ev = config["evaluate"]
        b = booked(profile, "evaluate")
        a = arch[tr["receiver_base"]]
        if bench == "alfworld":  # every step prefills the episode so far (mean: half the longest)
            al = ev["alfworld"]
            t = prompt + cap + al["max_steps"] * (al["max_new_tokens"] + OBSERVATION_TOKENS)
            per_episode, prefill = al["max_steps"] * al["max_new_tokens"], al["max_steps"] * t / 2
        else:
            t, per_episode, prefill = prompt + cap + ev["max_new_tokens"], ev["max_new_tokens"], prompt + cap
        w = 2 * (a.params + adapter_params(a.hidden, sender.hidden))
        batches = math.ceil(n_test * len(config["seeds"]) / ev["batch_size"])
        seconds = batches * (per_episode * decode_seconds(w, ev["batch_size"], a.params)
                             + 2 * a.params * ev["batch_size"] * prefill / (tflops * 1e12 * MFU))
        rows.append(Row("evaluate", f"{bench}/<variant>", a.name, a.params, b["gpu"], "-", ev["batch_size"], t, w, 0, 0,
                        kv_cache(a, ev["batch_size"], t) + activations(a, ev["batch_size"], t, False) / a.layers,
                        4 * ev["batch_size"] * a.vocab * 4, 1.2 * w, seconds / 3600, b))
        cp = config["compress"]
        if not cp["k_list"]:
            continue
        b = booked(profile, "compress")
        g = max(1, b["gpu"]) * b["nodes"]
        stage, offload = zero_stage(config, "compress")
        st = a if cp["student"] == "teacher" else arch[cp["student"]]  # teacher: the interlat receiver's LM
        n = st.params + st.hidden * st.hidden + 2 * st.hidden  # + h2e (LayerNorm -> Linear) and lat_bos
        wt, gr, op, host_opt = training_state(n, stage, offload, g)
        t = prompt + cap + text
        teacher = 2 * (a.params + adapter_params(a.hidden, sender.hidden))
        acts = activations(st, cp["batch_size"], prompt + max(cp["k_list"]), cp["gradient_checkpointing"]) + activations(
            a, cp["batch_size"], t, True)  # path A back-propagates through the frozen teacher
        flops = cp["epochs"] * (n_train + student_only(config, bench)) * ((prompt + max(cp["k_list"])) * 8 * n + t * 10 * a.params)
        rows.append(Row("compress", f"{bench}/K<K>", f"{st.name} + teacher", n, g, "fp32" if stage is None else f"ZeRO-{stage}",
                        cp["batch_size"], t, wt + teacher, gr, op, acts, vocab_losses(a, cp["batch_size"], t),
                        (4 * n + teacher + host_opt) * (g // b["nodes"]), flops / (g * tflops * 1e12 * MFU) / 3600, b))
        b = booked(profile, "latency")
        w = 2 * (sender.params + a.params + st.params)
        lat = cp["latency"]
        steps = lat["tasks"] * (lat["repeats"] + lat["warmup"]) * (config["collect"]["max_new_tokens"] + 1)
        rows.append(Row("latency", f"{bench}/<message>", f"sender + {a.name} + student", sender.params + a.params + st.params,
                        b["gpu"], "-", 1, prompt + c["max_new_tokens"] + cap, w, 0, 0,
                        kv_cache(sender, 1, prompt + c["max_new_tokens"]), 4 * a.vocab * 4, 1.2 * w,
                        steps * decode_seconds(2 * sender.params, 1, sender.params) / 3600, b))
    return rows


def problems(rows: list[Row]) -> list[str]:
    """Where an estimate exceeds the booking: GPU memory (the named gpu_model, else the smallest
    GPU of the table), host memory, walltime, or a GPU rule booked without a GPU."""
    out = []
    smallest = min(GPUS, key=lambda k: GPUS[k][0])
    for r in rows:
        bk, where = r.booked, f"{r.rule} {r.job}"
        gpu = GPU_MODELS.get(str(bk["gpu_model"]).lower(), smallest)
        if bk["gpu"] < 1:
            out.append(f"{where}: the profile books no GPU")
        elif r.peak > HEADROOM * GPUS[gpu][0] * GIB:
            out.append(f"{where}: {r.peak / GIB:.1f} GiB per GPU > {HEADROOM:.0%} of a {gpu} ({bk['gpu']} booked)")
        if r.host > bk["mem_mb"] * 2**20:
            out.append(f"{where}: host {r.host / GIB:.1f} GiB > mem_mb {bk['mem_mb']}")
        if r.hours * 60 > bk["runtime"]:
            out.append(f"{where}: {r.hours * 60:.0f} min > runtime {bk['runtime']}")
    return out


def markdown(rows: list[Row], title: str) -> str:
    gib = lambda x: f"{x / GIB:.1f}"  # noqa: E731
    head = ["rule", "job", "model", "params", "GPUs", "ZeRO", "B x T", "weights", "grads", "optim", "activations",
            "vocab losses", "peak GiB/GPU", *GPUS, "booked: GPUs, mem, min", "host GiB", "est. h (H100)"]
    lines = [f"### {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        fits = ["yes" if r.peak <= HEADROOM * GPUS[g][0] * GIB else "**no**" for g in GPUS]
        b = r.booked
        nodes = f"{b['nodes']}x" if b["nodes"] > 1 else ""
        lines.append("| " + " | ".join([
            r.rule, r.job, r.models, f"{r.params / 1e9:.2f}B" if r.params >= 1e8 else f"{r.params / 1e6:.2f}M", str(r.gpus), r.zero, f"{r.batch} x {r.seq}",
            gib(r.weights), gib(r.grads), gib(r.optim), gib(r.acts), gib(r.vocab), gib(r.peak), *fits,
            f"{nodes}{b['gpu']}{' ' + b['gpu_model'] if b['gpu_model'] else ''}, {b['mem_mb'] // 1000} GB, {b['runtime']}",
            gib(r.host), f"{r.hours:.1f}"]) + " |")  # fmt: skip
    return "\n".join(lines) + "\n"


def merged_config(base: Path, configfiles: list[Path]) -> dict:
    """config.yaml, then each --configfile over it (Snakemake's merge), schema defaults filled."""
    from snakemake.utils import update_config, validate

    from interlat.config import SCHEMA_PATH

    config = {}
    for path in [base, *configfiles]:
        try:
            update_config(config, yaml.safe_load(Path(path).read_text()) or {})
        except (OSError, yaml.YAMLError) as e:
            raise InterlatError(f"{path}: {e}") from None
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    error = best_match(Draft202012Validator(yaml.safe_load(SCHEMA_PATH.read_text())).iter_errors(config))
    if error is not None:
        where = ".".join(str(x) for x in error.absolute_path) or "config"
        raise InterlatError(f"{', '.join(map(str, configfiles))}: field \"{where}\": {error.message}")
    validate(config, str(SCHEMA_PATH), set_default=True)  # fills the defaults
    return config


@click.command("plan", context_settings=dict(help_option_names=["-h", "--help"]))
@click.option("--configfile", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True, required=True,
              help="Config override(s) over --base, e.g. config/paper/math-qwen2.5-7b.yaml (repeatable).")
@click.option("--base", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=Path("config/config.yaml"),
              show_default=True, help="The embedded default config.")
@click.option("--profile", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=Path("profiles/slurm/profile.yaml"), show_default=True, help="SLURM profile whose bookings are compared.")
@click.option("--check/--no-check", default=True, show_default=True, help="Exit 2 where an estimate exceeds the booking.")
def plan_command(configfile, base, profile, check):
    """Resource plan: per GPU rule, parameters, peak GPU memory, host memory and time vs the profile.

    \b
    Example: interlat plan --configfile config/paper/math-qwen2.5-7b.yaml
    Example: interlat plan --configfile config/test.yaml --no-check > results/default/plan.md
    """
    config = merged_config(base, list(configfile))
    rows = plan_rows(config, yaml.safe_load(profile.read_text()) or {})
    click.echo(markdown(rows, f"{config['run']} ({', '.join(map(str, configfile))}, {profile})"))
    found = problems(rows)
    for p in found:
        click.echo(f"over budget: {p}", err=True)
    if check and found:
        raise InterlatError(f"{len(found)} estimate(s) exceed what {profile} books (see above)")
