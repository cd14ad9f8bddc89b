"""The three Interlat tokens get fresh, trainable embedding rows at the real vocabularies (docs/method.md section 3).

Qwen2.5's matrix has spare rows past its 151,665 tokens (151,936 for 0.5B), so `<bop>`,
`<eop>` and `<FIRST_HUMAN_END>` land on existing rows: they must still be re-initialised, never
keep the spare rows' values. LLaMA-3.1's matrix is full (128,256), so it grows.
"""

import pytest
import torch

from interlat.model.receiver import add_special_tokens
from interlat.text.batching import pad_id
from interlat.text.prompts import SPECIAL_TOKENS
from tests.chat_vocabs import llama_like, qwen_like, real
from tests.helpers import tiny_lm

FAMILIES = {"qwen2.5": lambda: real("qwen2.5"), "llama3.1": lambda: real("llama3.1"),
            "qwen2.5-like": qwen_like, "llama3.1-like": llama_like}
ALL = [pytest.param("qwen2.5", marks=pytest.mark.slow), pytest.param("llama3.1", marks=pytest.mark.slow),
       "qwen2.5-like", "llama3.1-like"]


@pytest.mark.parametrize("family", ALL)
@pytest.mark.parametrize("tied", [True, False])
def test_special_tokens_get_fresh_trainable_rows_even_on_spare_rows(family, tied):
    tok = FAMILIES[family]()
    n_tokens, rows = len(tok), len(tok) + tok.spare_rows
    lm = tiny_lm(vocab_size=rows, pad_token_id=pad_id(tok), eos_token_id=tok.eos_token_id)
    if not tied:
        lm.lm_head = torch.nn.Linear(32, rows, bias=False)
        lm.config.tie_word_embeddings = False
    with torch.no_grad():  # spare rows holding values far from any real token's
        for m in {id(x.weight): x.weight for x in (lm.get_input_embeddings(), lm.get_output_embeddings())}.values():
            m[n_tokens:] = 5.0
    before = lm.get_input_embeddings().weight.detach().clone()
    ids = add_special_tokens(tok, lm)
    new = sorted(ids.values())
    assert set(ids) == set(SPECIAL_TOKENS) and new == list(range(n_tokens, n_tokens + 3))
    for layer in (lm.get_input_embeddings(), lm.get_output_embeddings()):
        W = layer.weight
        assert W.shape[0] == max(rows, n_tokens + 3)
        real_mean = W[:n_tokens].detach().mean(0)
        for i in new:
            torch.testing.assert_close(W[i].detach(), real_mean)  # fresh: the real tokens' mean
            assert (W[i] - 5.0).abs().min() > 1.0  # nothing left of the spare row
        if W.shape[0] > n_tokens + 3:  # the other spare rows are left alone
            assert (W[n_tokens + 3 :] == 5.0).all()
    torch.testing.assert_close(lm.get_input_embeddings().weight[:n_tokens], before[:n_tokens])
    # trainable: a step on a sequence using them moves exactly those rows' input embeddings
    lm.train()
    x = torch.tensor([[new[0], 10, new[2], new[1], 11]])
    lm(input_ids=x, labels=x).loss.backward()
    grad = lm.get_input_embeddings().weight.grad
    assert lm.get_input_embeddings().weight.requires_grad
    assert all(grad[i].abs().sum() > 0 for i in new)
