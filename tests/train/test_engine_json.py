"""The DeepSpeed JSON as the user's source of truth (interlat/train/engine.py) and steps from epochs."""

import json
import math

import pytest

from interlat.errors import InterlatError
from interlat.train import engine as ds
from tests.helpers import REPO

CONFIG = dict(batch_size=2, accumulation=1, world=4, max_grad_norm=3.0, lr=1e-5, weight_decay=0.0, device="cpu")


def write(tmp_path, cfg: dict):
    path = tmp_path / "ds.json"
    path.write_text(json.dumps(cfg))
    return path


def test_auto_is_filled_from_the_config(tmp_path):
    path = write(tmp_path, {"zero_optimization": {"stage": 2}, "bf16": {"enabled": "auto"}, "fp16": {"enabled": "auto"},
                            "train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto",
                            "train_batch_size": "auto", "gradient_clipping": "auto"})
    out, batching = ds.resolve(path, **{**CONFIG, "accumulation": 3})
    assert (out["train_micro_batch_size_per_gpu"], out["gradient_accumulation_steps"], out["train_batch_size"]) == (2, 3, 24)
    assert out["gradient_clipping"] == 3.0
    assert out["bf16"] == {"enabled": False} and out["fp16"] == {"enabled": False}  # CPU: fp32
    assert batching == ds.Batching(2, 3, 4) and batching.per_step == 24 and batching.global_micro == 8
    on_gpu, _ = ds.resolve(path, **{**CONFIG, "device": "cuda:0"})
    assert on_gpu["bf16"] == {"enabled": True}


def test_absent_keys_are_filled_like_auto(tmp_path):
    out, batching = ds.resolve(write(tmp_path, {"zero_optimization": {"stage": 3}}), **CONFIG)
    assert (out["train_micro_batch_size_per_gpu"], out["gradient_accumulation_steps"], out["train_batch_size"]) == (2, 1, 8)
    assert out["gradient_clipping"] == 3.0 and out["bf16"]["enabled"] is False
    assert out["zero_optimization"] == {"stage": 3}


def test_values_set_in_the_json_win_and_the_trainer_follows_them(tmp_path, caplog):
    path = write(tmp_path, {"train_micro_batch_size_per_gpu": 3, "gradient_accumulation_steps": 4,
                            "gradient_clipping": 1.5, "bf16": {"enabled": True}, "train_batch_size": 48})
    with caplog.at_level("INFO"):
        out, batching = ds.resolve(path, **CONFIG)
    assert batching == ds.Batching(3, 4, 4)
    assert out["gradient_clipping"] == 1.5 and out["bf16"] == {"enabled": True}  # on the CPU too: the user asked
    assert "train_micro_batch_size_per_gpu 3 set in the JSON wins over the config's 2" in caplog.text


def test_optimizer_section_gets_lr_and_weight_decay_from_the_config(tmp_path):
    path = write(tmp_path, {"optimizer": {"type": "AdamW", "params": {"lr": "auto", "weight_decay": 0.1, "betas": [0.9, 0.95]}}})
    out, _ = ds.resolve(path, **CONFIG)
    assert out["optimizer"] == {"type": "AdamW", "params": {"lr": 1e-5, "weight_decay": 0.1, "betas": [0.9, 0.95]}}


@pytest.mark.parametrize("cfg, says", [
    ({"train_batch_size": 10}, 'field "train_batch_size": 10, expected micro batch 2 x accumulation 1 x ranks 4 = 8'),
    ({"gradient_accumulation_steps": 0}, 'field "gradient_accumulation_steps": 0, expected a positive integer or "auto"'),
    ({"train_micro_batch_size_per_gpu": "two"}, 'field "train_micro_batch_size_per_gpu": \'two\''),
    ({"scheduler": {"type": "WarmupLR"}}, 'field "scheduler": not supported'),
])
def test_bad_values_are_one_line_naming_file_and_field(tmp_path, cfg, says):
    path = write(tmp_path, cfg)
    with pytest.raises(InterlatError) as e:
        ds.resolve(path, **CONFIG)
    assert str(e.value).startswith(f"{path}: ") and says in str(e.value) and "\n" not in str(e.value)


