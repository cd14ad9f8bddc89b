"""Sender pretraining: chat-formatted (task -> plan) pairs, loss on the plan only, seeded, falling."""

import torch

from interlat.data.math import generated as math_generated
from interlat.models import plan_conversations, pretrain
from interlat.text.chat import IGNORE, encode_conversation, end_of_turn_id
from interlat.text.prompts import PLANNER_INSTRUCTION
from interlat.text.tokenizer import build_tokenizer
from tests.helpers import tiny_lm

RECORDS = math_generated.generate(seed=0, n_train=16, n_test=2, subjects=("Algebra",))


def setup():
    tok = build_tokenizer([r["problem"] + " " + r["plan"] for r in RECORDS] + [PLANNER_INSTRUCTION["math"]])
    model = tiny_lm(vocab_size=len(tok), pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    return model, tok


def test_plan_conversations_ask_for_a_plan_and_answer_with_it():
    conv = plan_conversations(RECORDS[:1], "math")[0]
    assert [m["role"] for m in conv] == ["user", "assistant"]
    assert conv[0]["content"].startswith(PLANNER_INSTRUCTION["math"]) and conv[1]["content"] == RECORDS[0]["plan"]


def test_only_the_plan_is_supervised():
    _, tok = setup()
    ids, labels = encode_conversation(tok, plan_conversations(RECORDS[:1], "math")[0], end_of_turn_id(tok))
    supervised = tok.decode([i for i, lab in zip(ids, labels, strict=True) if lab != IGNORE])
    assert RECORDS[0]["problem"] not in supervised and PLANNER_INSTRUCTION["math"].split()[0] not in supervised
    assert "".join(RECORDS[0]["plan"].split()) in "".join(supervised.split())


def test_pretraining_is_seeded_and_the_loss_falls():
    runs = []
    for _ in range(2):
        model, tok = setup()
        runs.append(pretrain(model, tok, plan_conversations(RECORDS, "math"), steps=30, batch_size=8, lr=3e-3, seed=0))
    assert runs[0] == runs[1]
    assert sum(runs[0][-5:]) / 5 < 0.8 * sum(runs[0][:5]) / 5
    assert not model.training and all(torch.isfinite(p).all() for p in model.parameters())
