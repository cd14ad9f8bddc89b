"""Shared fixtures: a tiny end-to-end world (data, tokenizer, models, messages, conversations).

Built once per session through the real CLI commands, in-process (click's CliRunner).
"""

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from interlat.cli import main

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def tiny_lm(arch: str = "qwen2", *, vocab_size: int, pad_token_id: int = 0, eos_token_id: int = 1,
            seed: int = 0, max_positions: int = 256):
    """A 2-layer, 32-wide random-init transformers model (fp32), the tests' smallest real LM."""
    from interlat.model.build import build_model

    return build_model(arch, vocab_size=vocab_size, pad_token_id=pad_token_id, eos_token_id=eos_token_id,
                       hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=64,
                       max_positions=max_positions, seed=seed)


def run_cli(*args: str, expect: int = 0):
    """Invoke `interlat ARGS` in-process; assert the exit code; return the result."""
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=expect != 0)
    assert result.exit_code == expect, (result.output, result.exception)
    return result


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """Paths of a tiny world: data, tokenizer, sender/receiver/llama models, latents, conversations."""
    root = tmp_path_factory.mktemp("tiny")
    p = {k: root / k for k in ("data", "tokenizer", "sender", "receiver", "llama", "latents", "convert")}
    run_cli("data", "--n-train", 24, "--n-test", 8, "--subjects", "algebra", "--out", p["data"])
    run_cli("tokenizer", "--data", p["data"], "--out", p["tokenizer"])
    common = ["--tokenizer", p["tokenizer"], "--hidden-size", 32, "--layers", 1, "--heads", 4,
              "--kv-heads", 2, "--intermediate-size", 64]
    run_cli("models", *common, "--pretrain-data", p["data"], "--pretrain-steps", 20, "--out", p["sender"])
    run_cli("models", *common, "--seed", 1, "--out", p["receiver"])
    run_cli("models", "--arch", "llama", "--tokenizer", p["tokenizer"], "--hidden-size", 24, "--layers", 1,
            "--heads", 4, "--kv-heads", 2, "--intermediate-size", 48, "--seed", 2, "--out", p["llama"])
    run_cli("collect", "--sender", p["sender"], "--data", p["data"], "--subject", "algebra",
            "--batch-size", 8, "--max-new-tokens", 12, "--work-dir", root / "work" / "collect",
            "--out", p["latents"])
    run_cli("convert", "--latents", p["latents"], "--data", p["data"], "--no-strict", "--out", p["convert"])
    p["receiver_ckpt"] = root / "receiver_ckpt"
    run_cli("train", "--base", p["receiver"], "--conversations", p["convert"] / "train.jsonl",
            "--latents", p["latents"], "--steps", 2, "--batch-size", 2, "--prepended-length", 16,
            "--work-dir", root / "work" / "train", "--log-csv", root / "train.csv", "--out", p["receiver_ckpt"])
    p["root"] = root
    return p


@pytest.fixture(scope="session")
def teacher(tiny, tmp_path_factory):
    """A trained (2 steps) interlat receiver on the tiny world: the teacher."""
    root = tmp_path_factory.mktemp("teacher")
    run_cli("train", "--base", tiny["receiver"], "--conversations", tiny["convert"] / "train.jsonl",
            "--latents", tiny["latents"], "--steps", 2, "--batch-size", 4, "--work-dir", root / "work",
            "--log-csv", root / "log.csv", "--out", root / "teacher")
    return root / "teacher"
