"""Cross-family: a Qwen2-architecture sender into a LLaMA-architecture receiver of another width."""

import json

import polars as pl
import pytest

import interlat
from tests.helpers import run_cli

pytestmark = pytest.mark.slow


def test_llama_receiver_trains_and_evaluates_through_the_projection(tiny, tmp_path):
    sender_cfg = json.loads((tiny["sender"] / "config.json").read_text())
    llama_cfg = json.loads((tiny["llama"] / "config.json").read_text())
    assert sender_cfg["model_type"] == "qwen2" and llama_cfg["model_type"] == "llama"
    assert sender_cfg["hidden_size"] != llama_cfg["hidden_size"]
    ckpt = tmp_path / "cross_family"
    run_cli("train", "--base", tiny["llama"], "--conversations", tiny["convert"] / "train.jsonl",
            "--latents", tiny["latents"], "--steps", 3, "--batch-size", 2,
            "--work-dir", tmp_path / "w", "--log-csv", tmp_path / "log.csv", "--out", ckpt)
    model, _ = interlat.load_receiver(ckpt)
    assert model.adapter.proj is not None
    assert (model.adapter.proj.in_features, model.adapter.proj.out_features) == (
        sender_cfg["hidden_size"], llama_cfg["hidden_size"])
    out = tmp_path / "cross_family.parquet"
    run_cli("evaluate", "--receiver", ckpt, "--conversations", tiny["convert"] / "test.jsonl",
            "--latents", tiny["latents"], "--variant", "cross_family", "--work-dir", tmp_path / "we", "--out", out)
    records = pl.read_parquet(out)
    assert records.height > 0 and (records["variant"] == "cross_family").all()
    assert (records["message_rows"] > 0).all()
