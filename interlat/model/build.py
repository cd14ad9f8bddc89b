"""Tiny Qwen2- and LLaMA-architecture causal LMs for the embedded default, built locally.

Real transformers architectures (`Qwen2ForCausalLM`, `LlamaForCausalLM`) at toy sizes, saved
with `save_pretrained` so every stage loads them with `AutoModelForCausalLM.from_pretrained`.
"""

import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

ARCHITECTURES = {"qwen2": (Qwen2Config, Qwen2ForCausalLM), "llama": (LlamaConfig, LlamaForCausalLM)}


def build_model(
    arch: str,
    *,
    vocab_size: int,
    pad_token_id: int,
    eos_token_id: int,
    hidden_size: int,
    num_layers: int,
    num_heads: int,
    num_kv_heads: int,
    intermediate_size: int,
    max_positions: int,
    seed: int,
):
    """A randomly initialised causal LM of the given architecture (seeded)."""
    config_cls, model_cls = ARCHITECTURES[arch]
    config = config_cls(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_positions,
        pad_token_id=pad_token_id,
        eos_token_id=eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    return model_cls(config)


def build_shaped(shape: str, *, layers: int, width_divisor: int, tokenizer, seed: int):
    """A randomly initialised model of a paper shape (interlat.model.shapes), seeded."""
    from interlat.model.shapes import shape_config

    arch, config = shape_config(shape, layers=layers, width_divisor=width_divisor, tokenizer=tokenizer)
    torch.manual_seed(seed)
    return ARCHITECTURES[arch][1](config)
