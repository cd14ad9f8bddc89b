"""Conversations to token ids and labels with the model's own chat template (docs/method.md section 2).

Only assistant content and its end-of-turn token are supervised; everything else (system
and user turns, the template's control tokens, the generation prompt) gets label -100. The
assistant span of turn i is found by rendering the conversation up to turn i with and
without the turn, so it works for any template whose rendering is prefix-stable
(ChatML/Qwen, LLaMA-3).
"""

from transformers import PreTrainedTokenizerBase

from interlat.errors import InterlatError

IGNORE = -100


def render_ids(tokenizer: PreTrainedTokenizerBase, messages: list[dict], generation: bool) -> list[int]:
    """Token ids of `messages` under the tokenizer's chat template."""
    if not tokenizer.chat_template:
        raise InterlatError(f"{tokenizer.name_or_path}: field \"chat_template\": missing")
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, add_generation_prompt=generation, return_dict=True
    )
    return list(out["input_ids"])


def end_of_turn_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The token that closes an assistant turn: the template's, found by rendering one turn."""
    msgs = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    head = render_ids(tokenizer, msgs[:1], generation=True)
    full = render_ids(tokenizer, msgs, generation=False)
    body = tokenizer("b", add_special_tokens=False)["input_ids"]
    tail = full[len(head) + len(body) :]
    # control tokens outside the named special ones (LLaMA-3's <|eot_id|>) count too
    special = set(tokenizer.all_special_ids) | {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    for tid in tail:
        if tid in special:
            return tid
    return tokenizer.eos_token_id


def stop_ids(tokenizer: PreTrainedTokenizerBase, model=None) -> set[int]:
    """The token ids that end a generated turn: EOS, the template's end of turn, the model's EOS.

    One set for every decode loop (collection, MATH answers, ALFWorld steps): a chat model's
    end of turn need not be its EOS (Qwen2.5 base: `<|im_end|>` vs `<|endoftext|>`; LLaMA-3.1:
    `<|eot_id|>` vs `<|end_of_text|>`), and a turn that ran past it would be graded or fed back.
    `model`'s `generation_config.eos_token_id` (an int or a list) is added when given.
    """
    ids = {end_of_turn_id(tokenizer)}
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    config_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if config_eos is not None:
        ids |= {config_eos} if isinstance(config_eos, int) else set(config_eos)
    ids.discard(None)
    return ids


def encode_conversation(
    tokenizer: PreTrainedTokenizerBase, messages: list[dict], eot_id: int | None = None
) -> tuple[list[int], list[int]]:
    """(input_ids, labels) for a conversation; labels supervise assistant content + end of turn."""
    eot_id = end_of_turn_id(tokenizer) if eot_id is None else eot_id
    ids: list[int] = []
    labels: list[int] = []
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant":
            continue
        head = render_ids(tokenizer, messages[:i], generation=True)
        full = render_ids(tokenizer, messages[: i + 1], generation=False)
        if full[: len(ids)] != ids or head[: len(ids)] != ids:
            raise InterlatError(f"turn {i}: field \"chat_template\": rendering is not prefix-stable")
        span = full[len(head) :]
        cut = span.index(eot_id) + 1 if eot_id in span else len(span)
        labels += [IGNORE] * (len(head) - len(ids)) + span[:cut] + [IGNORE] * (len(span) - cut)
        ids = full
    if len(labels) < len(ids):
        labels += [IGNORE] * (len(ids) - len(labels))
    return ids, labels
