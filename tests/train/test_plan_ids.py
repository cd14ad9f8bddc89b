"""Plan tokens for the curriculum and pass P are the ids the sender produced (docs/method.md section 3).

A sender can emit a token sequence its BPE would not produce from the decoded text ("Sol" +
"ve" instead of "Solve"); re-tokenising the plan text would then give the receiver other
plan tokens than the ones whose states make up the message.
"""

from types import SimpleNamespace

import pytest
import torch

from interlat.text.prompts import SPECIAL_TOKENS, receiver_first_turn
from interlat.text.tokenizer import build_tokenizer
from interlat.train.samples import build_samples
from tests.chat_vocabs import CORPUS, llama_like, qwen_like, real

FAMILIES = {"qwen2.5": lambda: real("qwen2.5"), "llama3.1": lambda: real("llama3.1"),
            "qwen2.5-like": qwen_like, "llama3.1-like": llama_like}
ALL = [pytest.param("qwen2.5", marks=pytest.mark.slow), "qwen2.5-like", "llama3.1-like"]


def with_interlat_tokens(tok):
    tok.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS}, replace_extra_special_tokens=False)
    return tok


def sample_for(tok, stored: list[int], mode: str = "interlat"):
    plan = tok.decode(stored, skip_special_tokens=False)
    row = {"id": "t0", "task": "Solve x.", "plan": plan, "conversations": [
        {"from": "human", "value": receiver_first_turn("Solve x.")}, {"from": "gpt", "value": "5"}]}
    msg = SimpleNamespace(H=torch.randn(len(stored), 4), plan_token_ids=stored, plan=plan)
    return build_samples([row], {"t0": msg}, tok, mode, "convs", 8)[0], plan


@pytest.mark.parametrize("family", ALL)
def test_stored_non_canonical_ids_are_kept(family):
    tok = with_interlat_tokens(FAMILIES[family]())
    stored = [i for piece in ("Sol", "ve", " for", " x") for i in tok(piece, add_special_tokens=False)["input_ids"]]
    sample, plan = sample_for(tok, stored)
    canonical = tok(plan, add_special_tokens=False)["input_ids"]
    assert canonical != stored  # the case that matters: re-tokenising would change the ids
    assert sample.plan_ids == stored


def test_another_familys_ids_fall_back_to_the_text():
    sender, receiver = qwen_like(), build_tokenizer(CORPUS)  # a BPE sender, the word-level default receiver
    stored = sender("Solve for x then divide", add_special_tokens=False)["input_ids"]
    plan = sender.decode(stored)
    row = {"id": "t0", "task": "Solve x.", "plan": plan, "conversations": [
        {"from": "human", "value": receiver_first_turn("Solve x.")}, {"from": "gpt", "value": "5"}]}
    msg = SimpleNamespace(H=torch.randn(len(stored), 4), plan_token_ids=stored, plan=plan)
    sample = build_samples([row], {"t0": msg}, receiver, "interlat", "convs", 8)[0]
    assert sample.plan_ids == receiver(plan, add_special_tokens=False)["input_ids"] != stored
