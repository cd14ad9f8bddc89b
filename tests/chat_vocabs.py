"""Small byte-level BPE tokenizers whose special tokens behave like Qwen2.5's and LLaMA-3.1's.

Stand-ins for the real vocabularies in tests of the special/stop/pad-token mechanics:

- `qwen_like`: ChatML template; EOS `<|endoftext|>` differs from the end of turn `<|im_end|>`;
  pad = EOS (as Qwen2.5's base models ship); `spare_rows` tells how many embedding rows a model
  should have beyond the vocabulary (Qwen2.5 has 271 spare rows);
- `llama_like`: LLaMA-3 header template; EOS `<|end_of_text|>`, end of turn `<|eot_id|>`,
  BOS `<|begin_of_text|>`, NO pad token.

The BPE merges are trained on a small corpus, so ids are real BPE ids, not a lookup table.
`real(vocab)` returns a fresh copy of the real Qwen2.5 / LLaMA-3.1 tokenizer
(`interlat.text.vocab`), with the spare rows of its paper model (`interlat.model.shapes`).
"""

import copy
import functools

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

CORPUS = [
    "Solve for x: 3x+4=19. Subtract 4 from both sides to get 3x=15. Then divide by 3.",
    "Provide a plan only, not the final answer, for the following problem.",
    "The answer is \\boxed{5}. Thought: go to the countertop 1. Action: take apple 1 from countertop 1",
    "You are in the middle of a room. Looking quickly around you, you see a cabinet 1.",
]

QWEN_CHAT = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
LLAMA_CHAT = (
    "{{ '<|begin_of_text|>' }}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


def _bpe(specials: list[str], vocab_size: int = 400) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    tok.add_special_tokens(specials)  # after the BPE vocabulary, as in the real families
    return tok


def qwen_like() -> PreTrainedTokenizerFast:
    """ChatML, EOS != end of turn, pad = EOS."""
    tok = PreTrainedTokenizerFast(
        tokenizer_object=_bpe(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]),
        eos_token="<|endoftext|>", pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    tok.chat_template = QWEN_CHAT
    tok.spare_rows = 16
    return tok


def llama_like() -> PreTrainedTokenizerFast:
    """LLaMA-3 headers, EOS != end of turn, no pad token."""
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    tok = PreTrainedTokenizerFast(
        tokenizer_object=_bpe(specials), bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>",
        additional_special_tokens=specials[2:],
    )
    tok.chat_template = LLAMA_CHAT
    tok.spare_rows = 0
    return tok


@functools.cache
def _real(vocab: str):
    from interlat.text.vocab import build_vocab_tokenizer

    return build_vocab_tokenizer(vocab)


def real(vocab: str) -> PreTrainedTokenizerFast:
    """A fresh copy (safe to add tokens to) of the real `qwen2.5` or `llama3.1` tokenizer."""
    from interlat.model.shapes import SHAPES

    tok = copy.deepcopy(_real(vocab))
    shape = {"qwen2.5": "qwen2.5-0.5b", "llama3.1": "llama3.1-8b"}[vocab]
    tok.spare_rows = SHAPES[shape]["vocab_size"] - len(tok)
    return tok
