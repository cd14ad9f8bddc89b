"""Stop tokens and padding at Qwen2.5-/LLaMA-3.1-like vocabularies (docs/method.md sections 1, 2, 5).

Generation must stop at the chat template's end of turn as well as at EOS, each row on its
own; tokenizers without a pad token must work in collection, training batches and evaluation.

The models are real transformers models whose weights make them a known bigram chain: every
layer's output projections are zero (the residual stream stays the token's embedding), so the
logits are `W @ norm(E[last token])`, and the untied head W maps chosen tokens to their
successors. The stop set, not a mock, decides where each row ends.
"""

import pytest
import torch

from interlat.collect import collect_batch
from interlat.evaluate.messages import generate_with_message, prompt_ids
from interlat.model.adapter import LatentAdapter
from interlat.model.decode import Sampling, decode
from interlat.model.receiver import Receiver, add_special_tokens
from interlat.text.batching import left_padded_prompts, pad_id
from interlat.text.chat import end_of_turn_id, render_ids, stop_ids
from interlat.text.prompts import planner_messages, receiver_first_turn
from interlat.train.samples import build_samples, collate
from tests.chat_vocabs import llama_like, qwen_like, real
from tests.helpers import tiny_lm

GREEDY = Sampling(temperature=0.0, max_new_tokens=12)
FAMILIES = {"qwen2.5": lambda: real("qwen2.5"), "llama3.1": lambda: real("llama3.1"),
            "qwen2.5-like": qwen_like, "llama3.1-like": llama_like}
#: the real vocabularies (151,936- and 128,256-row models) are slow tests; the look-alikes fast
REAL = pytest.mark.slow
ALL = [pytest.param("qwen2.5", marks=REAL), pytest.param("llama3.1", marks=REAL), "qwen2.5-like", "llama3.1-like"]


def bigram_lm(tok, chain: dict[int, int]):
    """A 2-layer Qwen2 LM (with the tokenizer's spare rows) that emits chain[t] after t, else t."""
    lm = tiny_lm(vocab_size=len(tok) + tok.spare_rows, pad_token_id=pad_id(tok), eos_token_id=tok.eos_token_id)
    with torch.no_grad():
        for layer in lm.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        E = lm.get_input_embeddings().weight
        W = E / E.norm(dim=-1, keepdim=True).clamp(min=1e-6)  # the pad row is zero
        for dst in set(chain.values()):
            W[dst] = sum(3 * E[src] / E[src].norm() for src, d in chain.items() if d == dst)
        lm.lm_head = torch.nn.Linear(E.shape[1], E.shape[0], bias=False)
        lm.lm_head.weight.copy_(W)
    lm.config.tie_word_embeddings = False
    return lm.eval()


def words(tok, n: int) -> list[int]:
    """`n` distinct BPE ids of corpus words (never a special token)."""
    ids = list(dict.fromkeys(tok("Solve for x then divide the answer room", add_special_tokens=False)["input_ids"]))
    assert len(ids) >= n and not set(ids) & set(tok.all_special_ids)
    return ids[:n]


def conversation(i: int, task: str, plan: str) -> dict:
    """A converted row (`interlat convert`): first human turn with the marker, one answer."""
    return {"id": f"t{i}", "task": task, "plan": plan, "conversations": [
        {"from": "human", "value": receiver_first_turn(task)}, {"from": "gpt", "value": "The answer is 5."}]}


@pytest.mark.parametrize("family", ALL)
def test_stop_set_holds_eos_and_the_templates_end_of_turn(family):
    tok = FAMILIES[family]()
    eot = end_of_turn_id(tok)
    assert eot != tok.eos_token_id
    assert tok.convert_ids_to_tokens(eot) in ("<|im_end|>", "<|eot_id|>")
    assert stop_ids(tok) == {eot, tok.eos_token_id}


@pytest.mark.parametrize("family", ALL)
def test_decode_rows_stop_independently_at_end_of_turn(family):
    tok = FAMILIES[family]()
    eot = end_of_turn_id(tok)
    a, b, c, x, y = words(tok, 5)
    lm = bigram_lm(tok, {x: a, a: eot, y: b, b: c, c: eot})
    ids, mask = left_padded_prompts(tok, [[5, 6, x], [7, y]], "cpu")
    out = decode(lm, lm.get_input_embeddings()(ids), mask, eos_ids=stop_ids(tok, lm), cfg=GREEDY,
                 generator=torch.Generator().manual_seed(0), keep_states=True)
    assert out.tokens == [[a], [b, c]]
    assert out.finished == [True, True]
    assert [s.shape[0] for s in out.states] == [1, 2]
    # with EOS alone (the old stop set) the first row runs on to max_new_tokens
    eos_only = decode(lm, lm.get_input_embeddings()(ids), mask, eos_ids={tok.eos_token_id}, cfg=GREEDY,
                      generator=torch.Generator().manual_seed(0))
    assert len(eos_only.tokens[0]) == GREEDY.max_new_tokens


