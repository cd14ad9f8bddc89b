"""Checks of model, tokenizer, receiver and student folders before anything loads them.

Every loader goes through here (`load_lm`, `interlat.text.tokenizer.load_tokenizer`,
`interlat.load_receiver`, `interlat.load_student`), so a broken folder gives one line naming
the file (and key) instead of a traceback from transformers or safetensors: a missing
`config.json` or weights, a truncated `*.safetensors` or a damaged header (read with
safetensors' `safe_open`, which checks that the header covers the whole file), a JSON file
that does not parse or misses a key. Weights load from safetensors only, never pickles, and
no code shipped in a folder is ever run (no remote code).
"""

import json
from pathlib import Path

from interlat.errors import InterlatError

TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json", "vocab.json", "tokenizer.model")
#: keys of a receiver's interlat.json and a student's student.json, with their types
RECEIVER_KEYS = {"token_ids": dict, "prepended_length": int, "sender_hidden_size": int,
                 "receiver_hidden_size": int, "adapter_heads": int}
STUDENT_KEYS = {"K": int, "hidden_size": int, "out_dim": int}


def reason(e: Exception) -> str:
    """The first line of a library's exception (a KeyError as the key it missed)."""
    if isinstance(e, KeyError) and e.args:
        return f"key {e.args[0]!r} missing"
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _folder(path, what: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise InterlatError(f"{path}: no such {what} folder")
    return path


def read_json(path: Path, keys: dict[str, type] | None = None) -> dict:
    """A JSON object file; each of `keys` present with its type (bools are not ints)."""
    path = Path(path)
    if not path.is_file():
        raise InterlatError(f"{path.parent}: file \"{path.name}\": missing")
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise InterlatError(f"{path}: not valid UTF-8 (byte {e.object[e.start]:#04x} at offset {e.start})") from None
    except json.JSONDecodeError as e:
        raise InterlatError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(data, dict):
        raise InterlatError(f"{path}: a JSON {type(data).__name__}, expected an object")
    for key, kind in (keys or {}).items():
        value = data.get(key)
        if value is None:
            raise InterlatError(f"{path}: field \"{key}\": missing")
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise InterlatError(f"{path}: field \"{key}\": {type(value).__name__}, expected {kind.__name__}")
    return data


def check_safetensors(path: Path) -> list[str]:
    """The tensor names of a safetensors file whose header parses and covers the whole file."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise InterlatError(f"{path.parent}: file \"{path.name}\": missing")
    try:
        with safe_open(str(path), framework="pt") as f:
            return list(f.keys())
    except SafetensorError as e:
        reason = str(e).removeprefix("Error while deserializing header: ")
        raise InterlatError(f"{path}: not a readable safetensors file ({reason}; truncated or damaged?)") from None


def check_tokenizer_dir(path) -> dict:
    """A tokenizer folder: some tokenizer file, and its JSON files parse. Returns tokenizer_config.json."""
    path = _folder(path, "tokenizer")
    if not any((path / n).is_file() for n in TOKENIZER_FILES):
        raise InterlatError(f"{path}: file \"tokenizer_config.json\": missing (no tokenizer in this folder)")
    for name in ("tokenizer.json", "special_tokens_map.json", "vocab.json"):
        if (path / name).is_file():
            read_json(path / name)
    return read_json(path / "tokenizer_config.json") if (path / "tokenizer_config.json").is_file() else {}


def check_model_dir(path, what: str = "model") -> Path:
    """An HF model folder: `config.json` (with `model_type`) and readable safetensors weights."""
    path = _folder(path, what)
    read_json(path / "config.json", {"model_type": str})
    index = path / "model.safetensors.index.json"
    if index.is_file():
        weight_map = read_json(index, {"weight_map": dict})["weight_map"]
        shards = sorted({str(v) for v in weight_map.values()})
    elif (path / "model.safetensors").is_file():
        shards = ["model.safetensors"]
    else:
        other = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt")]
        note = f" ({other[0]} is not loaded: safetensors weights only)" if other else ""
        raise InterlatError(f"{path}: file \"model.safetensors\": missing (not a {what} folder){note}")
    for shard in shards:
        check_safetensors(path / shard)
    return path


def check_receiver_dir(path) -> dict:
    """A receiver checkpoint (model folder + tokenizer + adapter + interlat.json); returns interlat.json."""
    path = _folder(path, "receiver checkpoint")
    for name in ("interlat.json", "adapter.safetensors"):
        if not (path / name).is_file():
            raise InterlatError(f"{path}: file \"{name}\": missing (not a receiver checkpoint)")
    cfg = read_json(path / "interlat.json", RECEIVER_KEYS)
    bad = [k for k, v in cfg["token_ids"].items() if not isinstance(v, int) or isinstance(v, bool)]
    if bad:
        raise InterlatError(f"{path / 'interlat.json'}: field \"token_ids\": {bad[0]!r} is not an integer id")
    check_safetensors(path / "adapter.safetensors")
    check_model_dir(path, "receiver checkpoint")
    check_tokenizer_dir(path)
    return cfg


def check_student_dir(path) -> dict:
    """A compression student (model folder + tokenizer + student.safetensors + student.json); returns student.json."""
    path = _folder(path, "student checkpoint")
    for name in ("student.json", "student.safetensors", "config.json"):
        if not (path / name).is_file():
            raise InterlatError(f"{path}: file \"{name}\": missing (not a student checkpoint)")
    cfg = read_json(path / "student.json", STUDENT_KEYS)
    check_safetensors(path / "student.safetensors")
    check_model_dir(path, "student checkpoint")
    check_tokenizer_dir(path)
    return cfg


def load_lm(path, dtype, what: str = "model"):
    """`AutoModelForCausalLM.from_pretrained` of a checked folder (safetensors only, no remote code)."""
    from transformers import AutoModelForCausalLM

    path = check_model_dir(path, what)
    try:
        return AutoModelForCausalLM.from_pretrained(path, dtype=dtype, use_safetensors=True)
    except (OSError, ValueError, KeyError) as e:
        raise InterlatError(f"{path / 'config.json'}: cannot build the model ({reason(e)})") from None
