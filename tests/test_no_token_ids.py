"""No Qwen or LLaMA token id is written into the package (docs/method.md section 6).

The reference hard-coded Qwen's 151644/151645/198; every id here must come from the tokenizer
(`interlat.text.chat.stop_ids`, `end_of_turn_id`, `convert_tokens_to_ids`). Qwen2.5's control
tokens sit at 151643-151664, LLaMA-3.1's at 128000-128255; digit separators are ignored.
"""

import re

from tests.helpers import REPO

#: Qwen2.5 control ids (1516xx) and LLaMA-3's first control ids (1280xx), with or without `_`
TOKEN_ID = re.compile(r"(?<![\d_])(?:1516\d\d|1280\d\d)(?![\d_])")
SCANNED = ("interlat", "workflow", "config")


def hard_coded_ids(text: str) -> list[str]:
    return TOKEN_ID.findall(re.sub(r"(?<=\d)_(?=\d)", "", text))


def test_pattern_finds_ids_in_any_spelling():
    assert hard_coded_ids("eos = 151645; bos=128_000; x = [151643]") == ["151645", "128000", "151643"]
    assert hard_coded_ids("vocab_size=151_936, 128_256 rows, 1516450, 2151645") == []


def test_package_holds_no_qwen_or_llama_token_id():
    found = []
    for folder in SCANNED:
        for path in sorted((REPO / folder).rglob("*")):
            if path.suffix in (".py", ".yaml", ".yml", ".smk", ".json", ".jinja") or path.name == "Snakefile":
                for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                    if hard_coded_ids(line):
                        found.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not found, "\n".join(found)
