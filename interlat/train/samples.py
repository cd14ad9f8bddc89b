"""Receiver training and evaluation samples: conversations + messages, batched (docs/method.md section 2).

A sample is one conversation of the converted JSON Lines file (`interlat convert`) with its
message looked up by task_id in the shard store. The first human turn carries the marker;
`mode="none"` (the `no_cot` baseline) drops the plan sentence and the marker.
"""

from dataclasses import dataclass

import torch

from interlat.conversations import chat_messages
from interlat.errors import InterlatError
from interlat.model.insertion import pad_messages
from interlat.text.batching import mask_from_lengths, pad_right
from interlat.text.chat import IGNORE, encode_conversation, end_of_turn_id
from interlat.text.prompts import MARKER


@dataclass
class Sample:
    task_id: str
    ids: list[int]
    labels: list[int]
    marker_pos: int
    plan_ids: list[int]
    H: torch.Tensor | None


def plan_token_ids(tokenizer, plan: str, message) -> list[int]:
    """The plan's token ids for the curriculum and pass P: the ids the sender produced.

    A real BPE vocabulary does not always re-tokenise decoded text into the same ids, so the
    stored `plan_token_ids` are used whenever they belong to this tokenizer (they decode to the
    stored plan text); another family's ids (a cross-family receiver) or no message fall back
    to tokenising the text.
    """
    stored = list(message.plan_token_ids) if message is not None else []
    if stored and max(stored) < len(tokenizer) and tokenizer.decode(stored, skip_special_tokens=False) == message.plan:
        return stored
    return tokenizer(plan, add_special_tokens=False)["input_ids"]


def build_samples(rows, messages: dict, tokenizer, mode: str, where: str, prepended_length: int) -> list[Sample]:
    """Tokenise conversations; attach each row's message (first `prepended_length` rows)."""
    eot = end_of_turn_id(tokenizer)
    marker_id = tokenizer.convert_tokens_to_ids(MARKER)
    samples = []
    for i, row in enumerate(rows, 1):
        ids, labels = encode_conversation(tokenizer, chat_messages(row, mode), eot)
        pos = -1
        if mode != "none":
            if ids.count(marker_id) != 1:
                raise InterlatError(f"{where}: row {i}: field \"conversations\": {ids.count(marker_id)} markers, expected 1")
            pos = ids.index(marker_id)
        H = None
        if mode == "interlat":
            if row["id"] not in messages:
                raise InterlatError(f"{where}: row {i}: task_id {row['id']}: no message in the shards")
            H = messages[row["id"]].H[:prepended_length]
        plan_ids = plan_token_ids(tokenizer, row["plan"], messages.get(row["id"]))
        samples.append(Sample(row["id"], ids, labels, pos, plan_ids, H))
    return samples


def collate(samples: list[Sample], pad_id: int) -> dict:
    """Right-padded batch with lengths, marker positions, plans and padded messages."""
    ids, lengths = pad_right([s.ids for s in samples], pad_id)
    labels, _ = pad_right([s.labels for s in samples], IGNORE)
    plan_ids, plan_len = pad_right([s.plan_ids for s in samples], pad_id)
    batch = {
        "input_ids": ids,
        "labels": labels,
        "lengths": lengths,
        "attention_mask": mask_from_lengths(lengths, ids.shape[1]),
        "marker_pos": torch.tensor([s.marker_pos for s in samples]),
        "plan_ids": plan_ids,
        "plan_len": plan_len,
    }
    if samples[0].H is not None:
        batch["H"], batch["H_len"] = pad_messages([s.H for s in samples])
    return batch
