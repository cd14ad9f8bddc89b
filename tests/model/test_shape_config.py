"""Paper shapes: the published architecture values, depth and width reducible, ids from the tokenizer."""

import pytest
import torch

from interlat.errors import InterlatError
from interlat.model.build import build_shaped
from interlat.model.shapes import shape_config


class Tok:
    """The few tokenizer attributes a shape reads (a real tokenizer is tested in tests/test_shapes.py)."""

    def __init__(self, n, pad, bos, eos):
        self.n, self.pad_token_id, self.bos_token_id, self.eos_token_id = n, pad, bos, eos

    def __len__(self):
        return self.n


QWEN_TOK = Tok(151_665, 151_643, None, 151_643)
LLAMA_TOK = Tok(128_256, None, 128_000, 128_001)


def test_qwen25_05b_is_the_published_architecture():
    arch, c = shape_config("qwen2.5-0.5b", layers=24, width_divisor=1, tokenizer=QWEN_TOK)
    assert arch == "qwen2" and c.model_type == "qwen2"
    assert (c.vocab_size, c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.intermediate_size) == (
        151_936, 896, 14, 2, 4864)
    assert c.tie_word_embeddings and c.rope_parameters["rope_theta"] == 1e6 and c.rms_norm_eps == 1e-6
    assert (c.pad_token_id, c.bos_token_id, c.eos_token_id) == (151_643, None, 151_643)


def test_qwen25_7b_vocabulary_rows():
    _, c = shape_config("qwen2.5-7b", layers=1, width_divisor=4, tokenizer=QWEN_TOK)
    assert c.vocab_size == 152_064 and not c.tie_word_embeddings
    assert (c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.intermediate_size) == (896, 7, 1, 4736)


def test_llama31_8b_rope_scaling_no_pad_and_reduced_width():
    arch, c = shape_config("llama3.1-8b", layers=1, width_divisor=8, tokenizer=LLAMA_TOK)
    assert arch == "llama" and c.vocab_size == 128_256 and not c.tie_word_embeddings
    rope = c.rope_parameters
    assert rope["rope_type"] == "llama3" and rope["rope_theta"] == 5e5 and rope["factor"] == 8.0
    assert rope["original_max_position_embeddings"] == 8192 and c.max_position_embeddings == 131_072
    assert c.pad_token_id is None and (c.bos_token_id, c.eos_token_id) == (128_000, 128_001)
    assert (c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.intermediate_size) == (512, 4, 1, 1792)
    assert c.hidden_size // c.num_attention_heads == 128 and c.num_hidden_layers == 1  # head size kept


def test_a_shaped_model_has_the_vocabulary_rows_and_runs():
    m = build_shaped("llama3.1-8b", layers=1, width_divisor=32 // 4, tokenizer=LLAMA_TOK, seed=0)
    assert m.get_input_embeddings().weight.shape == (128_256, 512)
    assert m.lm_head.weight.data_ptr() != m.get_input_embeddings().weight.data_ptr()
    with torch.no_grad():
        logits = m(input_ids=torch.tensor([[128_000, 5, 6]])).logits
    assert logits.shape == (1, 3, 128_256) and torch.isfinite(logits).all()


@pytest.mark.parametrize(("kwargs", "needle"), [
    (dict(shape="qwen2.5-3b", width_divisor=1, tokenizer=QWEN_TOK), "--shape"),
    (dict(shape="qwen2.5-0.5b", width_divisor=4, tokenizer=QWEN_TOK), "--width-divisor"),
    (dict(shape="llama3.1-8b", width_divisor=1, tokenizer=QWEN_TOK), "--tokenizer"),  # 151,665 > 128,256 rows
])  # fmt: skip
def test_bad_shape_settings_fail_in_one_line(kwargs, needle):
    with pytest.raises(InterlatError, match=needle):
        shape_config(layers=1, **kwargs)
