"""The paper models' architectures ("shapes") at random initialisation, depth and width reducible.

Each shape holds the published configuration values of one paper model (Qwen2.5-0.5B, the
MATH sender/receiver; Qwen2.5-7B; LLaMA-3.1-8B, the cross-family receiver): vocabulary rows,
widths, head counts, RoPE (LLaMA-3.1: theta 5e5 with the `llama3` frequency scaling), norm
epsilon, embedding tying. Only the depth (`layers`) and, through `width_divisor`, the widths
(hidden, MLP, query and key/value heads divided alike, so the head size and the GQA ratio stay
the paper's) change, so a CPU test runs the real vocabulary-sized embedding and head.
Token ids come from the tokenizer, never from here.
"""

from transformers import LlamaConfig, Qwen2Config

from interlat.errors import InterlatError

QWEN_ROPE = {"rope_type": "default", "rope_theta": 1_000_000.0}
LLAMA31_ROPE = {
    "rope_type": "llama3",
    "rope_theta": 500_000.0,
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}

SHAPES = {
    "qwen2.5-0.5b": dict(arch="qwen2", vocab_size=151_936, hidden_size=896, intermediate_size=4864,
                         num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                         max_position_embeddings=32_768, rms_norm_eps=1e-6, tie_word_embeddings=True,
                         rope_parameters=QWEN_ROPE),
    "qwen2.5-7b": dict(arch="qwen2", vocab_size=152_064, hidden_size=3584, intermediate_size=18_944,
                       num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                       max_position_embeddings=32_768, rms_norm_eps=1e-6, tie_word_embeddings=False,
                       rope_parameters=QWEN_ROPE),
    "llama3.1-8b": dict(arch="llama", vocab_size=128_256, hidden_size=4096, intermediate_size=14_336,
                        num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                        max_position_embeddings=131_072, rms_norm_eps=1e-5, tie_word_embeddings=False,
                        rope_parameters=LLAMA31_ROPE),
}  # fmt: skip

CONFIGS = {"qwen2": Qwen2Config, "llama": LlamaConfig}


def shape_config(shape: str, *, layers: int, width_divisor: int, tokenizer):
    """The transformers config of `shape` with `layers` decoder layers and widths / `width_divisor`.

    Special-token ids come from `tokenizer` (None where it has none, e.g. LLaMA-3.1's pad).
    """
    if shape not in SHAPES:
        raise InterlatError(f"--shape: {shape!r} is not one of {', '.join(SHAPES)}")
    spec = dict(SHAPES[shape])
    arch = spec.pop("arch")
    for key in ("hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads"):
        if spec[key] % width_divisor:
            raise InterlatError(f"--width-divisor: {width_divisor} does not divide {shape}'s {key} {spec[key]}")
        spec[key] //= width_divisor
    spec["num_hidden_layers"] = layers
    if len(tokenizer) > spec["vocab_size"]:
        raise InterlatError(
            f"--tokenizer: {len(tokenizer)} tokens do not fit {shape}'s {spec['vocab_size']} embedding rows"
        )
    ids = {k: getattr(tokenizer, k) for k in ("pad_token_id", "bos_token_id", "eos_token_id")}
    return arch, CONFIGS[arch](**spec, **ids)
