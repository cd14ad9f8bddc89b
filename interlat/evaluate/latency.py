"""Communication latency: the sender's full message vs a student's K latent steps (docs/method.md section 4-5).

For each timed task and method, two wall times at batch size 1:

- message: producing the message. `interlat` (the full message): the sender decodes N tokens
  of its plan from its prompt, with the per-step states kept (`decode(force_length=N)`,
  end-of-sequence ignored); `truncated_<p>` / `first_<K>` (untrained baselines): the sender
  stops after round(p% of N) / min(K, N) tokens (0 tokens: no sender call);
  `compressed_<K>`: the student reads its prompt and takes K latent steps;
- receiver: the receiver's time to its first answer token with that message (adapter,
  splice at the marker, prefill, one sampled token); for ALFWorld tasks (the paper's Table 3)
  to its first action: its first turn, decoded to the end of the turn (at most
  `action_tokens` tokens).

Methods run interleaved (round-robin per task) after warm-up rounds; each (method, task) time
is the median over the timed rounds, and a method's time is the mean over tasks. Speedups
are relative to `interlat` measured in the same run. The ideal message speedup is about N/K
when a latent step costs what a token step costs.
"""

import math
import statistics
import time
from dataclasses import dataclass, replace

import torch

from interlat.model.decode import Sampling, decode
from interlat.model.insertion import insert_message, left_pad
from interlat.runtime import compute_dtype, cpu_name, local_device
from interlat.variants import BASELINE, COMPRESSED, is_variant, parse

#: Sender sampling while timing (the collection defaults); the receiver samples as evaluation does.
SENDER_SAMPLING = Sampling(temperature=0.8, top_p=0.9, top_k=50, max_new_tokens=1)
RECEIVER_SAMPLING = Sampling(temperature=0.1, top_p=1.0, top_k=0, max_new_tokens=1)
COLUMNS = (
    "variant",
    "message_rows",
    "message_s",
    "receiver_s",
    "total_s",
    "speedup_message",
    "speedup_total",
    "tasks",
    "repeats",
)


@dataclass
class TaskPrompts:
    """One timed task: the sender's prompt, the receiver's prompt (with its marker), the
    student's prompt, and the full message length N."""

    sender_ids: list[int]
    receiver_ids: list[int]
    marker_pos: int
    student_ids: list[int]
    n_tokens: int


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def message_rows(variant: str, n: int) -> int:
    """Rows of the sender-made message of a latent variant (full, truncated_<p>, first_<K>)."""
    if variant == "interlat" or (is_variant(variant) and parse(variant).kind == BASELINE):
        return parse(variant).message_rows(n)
    raise ValueError(f"{variant!r}: not a sender-made message (interlat, truncated_<p>, first_<K>)")


@torch.no_grad()
def sender_message(sender, ids: list[int], n: int, generator: torch.Generator) -> torch.Tensor:
    """The sender's first n message states [n, d] (n forced tokens; n = 0 gives no call)."""
    device = sender.get_input_embeddings().weight.device
    if n == 0:
        return torch.zeros(0, sender.config.hidden_size, device=device)
    x = torch.tensor([ids], device=device)
    out = decode(
        sender,
        sender.get_input_embeddings()(x),
        torch.ones_like(x),
        eos_ids=set(),
        cfg=SENDER_SAMPLING,
        generator=generator,
        keep_states=True,
        force_length=n,
    )
    return out.states[0]


@torch.no_grad()
def student_message(student, ids: list[int], K: int) -> torch.Tensor:
    x = torch.tensor([ids], device=student.device)
    return student.generate_latents(x, torch.ones_like(x), K)[0]


@torch.no_grad()
def receiver_first_token(
    receiver, ids: list[int], marker_pos: int, H: torch.Tensor, generator, action_tokens: int = 0,
    stops: frozenset = frozenset(),
) -> int:
    """Adapt H, splice it at the marker, prefill and sample the first answer token (with
    `action_tokens`: the first turn, to a token of `stops` or that many tokens)."""
    device = receiver.device
    x = torch.tensor([ids], device=device)
    n = torch.tensor([min(H.shape[0], receiver.prepended_length)], device=device)
    msg = receiver.adapt(
        H[None].to(device) if H.shape[0] else H.new_zeros(1, 1, H.shape[1]).to(device), n
    )
    bop, eop = receiver.delimiters()
    embeds, _, _, lengths = insert_message(
        receiver.embed(x),
        torch.zeros_like(x),
        torch.tensor([len(ids)], device=device),
        torch.tensor([marker_pos], device=device),
        msg,
        n,
        bop,
        eop,
    )
    embeds, mask = left_pad(embeds, lengths)
    out = decode(
        receiver.lm,
        embeds,
        mask,
        eos_ids=set(stops),
        cfg=replace(RECEIVER_SAMPLING, max_new_tokens=action_tokens) if action_tokens else RECEIVER_SAMPLING,
        generator=generator,
        force_length=None if action_tokens else 1,
    )
    return out.tokens[0][0] if out.tokens[0] else -1


