"""Supervised pretraining of the embedded default's tiny sender on (task -> plan) pairs.

The tiny sender must write real plans so that its latent messages carry information; it is
trained here, inside the pipeline, with next-token cross-entropy on the assistant turns of
chat-formatted (planner prompt -> reference plan) conversations.
"""

import logging
import math
import random

import torch
from tqdm import tqdm

from interlat.text.batching import collate_lm
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
    for _ in (bar := tqdm(range(steps), desc="pretrain", mininterval=2.0)):
        rows = [encoded[rng.randrange(len(encoded))] for _ in range(batch_size)]
        batch = collate_lm([r[0] for r in rows], [r[1] for r in rows], tokenizer.pad_token_id)
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
