"""Dynamic padding: lists of token ids to right-padded tensors with masks from lengths.

Batches are padded to their own longest row (never to `model_max_length`), and attention
masks come from the lengths, never from `ids != pad` (docs/method.md section 2). A tokenizer
without a pad token (LLaMA-3.1) pads with its EOS id (`pad_id`): padded positions are masked
out by length and labelled -100, so which id fills them never matters.
"""

import torch

from interlat.text.chat import IGNORE


def pad_id(tokenizer) -> int:
    """The id that fills padded positions: the pad token, else EOS, else 0 (never compared)."""
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return int(tid)
    return 0


def pad_right(rows: list[list[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(padded [B, S] long, lengths [B]) for ragged integer rows."""
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
    width = max(int(lengths.max().item()) if rows else 0, 1)
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out, lengths


def mask_from_lengths(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """[B, width] long mask, 1 for the first lengths[b] positions of each row."""
    return (torch.arange(width)[None, :] < lengths[:, None]).long()


def collate_lm(ids: list[list[int]], labels: list[list[int]], pad_id: int) -> dict:
    """A causal-LM batch: input_ids, labels (-100 on padding), attention_mask, lengths."""
    input_ids, lengths = pad_right(ids, pad_id)
    label_t, _ = pad_right(labels, IGNORE)
    return {
        "input_ids": input_ids,
        "labels": label_t,
        "attention_mask": mask_from_lengths(lengths, input_ids.shape[1]),
        "lengths": lengths,
    }


def left_padded_prompts(
    tokenizer, prompts: list[list[int]], device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token rows: (ids [B, S], mask [B, S])."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id(tokenizer), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = torch.tensor(p)
        mask[i, width - len(p) :] = 1
    return ids.to(device), mask.to(device)