def time_one(fn, device: torch.device):
    sync(device)
    t0 = time.perf_counter()
    value = fn()
    sync(device)
    return value, time.perf_counter() - t0


def measure(
    tasks: list[TaskPrompts],
    *,
    sender,
    receiver,
    students: dict[int, object],
    variants: list[str],
    repeats: int,
    warmup: int,
    seed: int = 0,
    action_tokens: int = 0,
    stops: frozenset = frozenset(),
) -> list[dict]:
    """Rows of `COLUMNS`, one per method: `interlat`, then `variants`, then `compressed_<K>`."""
    device = receiver.device
    methods = [
        "interlat",
        *[v for v in variants if v != "interlat"],
        *[f"compressed_{k}" for k in sorted(students, reverse=True)],
    ]
    times = {(m, i): [] for m in methods for i in range(len(tasks))}
    generator = torch.Generator().manual_seed(seed)
    for r in range(warmup + repeats):
        for i, task in enumerate(tasks):
            for m in methods:
                if parse(m).kind == COMPRESSED:
                    k = parse(m).k
                    H, t_msg = time_one(
                        lambda k=k, task=task: student_message(students[k], task.student_ids, k),
                        device,
                    )
                else:
                    n = message_rows(m, task.n_tokens)
                    H, t_msg = time_one(
                        lambda n=n, task=task: sender_message(
                            sender, task.sender_ids, n, generator
                        ),
                        device,
                    )
                _, t_rec = time_one(
                    lambda H=H, task=task: receiver_first_token(
                        receiver, task.receiver_ids, task.marker_pos, H, generator, action_tokens, stops
                    ),
                    device,
                )
                if r >= warmup:
                    times[m, i].append((t_msg, t_rec, H.shape[0]))
    rows = []
    for m in methods:
        per_task = [times[m, i] for i in range(len(tasks))]
        msg = statistics.fmean(statistics.median(t[0] for t in ts) for ts in per_task)
        rec = statistics.fmean(statistics.median(t[1] for t in ts) for ts in per_task)
        tot = statistics.fmean(statistics.median(t[0] + t[1] for t in ts) for ts in per_task)
        n_rows = statistics.fmean(ts[0][2] for ts in per_task)
        rows.append(
            {
                "variant": m,
                "message_rows": round(n_rows, 2),
                "message_s": msg,
                "receiver_s": rec,
                "total_s": tot,
                "tasks": len(tasks),
                "repeats": repeats,
            }
        )
    ref = rows[0]
    for row in rows:
        row["speedup_message"] = (
            ref["message_s"] / row["message_s"] if row["message_s"] > 0 else math.inf
        )
        row["speedup_total"] = ref["total_s"] / row["total_s"]
    return rows


