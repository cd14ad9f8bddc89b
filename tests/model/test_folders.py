"""Broken model, tokenizer, receiver and student folders: one line naming the file (and key), exit 2.

Each case copies a folder of the tiny world, breaks one file and runs the real command
(`interlat.model.folders` checks every folder before anything loads it).
"""

import json
import re
import shutil
from pathlib import Path

import pytest

from interlat.text.prompts import STUDENT_PREFIX
from tests.helpers import REPO, nothing_written, run_cli
from tests.helpers import assert_clean_error as clean_error


def truncate(f: Path) -> None:
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def damage_header(f: Path) -> None:
    data = bytearray(f.read_bytes())
    data[8:12] = b"[!!!"  # the JSON header starts after its 8-byte length
    f.write_bytes(bytes(data))


def drop_key(key: str):
    def go(f: Path) -> None:
        cfg = json.loads(f.read_text())
        del cfg[key]
        f.write_text(json.dumps(cfg))

    return go


def not_json(f: Path) -> None:
    f.write_text("{not json")


def remove(f: Path) -> None:
    f.unlink()


RECEIVER_FAULTS = {
    "truncated_adapter": ("adapter.safetensors", truncate, ["adapter.safetensors", "truncated"]),
    "truncated_model": ("model.safetensors", truncate, ["model.safetensors", "truncated"]),
    "damaged_model_header": ("model.safetensors", damage_header, ["model.safetensors"]),
    "interlat_json_missing_a_key": ("interlat.json", drop_key("adapter_heads"), ["interlat.json", '"adapter_heads"']),
    "interlat_json_not_json": ("interlat.json", not_json, ["interlat.json", "not valid JSON"]),
    "tokenizer_config_not_json": ("tokenizer_config.json", not_json, ["tokenizer_config.json", "not valid JSON"]),
    "missing_config": ("config.json", remove, ['"config.json"', "missing"]),
    "missing_weights": ("model.safetensors", remove, ['"model.safetensors"', "missing"]),
}


@pytest.mark.parametrize("fault", sorted(RECEIVER_FAULTS))
def test_broken_receiver_checkpoint(tiny, tmp_path, fault):
    name, breaks, needles = RECEIVER_FAULTS[fault]
    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny["receiver_ckpt"], ckpt)
    breaks(ckpt / name)
    out = tmp_path / "o.parquet"
    r = run_cli("evaluate", "--receiver", ckpt, "--conversations", tiny["convert"] / "test.jsonl",
                "--latents", tiny["latents"], "--variant", "interlat", "--work-dir", tmp_path / "w", "--out", out,
                expect=2)
    clean_error(r, *needles)
    assert nothing_written(out)


def fake_student(tiny, dest: Path) -> Path:
    """A student-shaped folder (the sender LM, student.json, student.safetensors) for folder checks."""
    import torch
    from safetensors.torch import save_file

    shutil.copytree(tiny["sender"], dest)
    (dest / "student.json").write_text(json.dumps({"K": 8, "hidden_size": 32, "out_dim": 32, "prefix": STUDENT_PREFIX}))
    save_file({"lat_bos": torch.zeros(32)}, dest / "student.safetensors")
    return dest


STUDENT_FAULTS = {
    "student_json_missing_K": ("student.json", drop_key("K"), ["student.json", '"K"']),
    "student_json_not_json": ("student.json", not_json, ["student.json", "not valid JSON"]),
    "truncated_student_weights": ("student.safetensors", truncate, ["student.safetensors"]),
    "truncated_student_lm": ("model.safetensors", truncate, ["model.safetensors"]),
}


@pytest.mark.parametrize("fault", sorted(STUDENT_FAULTS))
def test_broken_student_checkpoint(tiny, tmp_path, fault):
    name, breaks, needles = STUDENT_FAULTS[fault]
    student = fake_student(tiny, tmp_path / "student")
    breaks(student / name)
    out = tmp_path / "o.parquet"
    r = run_cli("evaluate", "--receiver", tiny["receiver_ckpt"], "--conversations", tiny["convert"] / "test.jsonl",
                "--latents", tiny["latents"], "--student", student, "--variant", "compressed_8",
                "--work-dir", tmp_path / "w", "--out", out, expect=2)
    clean_error(r, *needles)
    assert nothing_written(out)


def test_broken_base_and_sender_models(tiny, tmp_path):
    """`train --base` and `collect --sender` check their model folders the same way."""
    base = tmp_path / "base"
    shutil.copytree(tiny["receiver"], base)
    (base / "config.json").unlink()
    out = tmp_path / "ckpt"
    r = run_cli("train", "--base", base, "--conversations", tiny["convert"] / "train.jsonl", "--latents", tiny["latents"],
                "--steps", 1, "--work-dir", tmp_path / "w", "--log-csv", tmp_path / "l.csv", "--out", out, expect=2)
    clean_error(r, '"config.json"', "missing")
    assert nothing_written(out)
    sender = tmp_path / "sender"
    shutil.copytree(tiny["sender"], sender)
    damage_header(sender / "model.safetensors")
    out = tmp_path / "lat"
    r = run_cli("collect", "--sender", sender, "--data", tiny["data"], "--subject", "algebra",
                "--work-dir", tmp_path / "wc", "--out", out, expect=2)
    clean_error(r, "model.safetensors")
    assert nothing_written(out)


def test_malformed_tokenizer_config(tiny, tmp_path):
    tok = tmp_path / "tok"
    shutil.copytree(tiny["tokenizer"], tok)
    not_json(tok / "tokenizer_config.json")
    out = tmp_path / "m"
    r = run_cli("models", "--tokenizer", tok, "--hidden-size", 32, "--heads", 4, "--kv-heads", 2, "--out", out, expect=2)
    clean_error(r, "tokenizer_config.json", "line 1")
    assert nothing_written(out)


@pytest.mark.parametrize(("args", "needles"), [
    (["--heads", 5, "--kv-heads", 2], ["--heads", "5", "--kv-heads 2"]),
    (["--hidden-size", 30, "--heads", 4, "--kv-heads", 2], ["--hidden-size", "30", "--heads 4"]),
])
def test_head_ratio_refused_before_building(tiny, tmp_path, args, needles):
    out = tmp_path / "m"
    r = run_cli("models", "--tokenizer", tiny["tokenizer"], *args, "--out", out, expect=2)
    clean_error(r, *needles)
    assert nothing_written(out)


def test_nothing_loads_remote_code_or_pickles():
    """No `trust_remote_code` anywhere in the package, and every `torch.load` is `weights_only=True`."""
    for f in sorted((REPO / "interlat").rglob("*.py")):
        text = f.read_text()
        assert "trust_remote_code" not in text, f"{f}: trust_remote_code"
        for call in re.finditer(r"torch\.load\(([^)]*)\)", text):
            assert "weights_only=True" in call.group(1), f"{f}: {call.group(0)}"