def test_missing_or_broken_json_is_one_line(tmp_path):
    with pytest.raises(InterlatError, match="no such DeepSpeed config"):
        ds.read_json(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{\n  \"bf16\": ,\n}")
    with pytest.raises(InterlatError, match=r"bad.json: line 2: not valid JSON"):
        ds.read_json(tmp_path / "bad.json")


@pytest.mark.parametrize("path", sorted((REPO / "config/deepspeed").glob("*.json")), ids=lambda p: p.name)
def test_every_shipped_json_leaves_the_batch_and_precision_to_the_config(path):
    """The shipped files set nothing the config sets: every such key is "auto"."""
    raw = json.loads(path.read_text())
    for key in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "train_batch_size", "gradient_clipping"):
        assert raw[key] == "auto", key
    assert raw["bf16"]["enabled"] == "auto"
    out, batching = ds.resolve(path, **{**CONFIG, "accumulation": 2})
    assert batching.per_step == 16 and out["gradient_clipping"] == 3.0


def test_the_offload_config_offloads_with_deepspeeds_own_optimizer():
    raw = json.loads((REPO / "config/deepspeed/zero3_offload.json").read_text())
    zero = raw["zero_optimization"]
    assert zero["stage"] == 3 and zero["offload_optimizer"]["device"] == "cpu" and zero["offload_param"]["device"] == "cpu"
    assert raw["optimizer"]["params"]["lr"] == "auto"  # DeepSpeed's CPU Adam, lr from the config


def test_steps_follow_epochs_data_batch_accumulation_and_ranks():
    # the paper's MATH receivers: 7,500 problems, batch 2, 10 epochs
    assert ds.Batching(2, 1, 4).steps_for(10, 7500) == 10 * (7500 // 8)
    assert ds.Batching(2, 1, 1).steps_for(10, 7500) == 10 * 3750
    assert ds.Batching(2, 4, 1).steps_for(10, 7500) == 10 * (7500 // 8)  # accumulation = ranks, for the step count
    assert ds.Batching(2, 1, 4).steps_for(0.5, 7500) == math.ceil(0.5 * 937)
    # the student: one continuous stream, partial last step counted
    assert ds.Batching(2, 1, 1).steps_for(3, 7125, whole_steps=False) == math.ceil(3 * 7125 / 2)
    assert ds.Batching(16, 1, 1).steps_for(10.0, 100, whole_steps=False) == math.ceil(10 * 100 / 16)
    with pytest.raises(InterlatError, match="train: 7 samples, fewer than one optimizer step's 8"):
        ds.Batching(2, 1, 4).steps_for(10, 7)


def test_receiver_trainer_runs_the_epochs_with_accumulation(tiny, tmp_path):
    """Single engine, 2 epochs at batch 2 x accumulation 2: steps = 2 x (n // 4); each optimizer
    step's two micro steps take disjoint samples, and one epoch sees every sample at most once."""
    from tests.train.test_objective import _trainer

    t = _trainer(tiny, tmp_path, epochs=2, gradient_accumulation=2)
    t.batching = ds.Batching(2, 2, 1)
    t.setup()
    n = len(t.samples)
    assert t.total == 2 * (n // 4)
    t.train(tmp_path / "log.csv")
    assert len(t.rows) == t.total and t.rows[-1]["lr"] < t.rows[0]["lr"]
    trace = [json.loads(x) for x in (tmp_path / "work/trace-rank0.jsonl").read_text().splitlines()]
    assert [(r["step"], r["micro"]) for r in trace] == [(s, k) for s in range(t.total) for k in range(2)]
    first_epoch = [task for r in trace[: 2 * (n // 4)] for task in r["tasks"]]
    assert len(first_epoch) == len(set(first_epoch)) == 4 * (n // 4)

