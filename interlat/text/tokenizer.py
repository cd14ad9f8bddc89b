"""The embedded default's tokenizer: word level, one token per digit, with a chat template.

Built with `tokenizers` on the generated corpus and wrapped as a transformers fast tokenizer,
and every stage loads tokenizers through `load_tokenizer`. It carries the Interlat special
tokens `<bop>`, `<eop>` and `<FIRST_HUMAN_END>` (docs/method.md section 3) and ChatML-style turn
tokens; whitespace is a token, so decoding restores the exact text.
"""

from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from interlat.text.prompts import SPECIAL_TOKENS

PAD, UNK, TURN_START, TURN_END = "<pad>", "<unk>", "<|im_start|>", "<|im_end|>"

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

#: words, single digits, LaTeX commands, single whitespace and single punctuation characters
_PIECES = r"[A-Za-z]+|\\[A-Za-z]+|\d|\s|[^A-Za-z\d\s]"


def build_tokenizer(corpus: list[str]) -> PreTrainedTokenizerFast:
    """Train a word-level tokenizer on `corpus` (ordered vocabulary: deterministic ids)."""
    pre = pre_tokenizers.Split(Regex(_PIECES), behavior="isolated")
    pieces: set[str] = set()
    for text in corpus:
        pieces.update(p for p, _ in pre.pre_tokenize_str(text))
    pieces.update(["user", "assistant", "system", "\n"])
    specials = [PAD, UNK, TURN_START, TURN_END, *SPECIAL_TOKENS]
    vocab = {tok: i for i, tok in enumerate(specials + sorted(pieces))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        unk_token=UNK,
        eos_token=TURN_END,
        additional_special_tokens=[TURN_START, *SPECIAL_TOKENS],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "left"
    return fast


def load_tokenizer(path: str | Path):
    """Load a tokenizer folder: ours as the generic fast tokenizer, any other with AutoTokenizer.

    AutoTokenizer picks the class from a model folder's `config.json` (a tiny Qwen2 model
    would get `Qwen2Tokenizer`, which rebuilds a byte-level BPE pipeline around our word-level
    vocabulary and mangles it), so a tokenizer saved as the generic backend is loaded as one.
    """
    from interlat.errors import InterlatError
    from interlat.model.folders import check_tokenizer_dir, reason

    cfg = check_tokenizer_dir(path)  # one line naming a missing or malformed file
    generic = cfg.get("tokenizer_class") in ("TokenizersBackend", "PreTrainedTokenizerFast")
    try:
        return (PreTrainedTokenizerFast if generic else AutoTokenizer).from_pretrained(path)
    except Exception as e:  # noqa: BLE001 (the tokenizers library raises plain Exception on a bad file)
        where = Path(path) / "tokenizer.json" if (Path(path) / "tokenizer.json").is_file() else Path(path)
        raise InterlatError(f"{where}: cannot load the tokenizer ({reason(e)})") from None