@pytest.mark.parametrize("family", ALL)
def test_collection_plans_end_at_end_of_turn_without_a_pad_token(family):
    tok = FAMILIES[family]()
    newline = render_ids(tok, planner_messages("math", "x"), True)[-1]  # last token of the generation prompt
    a, b = words(tok, 2)
    lm = bigram_lm(tok, {newline: a, a: b, b: end_of_turn_id(tok)})
    tasks = [{"task_id": f"t{i}", "problem": p, "split": "train", "subject": "algebra", "level": 1}
             for i, p in enumerate(["Solve for x: 3x+4=19.", "Then divide by 3."])]
    msgs = collect_batch(lm, tok, tasks, "math", Sampling(temperature=0.0, max_new_tokens=40), 0, "bigram")
    assert [m.plan_token_ids for m in msgs] == [[a, b], [a, b]]
    assert all(m.H.shape[0] == 2 for m in msgs)


@pytest.mark.parametrize("family", ALL)
def test_receiver_answers_end_at_end_of_turn_without_a_pad_token(family):
    tok = FAMILIES[family]()
    lm = bigram_lm(tok, {})
    ids = add_special_tokens(tok, lm)
    rows = [conversation(i, t, "Then divide.") for i, t in enumerate(["Solve for x.", "You are in a room."])]
    prompts = [prompt_ids(tok, r, plain=False) for r in rows]
    newline = prompts[0][-1]
    (a,) = words(tok, 1)
    chain = {newline: a, a: end_of_turn_id(tok)}
    with torch.no_grad():
        E = lm.get_input_embeddings().weight
        for src, dst in chain.items():
            lm.lm_head.weight[dst] = 3 * E[src] / E[src].norm()  # one source per target here
    rec = Receiver(lm, LatentAdapter(32, 32), ids, prepended_length=8).eval()
    for variant, raw in (("text", None), ("interlat", [torch.randn(5, 32), torch.randn(3, 32)])):
        out = generate_with_message(rec, tok, prompts, [r["plan"] for r in rows], raw, variant,
                                    Sampling(temperature=0.0, max_new_tokens=30), torch.Generator().manual_seed(0))
        assert [n for _, n in out] == [1, 1], variant


@pytest.mark.parametrize("family", [pytest.param("llama3.1", marks=REAL), "llama3.1-like"])
def test_padding_fill_never_changes_decode_or_training_batches(family):
    tok = FAMILIES[family]()
    assert tok.pad_token_id is None and pad_id(tok) == tok.eos_token_id
    lm = tiny_lm(vocab_size=len(tok), pad_token_id=None, eos_token_id=tok.eos_token_id).eval()
    rows = [render_ids(tok, planner_messages("math", p), True) for p in ("Solve x.", "Solve for x: 3x+4=19.")]
    ids, mask = left_padded_prompts(tok, rows, "cpu")
    other = ids.masked_fill(mask == 0, 7)  # any other fill
    cfg = Sampling(temperature=0.0, max_new_tokens=6)
    runs = [decode(lm, lm.get_input_embeddings()(x), mask, eos_ids=stop_ids(tok, lm), cfg=cfg,
                   generator=torch.Generator().manual_seed(0), keep_states=True) for x in (ids, other)]
    assert runs[0].tokens == runs[1].tokens
    for s0, s1 in zip(runs[0].states, runs[1].states, strict=True):
        torch.testing.assert_close(s0, s1, rtol=0, atol=0)
    # a training batch of a tokenizer without a pad token: masks and labels from lengths
    add_special_tokens(tok, lm)
    convs = [conversation(i, t, "Then divide.") for i, t in enumerate(["Solve x.", "Solve for x: 3x+4=19."])]
    samples = build_samples(convs, {}, tok, "text", "convs", 8)
    batch = collate(samples, pad_id(tok))
    lengths = torch.tensor([len(s.ids) for s in samples])
    assert batch["attention_mask"].sum(1).tolist() == lengths.tolist()
    assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()
