"""Shared fixtures only (plain helpers live in tests/helpers.py): a tiny end-to-end world (data, tokenizer, models, messages, conversations).

Built once per session through the real CLI commands, in-process (click's CliRunner).
"""

import os
from pathlib import Path

import pytest

from tests.helpers import run_cli

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
