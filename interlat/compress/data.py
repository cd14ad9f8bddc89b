"""The student's inputs and the compression batches (docs/method.md section 4).

The student reads `STUDENT_PREFIX` followed by the teacher's prompt up to (not including) the
marker, as token ids of the shared tokenizer. Training samples are the receiver's samples
(`interlat.train.samples.build_samples`, mode "interlat": the conversation and the dataset's
message, capped at the teacher's `prepended_length`, never at K), split into a training and
an evaluation part by a seeded shuffle of the task ids.
"""

import math
import random

import torch

from interlat.errors import InterlatError
from interlat.text.batching import left_padded_prompts, pad_id
from interlat.text.chat import render_ids
from interlat.text.prompts import MARKER, STUDENT_PREFIX, receiver_first_turn
from interlat.train.samples import Sample, collate


def prefix_ids(tokenizer) -> list[int]:
    return tokenizer(STUDENT_PREFIX, add_special_tokens=False)["input_ids"]


def teacher_prompt_ids(tokenizer, task: str) -> list[int]:
    """The teacher's first human turn for `task` (with the marker), rendered for generation."""
    return render_ids(tokenizer, [{"role": "user", "content": receiver_first_turn(task)}], generation=True)


def student_prompt(tokenizer, teacher_ids: list[int], vocab_size: int, where: str) -> list[int]:
    """STUDENT_PREFIX + teacher_ids up to the marker; every id must exist in the student."""
    marker = tokenizer.convert_tokens_to_ids(MARKER)
    if teacher_ids.count(marker) != 1:
        raise InterlatError(f"{where}: field \"{MARKER}\": {teacher_ids.count(marker)} markers, expected 1")
    ids = prefix_ids(tokenizer) + teacher_ids[: teacher_ids.index(marker)]
    if max(ids) >= vocab_size:
        raise InterlatError(
            f"{where}: token id {max(ids)}: outside the student's vocabulary of {vocab_size} "
            "(the student must share the teacher's tokenizer)"
        )
    return ids


def student_inputs(tokenizer, prompts: list[list[int]], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded (ids [B, S], mask [B, S]) of student prompts."""
    return left_padded_prompts(tokenizer, prompts, device)


@torch.no_grad()
def emit(student, tokenizer, teacher_ids: list[list[int]], K: int, where: str = "tasks") -> list[torch.Tensor]:
    """The student's K latents for each teacher prompt, as float32 CPU tensors [K, d]."""
    vocab = student.lm.get_input_embeddings().weight.shape[0]
    prompts = [student_prompt(tokenizer, ids, vocab, f"{where}: row {i}") for i, ids in enumerate(teacher_ids, 1)]
    ids, mask = student_inputs(tokenizer, prompts, student.device)
    Z = student.generate_latents(ids, mask, K)
    return [z.float().cpu() for z in Z]


def split(samples: list[Sample], fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """(train, eval): ceil(fraction * n) samples (at least 1 when fraction > 0) held out by task id."""
    if fraction <= 0 or len(samples) < 2:
        return list(samples), []
    ids = sorted(s.task_id for s in samples)
    random.Random(f"{seed}:eval-split").shuffle(ids)
    held = set(ids[: min(max(math.ceil(fraction * len(ids)), 1), len(ids) - 1)])
    return [s for s in samples if s.task_id not in held], [s for s in samples if s.task_id in held]


def make_batch(samples: list[Sample], tokenizer, vocab_size: int, device) -> dict:
    """The teacher batch (`interlat.train.samples.collate`) plus the student's left-padded prompts."""
    batch = collate(samples, pad_id(tokenizer))
    prompts = [student_prompt(tokenizer, s.ids, vocab_size, f"task {s.task_id}") for s in samples]
    batch["student_ids"], batch["student_mask"] = student_inputs(tokenizer, prompts, "cpu")
    return {k: v.to(device) for k, v in batch.items()}
