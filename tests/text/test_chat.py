"""Chat-template supervision: only assistant content and its end-of-turn token (docs/method.md section 2)."""

from transformers import AutoTokenizer

from interlat.text.chat import IGNORE, encode_conversation, end_of_turn_id


def test_only_assistant_content_and_end_of_turn_are_supervised(tiny):
    tok = AutoTokenizer.from_pretrained(tiny["tokenizer"])
    msgs = [
        {"role": "user", "content": "Solve for $x$: $2x+3=7$."},
        {"role": "assistant", "content": "\\boxed{2}"},
        {"role": "user", "content": "Nothing happens."},
        {"role": "assistant", "content": "\\boxed{3}"},
    ]
    ids, labels = encode_conversation(tok, msgs)
    assert len(ids) == len(labels)
    sup = [t for t, lab in zip(ids, labels, strict=True) if lab != IGNORE]
    eot = end_of_turn_id(tok)
    assert eot == tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.decode(sup) == "\\boxed{2}<|im_end|>\\boxed{3}<|im_end|>"
    # template control tokens (turn starts, role names) are never supervised
    start = tok.convert_tokens_to_ids("<|im_start|>")
    assert all(lab == IGNORE for t, lab in zip(ids, labels, strict=True) if t == start)


def test_tokenizer_in_a_model_folder_loads_as_itself(tiny):
    """A Qwen2 model folder must not turn our word-level tokenizer into a Qwen2Tokenizer."""
    from interlat.text.tokenizer import load_tokenizer

    text = "Provide a plan only, not the final answer. Solve for $x$: $2x+3=7$."
    a = load_tokenizer(tiny["tokenizer"])(text)["input_ids"]
    b = load_tokenizer(tiny["sender"])(text)["input_ids"]
    assert a == b and AutoTokenizer.from_pretrained(tiny["tokenizer"]).unk_token_id not in a
