"""A message variant reaching the receiver: raw message per task, spliced at the marker, generated from.

Shared by MATH answers, ALFWorld steps and the latency stage. The variant's kind (latent,
text, empty, plain) comes from `interlat.variants`; perturbations from `variants.perturb`.
"""

import hashlib

import torch

from interlat import variants
from interlat.conversations import chat_messages
from interlat.errors import InterlatError
from interlat.model.decode import Sampling, decode
from interlat.model.insertion import insert_message, left_pad, pad_messages
from interlat.model.receiver import marker_positions
from interlat.text.batching import pad_id, pad_right
from interlat.text.chat import render_ids, stop_ids
from interlat.text.prompts import MARKER

#: how a fixed variant's message reaches the receiver (`interlat.variants.FIXED`): plan text,
#: nothing, or no plan sentence at all; every other variant gets adapted latents
TEXT_VARIANTS = {n for n, (kind, _) in variants.FIXED.items() if kind == variants.TEXT}
EMPTY_VARIANTS = {n for n, (kind, _) in variants.FIXED.items() if kind == variants.EMPTY}
PLAIN_VARIANTS = {n for n, (kind, _) in variants.FIXED.items() if kind == variants.PLAIN}


def task_seed(seed: int, task_id: str) -> int:
    return int(hashlib.sha256(f"{seed}:{task_id}".encode()).hexdigest()[:8], 16)


def variant_message(variant: str, H: torch.Tensor, other: torch.Tensor, seed: int, task_id: str) -> torch.Tensor:
    """The raw message for a latent variant (before the adapter)."""
    base = variants.parse(variant).perturbation
    return variants.perturb(base, H, seed=task_seed(seed, task_id), other=other if base == "cross_task" else None)


def is_latent(variant: str) -> bool:
    """Whether the variant's message is a (perturbed) latent message, not text or nothing."""
    return variants.parse(variant).is_latent


def raw_messages(variant: str, task_ids: list[str], all_ids: list[str], messages: dict, seed: int, *, cap: int):
    """Each task's raw message under a latent variant (None for the others).

    Every message is first capped at `cap` rows (the receiver's `prepended_length`), so a
    perturbation takes its statistics only from rows the receiver sees and `truncated_p`
    keeps p% of what the receiver would get (docs/method.md section 5). `cross_task` takes
    the (capped) message of another task of `all_ids` (sorted), drawn per (seed, task).
    """
    if not is_latent(variant):
        return None
    if variant == "cross_task" and len(all_ids) < 2:
        raise InterlatError(f"variant cross_task: {len(all_ids)} task, needs at least 2")
    raw = []
    for tid in task_ids:
        i = all_ids.index(tid)
        other_id = all_ids[(i + 1 + task_seed(seed, tid) % (len(all_ids) - 1)) % len(all_ids)]
        H, other = messages[tid].H[:cap].float(), messages[other_id].H[:cap].float()
        raw.append(variant_message(variant, H, other, seed, tid))
    return raw


def prompt_ids(tokenizer, row: dict, plain: bool) -> list[int]:
    msgs = chat_messages(row, "none" if plain else "interlat")
    return render_ids(tokenizer, msgs[:1], generation=True)


@torch.no_grad()
def splice_prompts(receiver, tokenizer, prompts: list[list[int]], plans: list[str], raw, variant: str):
    """Embed rendered chat prompts with the variant's message spliced at each marker.

    `prompts` are token ids (one marker each, none for the `no_cot` variant); `plans` the
    plan texts (text variants); `raw` the raw latent messages (latent variants), adapted
    and capped at the receiver's `prepended_length`. Returns (embeds [B, S, d] right-padded,
    lengths [B]); a row's message block replaces its marker.
    """
    device = receiver.device
    plain = variant in PLAIN_VARIANTS
    lengths = torch.tensor([len(i) for i in prompts], device=device)
    input_ids, _ = pad_right(prompts, pad_id(tokenizer))
    input_ids = input_ids.to(device)
    embeds = receiver.embed(input_ids)
    if plain:
        return embeds, lengths
    marker_pos = marker_positions(input_ids, tokenizer.convert_tokens_to_ids(MARKER), f"variant {variant}: prompt")
    if variant in TEXT_VARIANTS:
        plan, plan_len = pad_right([tokenizer(p, add_special_tokens=False)["input_ids"] for p in plans], pad_id(tokenizer))
        msg, msg_len = receiver.embed(plan.to(device)), plan_len.to(device)
    elif variant in EMPTY_VARIANTS:
        msg = embeds.new_zeros(len(prompts), 1, embeds.shape[-1])
        msg_len = torch.zeros(len(prompts), dtype=torch.long, device=device)
    else:
        H, H_len = pad_messages(raw)
        H_len = H_len.clamp(max=receiver.prepended_length).to(device)
        msg = receiver.adapt(H.to(device), H_len)
        msg_len = H_len
    bop, eop = receiver.delimiters()
    labels = torch.zeros_like(input_ids)
    embeds, _, _, lengths = insert_message(embeds, labels, lengths, marker_pos, msg, msg_len, bop, eop)
    return embeds, lengths


@torch.no_grad()
def generate_with_message(receiver, tokenizer, prompts: list[list[int]], plans: list[str], raw, variant: str,
                          cfg: Sampling, generator) -> list[tuple[str, int]]:
    """Generate from rendered chat prompts, each with the variant's message spliced (`splice_prompts`).

    Returns (text, generated tokens) per row. Shared by MATH answers and ALFWorld's
    recomputing steps (any number of turns after the first).
    """
    embeds, lengths = splice_prompts(receiver, tokenizer, prompts, plans, raw, variant)
    embeds, mask = left_pad(embeds, lengths)
    out = decode(receiver.lm, embeds, mask, eos_ids=stop_ids(tokenizer, receiver.lm), cfg=cfg, generator=generator)
    return [(tokenizer.decode(t, skip_special_tokens=True), len(t)) for t in out.tokens]


def answer_batch(receiver, tokenizer, rows, messages, variant: str, cfg: Sampling, generator) -> list[tuple[str, int]]:
    """Generate answers for a batch; `messages` are raw latent messages (latent variants)."""
    plain = variant in PLAIN_VARIANTS
    prompts = [prompt_ids(tokenizer, r, plain) for r in rows]
    return generate_with_message(receiver, tokenizer, prompts, [r["plan"] for r in rows], messages, variant, cfg, generator)
