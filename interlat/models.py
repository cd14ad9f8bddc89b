"""Supervised pretraining of the embedded default's tiny sender on (task -> plan) pairs.

The tiny sender must write real plans so that its latent messages carry information; it is
trained here, inside the pipeline, with next-token cross-entropy on the assistant turns of
chat-formatted (planner prompt -> reference plan) conversations.
"""

import logging
import math
import random

import torch

from interlat.progress import progress
from interlat.text.batching import collate_lm, pad_id
from interlat.text.chat import encode_conversation, end_of_turn_id
from interlat.text.prompts import planner_messages

log = logging.getLogger(__name__)


def plan_conversations(records: list[dict], benchmark: str) -> list[list[dict]]:
    """Planner prompt -> reference plan, one conversation per record."""
    return [
        planner_messages(benchmark, r["problem"]) + [{"role": "assistant", "content": r["plan"]}]
        for r in records
    ]


def pretrain(
    model, tokenizer, conversations: list[list[dict]], *, steps: int, batch_size: int, lr: float, seed: int
) -> list[float]:
    """Train `model` in place with AdamW and cosine decay; returns the loss per step."""
    if steps <= 0:
        return []
    eot = end_of_turn_id(tokenizer)
    encoded = [encode_conversation(tokenizer, c, eot) for c in conversations]
    rng = random.Random(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, 0.5 * (1 + math.cos(math.pi * s / steps)))
    )
    model.train()
    losses = []
    for _ in (bar := progress(range(steps), desc="pretrain")):
        rows = [encoded[rng.randrange(len(encoded))] for _ in range(batch_size)]
        batch = collate_lm([r[0] for r in rows], [r[1] for r in rows], pad_id(tokenizer))
        out = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]
        )
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(out.loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    return losses


def record_text(r: dict) -> str:
    """All text of a benchmark record: task, plan, solution, (ALFWorld) observation and expert turns."""
    parts = [str(r.get(k, "")) for k in ("problem", "plan", "solution", "observation")]
    return " ".join(parts + [t["value"] for t in r.get("trajectory", [])])


def run_tokenizer(data_dirs, out, vocab: str = "toy") -> str:
    """Train the embedded default's word-level tokenizer on every benchmark folder's text, or
    build a paper model's real one (`vocab` qwen2.5 or llama3.1, interlat.text.vocab)."""
    from interlat.atomic import atomic_dir

    if vocab != "toy":
        from interlat.text.vocab import build_vocab_tokenizer

        tok = build_vocab_tokenizer(vocab)
        with atomic_dir(out) as tmp:
            tok.save_pretrained(tmp)
        return f"{vocab} vocabulary {len(tok)} -> {out}"
    if not data_dirs:
        from interlat.errors import InterlatError

        raise InterlatError("--data: required with --vocab toy (the word-level vocabulary is trained on it)")
    from interlat.data import load_tasks
    from interlat.text.prompts import (
        ALFWORLD_PHRASES,
        PLAN_SENTENCE,
        PLANNER_INSTRUCTION,
        STUDENT_PREFIX,
    )
    from interlat.text.tokenizer import build_tokenizer

    corpus = [record_text(r) for d in data_dirs for r in load_tasks(d)]
    corpus += [*PLANNER_INSTRUCTION.values(), PLAN_SENTENCE, STUDENT_PREFIX, *ALFWORLD_PHRASES]
    tok = build_tokenizer(corpus)
    with atomic_dir(out) as tmp:
        tok.save_pretrained(tmp)
    return f"vocabulary {len(tok)} -> {out}"


def pretraining_conversations(folders) -> list[list[dict]]:
    """(planner prompt -> reference plan) conversations of the train split of each benchmark folder."""
    from pathlib import Path

    from interlat.errors import InterlatError
    from interlat.jsonl import read_jsonl

    conversations = []
    for folder in folders:
        records = [r for r in read_jsonl(Path(folder) / "train.jsonl") if r.get("plan")]
        if not records:
            raise InterlatError(f"{folder}/train.jsonl: field \"plan\": no record has a reference plan")
        for bench in sorted({r.get("benchmark", "math") for r in records}):  # each with its planner prompt
            conversations += plan_conversations([r for r in records if r.get("benchmark", "math") == bench], bench)
    return conversations


def run_models(*, arch, tok_dir, snapshot, hidden_size, layers, heads, kv_heads, intermediate_size, max_positions,
               pretrain_data, pretrain_steps, batch_size, lr, seed, out, shape="", width_divisor=1) -> str | None:
    """Build a tiny model or a paper `shape` (pretrained as the sender when `pretrain_steps`), or
    link a downloaded `snapshot` (the shared cache of `interlat.hub`: nothing is copied)."""
    import json

    from interlat.atomic import atomic_dir
    from interlat.errors import InterlatError

    if snapshot:
        from interlat.hub import link_snapshot

        return f"{link_snapshot(snapshot, out)} files of {snapshot} linked -> {out}"
    if tok_dir is None or not (tok_dir / "tokenizer_config.json").is_file():
        raise InterlatError(f"{tok_dir}: file \"tokenizer_config.json\": missing (--tokenizer)")
    from interlat.model.build import build_model, build_shaped
    from interlat.text.tokenizer import load_tokenizer

    tok = load_tokenizer(tok_dir)
    if shape:  # the paper model's architecture; only the depth and the width divisor are ours
        model = build_shaped(shape, layers=layers, width_divisor=width_divisor, tokenizer=tok, seed=seed)
    else:
        model = build_model(
            arch, vocab_size=len(tok), pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
            hidden_size=hidden_size, num_layers=layers, num_heads=heads, num_kv_heads=kv_heads,
            intermediate_size=intermediate_size, max_positions=max_positions, seed=seed,
        )  # fmt: skip
    losses = []
    if pretrain_steps:
        if not pretrain_data:
            raise InterlatError("--pretrain-data: required with --pretrain-steps > 0")
        conversations = pretraining_conversations(pretrain_data)
        losses = pretrain(model, tok, conversations, steps=pretrain_steps, batch_size=batch_size, lr=lr, seed=seed)
    from pathlib import Path

    from interlat.model.card import write_card

    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / "pretrain_loss.json").write_text(json.dumps([round(x, 5) for x in losses]))
        write_card(tmp, "sender" if losses else "model", name=Path(out).name, data={"pretrain_data": pretrain_data},
                   settings=dict(arch=arch, hidden_size=hidden_size, layers=layers, heads=heads,
                                 kv_heads=kv_heads, intermediate_size=intermediate_size, max_positions=max_positions,
                                 pretrain_steps=pretrain_steps, batch_size=batch_size, lr=lr, seed=seed),
                   metrics={"final_pretrain_loss": round(sum(losses[-10:]) / len(losses[-10:]), 5) if losses else None})
    return f"{model.config.model_type} {sum(p.numel() for p in model.parameters())} parameters -> {out}"
