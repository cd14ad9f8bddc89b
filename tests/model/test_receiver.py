"""Special tokens, checkpoint round trip and load_receiver (docs/method.md section 3)."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

import interlat
from interlat.errors import InterlatError
from interlat.model.adapter import LatentAdapter
from interlat.model.receiver import ADAPTER_NAME, Receiver, add_special_tokens
from interlat.text.prompts import SPECIAL_TOKENS


def test_missing_special_tokens_get_fresh_rows_not_padding_rows(tiny):
    tok = AutoTokenizer.from_pretrained(tiny["tokenizer"])
    # a tokenizer without the Interlat tokens: rebuild the vocabulary without them
    vocab = {t: i for t, i in tok.get_vocab().items() if t not in SPECIAL_TOKENS}
    assert len(vocab) < len(tok)
    lm = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tok) + 3, hidden_size=16, intermediate_size=32,
                                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1))
    before = lm.get_input_embeddings().weight.shape[0]
    pad_row = lm.get_input_embeddings().weight[tok.pad_token_id].detach().clone()
    ids = add_special_tokens(tok, lm)
    assert set(ids) == set(SPECIAL_TOKENS)
    assert tok.pad_token_id not in ids.values()
    assert lm.get_input_embeddings().weight.shape[0] >= before
    torch.testing.assert_close(lm.get_input_embeddings().weight[tok.pad_token_id], pad_row)


def test_checkpoint_round_trip_gives_identical_logits(tiny, tmp_path):
    tok = AutoTokenizer.from_pretrained(tiny["receiver"])
    lm = AutoModelForCausalLM.from_pretrained(tiny["receiver"])
    ids = add_special_tokens(tok, lm)
    rec = Receiver(lm, LatentAdapter(32, 32), ids, prepended_length=7).eval()
    rec.save(tmp_path / "ckpt", tok)
    loaded, tok2 = interlat.load_receiver(tmp_path / "ckpt")
    assert not loaded.training and loaded.prepended_length == 7
    H = torch.randn(2, 5, 32)
    lens = torch.tensor([5, 3])
    torch.testing.assert_close(rec.adapt(H, lens), loaded.adapt(H, lens))
    x = torch.tensor([[1, 2, 3, 4]])
    torch.testing.assert_close(rec.lm(x).logits, loaded.lm(x).logits)
    assert tok2.get_vocab() == tok.get_vocab()


def test_checkpoint_without_adapter_is_a_clear_error(tiny, tmp_path):
    tok = AutoTokenizer.from_pretrained(tiny["receiver"])
    lm = AutoModelForCausalLM.from_pretrained(tiny["receiver"])
    rec = Receiver(lm, LatentAdapter(32, 32), add_special_tokens(tok, lm), 8)
    rec.save(tmp_path / "ckpt", tok)
    (tmp_path / "ckpt" / ADAPTER_NAME).unlink()
    with pytest.raises(InterlatError, match="adapter.safetensors"):
        interlat.load_receiver(tmp_path / "ckpt")