def machine() -> str:
    """CPU or GPU name, core count and torch version, for captions."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}; torch {torch.__version__}"
    return f"{cpu_name()}, {torch.get_num_threads()} torch threads; torch {torch.__version__}"


def to_markdown(rows: list[dict], caption: str) -> str:
    head = "| method | message rows | message s | receiver first token s | total s | speedup (message) | speedup (total) |"
    lines = [caption, "", head, "|---|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['message_rows']:g} | {r['message_s']:.4g} | {r['receiver_s']:.4g} | "
            f"{r['total_s']:.4g} | {r['speedup_message']:.1f}x | {r['speedup_total']:.1f}x |"
        )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- workloads
#: Random-weight model shapes for `--random-shape` (the embedded default's, and Qwen2.5-0.5B's).
def pipeline_tasks(
    tokenizer, rows: list[dict], messages: dict, n_tasks: int, student_vocab: int | None
) -> list[TaskPrompts]:
    """The first `n_tasks` test tasks (by id) that have a message: real prompts and real N."""
    from interlat.compress.data import student_prompt
    from interlat.evaluate.messages import prompt_ids
    from interlat.text.prompts import MARKER

    marker = tokenizer.convert_tokens_to_ids(MARKER)
    tasks = []
    for row in sorted((r for r in rows if r["id"] in messages), key=lambda r: r["id"])[:n_tasks]:
        m = messages[row["id"]]
        ids = prompt_ids(tokenizer, row, False)
        student_ids = (
            student_prompt(tokenizer, ids, student_vocab, f"task {row['id']}")
            if student_vocab
            else []
        )
        tasks.append(
            TaskPrompts(list(m.prompt_token_ids), ids, ids.index(marker), student_ids, m.n_tokens)
        )
    return tasks


def load_pipeline(
    sender_dir, receiver_dir, student_dirs, conversations, latents, n_tasks: int, device
):
    """Checkpoints of a run and its first `n_tasks` test tasks (real prompts, real N)."""
    from interlat import load_receiver, load_student, shards
    from interlat.conversations import read_conversations
    from interlat.errors import InterlatError
    from interlat.model.folders import load_lm

    receiver, tokenizer = load_receiver(receiver_dir, device=device)
    dtype = compute_dtype(device)
    sender = load_lm(sender_dir, dtype, "sender model").to(device).eval()
    students = {}
    for path in student_dirs:
        student, _ = load_student(path, device=device)
        students[student.K] = student
    messages = shards.load_messages_of(latents)
    vocab = min(
        (s.lm.get_input_embeddings().weight.shape[0] for s in students.values()), default=None
    )
    tasks = pipeline_tasks(tokenizer, read_conversations(conversations), messages, n_tasks, vocab)
    if not tasks:
        raise InterlatError(f"{conversations}: no task has a message in {latents[0]}")
    return sender, receiver, students, tasks


# ---------------------------------------------------------------------------- the stage
def check_variants(names: list[str]) -> list[str]:
    """Untrained baselines to time: each must be truncated_<p> or first_<K> (else a one-line error)."""
    from interlat.errors import InterlatError

    bad = [v for v in names if not (is_variant(v) and parse(v).kind == BASELINE)]
    if bad:
        raise InterlatError(f"--variants: {bad[0]!r}: expected truncated_<p> or first_<K>")
    return names


def write_latency(work, *, sender, receiver, students, variants, repeats, warmup, seed, setup, out,
                  action_tokens: int = 0, stops: frozenset = frozenset()) -> str:
    """Time every method on `work`, write `out` (CSV if it ends in .csv, else Markdown); the Markdown."""
    from interlat.atomic import write_csv, write_text

    rows = measure(work, sender=sender, receiver=receiver, students=students, variants=variants,
                   repeats=repeats, warmup=warmup, seed=seed, action_tokens=action_tokens, stops=stops)
    caption = f"{setup}; batch 1, median of {repeats} rounds after {warmup} warm-up, mean over tasks; {machine()}"
    markdown = to_markdown(rows, caption)
    if str(out).endswith(".csv"):
        write_csv(out, rows, COLUMNS)
    else:
        write_text(out, markdown)
    return markdown


def run_latency(*, sender, receiver, students, conversations, latents, variants: list[str], tasks: int,
                repeats: int, warmup: int, seed: int, out, action_tokens: int = 100) -> str:
    """The latency stage: a run's sender, receiver and students timed on its first test tasks
    (ALFWorld tasks, those with a `game`: to the receiver's first action)."""
    from interlat.conversations import read_conversations
    from interlat.text.chat import stop_ids
    from interlat.text.tokenizer import load_tokenizer

    check_variants(variants)
    device = local_device()  # GPU in bf16 where there is one (interlat/runtime.py), like evaluation
    snd, rec, stu, work = load_pipeline(sender, receiver, students, conversations, latents, tasks, device)
    episodes = any("game" in r for r in read_conversations(conversations))
    stops = frozenset(stop_ids(load_tokenizer(receiver), rec.lm)) if episodes else frozenset()
    setup = (f"{sender} -> {receiver}, {len(work)} test tasks, mean N={sum(t.n_tokens for t in work) / len(work):.1f}, "
             f"receiver timed to its first {'action' if episodes else 'token'}")
    return write_latency(work, sender=snd, receiver=rec, students=stu, variants=variants, repeats=repeats,
                         warmup=warmup, seed=seed, setup=setup, out=out,
                         action_tokens=action_tokens if episodes else 0, stops=stops)
