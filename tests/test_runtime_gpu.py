"""The device/precision choice on a real GPU (skipped without CUDA): evaluation loads the receiver
on the GPU in bf16, sampling stays on the device, training keeps fp32 masters under bf16
autocast, compression runs its frozen teacher in bf16; decode tokens/s at the Qwen2.5-0.5B
shape (printed, for docs/benchmarks.md)."""

import time

import pytest
import torch
from safetensors.torch import load_file

import interlat
from interlat import runtime
from interlat.model.decode import Sampling, decode, draw, inverse_cdf
from tests.helpers import run_cli

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_the_one_choice_on_this_machine_is_the_gpu_in_bf16():
    device = runtime.local_device()
    assert device == "cuda:0" and runtime.compute_dtype(device) == torch.bfloat16 and runtime.bf16_enabled(device)
    with runtime.autocast(device):
        a = torch.randn(8, 8, device=device)
        assert (a @ a).dtype == torch.bfloat16


def test_evaluation_receiver_is_on_the_gpu_in_bf16_and_samples_there(tiny):
    model, tok = interlat.load_receiver(tiny["receiver_ckpt"], device=runtime.local_device())
    assert {p.device.type for p in model.parameters()} == {"cuda"}
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    ids = torch.tensor([tok("Solve for x: 3x+4=19.")["input_ids"]], device="cuda")
    embeds, mask = model.embed(ids), torch.ones_like(ids)
    cfg = Sampling(temperature=0.8, top_p=1.0, top_k=0, max_new_tokens=16)  # full-vocabulary sampling
    runs = [decode(model.lm, embeds, mask, eos_ids={tok.eos_token_id}, cfg=cfg,
                   generator=torch.Generator().manual_seed(5)).tokens for _ in range(2)]
    assert runs[0] == runs[1] and len(runs[0][0]) >= 1  # seeded: the same draws


def test_gpu_draw_from_a_host_generator_equals_the_inverse_cdf_on_the_host():
    probs = torch.softmax(torch.randn(4, 1000, generator=torch.Generator().manual_seed(0)), -1)
    got = draw(probs.cuda(), torch.Generator().manual_seed(3))
    assert got.device.type == "cuda"
    u = torch.rand(4, 1, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert torch.equal(got.cpu(), inverse_cdf(probs, u))


def test_training_on_the_gpu_keeps_fp32_masters(tiny, tmp_path):
    run_cli("train", "--base", tiny["receiver"], "--conversations", tiny["convert"] / "train.jsonl",
            "--latents", tiny["latents"], "--steps", 4, "--batch-size", 2, "--prepended-length", 16,
            "--work-dir", tmp_path / "work", "--log-csv", tmp_path / "log.csv", "--out", tmp_path / "ckpt")
    weights = load_file(tmp_path / "ckpt/model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.float32}
    assert "nan" not in (tmp_path / "log.csv").read_text().lower()


def test_compression_on_the_gpu_with_a_bf16_teacher(tiny, teacher, tmp_path):
    run_cli("compress", "--teacher", teacher, "--student", tiny["sender"], "--conversations",
            tiny["convert"] / "train.jsonl", "--latents", tiny["latents"], "--K", 3, "--max-steps", 3,
            "--batch-size", 2, "--eval-every", 1, "--work-dir", tmp_path / "work", "--out", tmp_path / "student")
    student, _ = interlat.load_student(tmp_path / "student", device="cuda")
    assert {p.dtype for p in student.parameters()} == {torch.bfloat16}
    assert "nan" not in (tmp_path / "student/log.csv").read_text().lower()


def test_decode_tokens_per_second_at_the_qwen25_05b_shape():
    """Random weights at Qwen2.5-0.5B's published shape (full vocabulary, 24 layers), bf16,
    batch 16 x 128 new tokens with full-vocabulary sampling."""
    from transformers import AutoModelForCausalLM, Qwen2Config

    from interlat.model.shapes import SHAPES

    shape = {k: v for k, v in SHAPES["qwen2.5-0.5b"].items() if k != "arch"}
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(Qwen2Config(**shape), dtype=torch.bfloat16).to("cuda").eval()
    B, S, N = 16, 64, 128
    ids = torch.randint(0, 150_000, (B, S), device="cuda")
    mask = torch.ones_like(ids)
    cfg = Sampling(temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=N)
    embeds = model.get_input_embeddings()(ids)
    decode(model, embeds, mask, eos_ids=set(), cfg=cfg, generator=torch.Generator().manual_seed(0), force_length=8)
    torch.cuda.synchronize()
    start = time.perf_counter()
    out = decode(model, embeds, mask, eos_ids=set(), cfg=cfg, generator=torch.Generator().manual_seed(0), force_length=N)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    assert all(len(t) == N for t in out.tokens)
    print(f"qwen2.5-0.5b shape, bf16, batch {B}: {B * N / seconds:.0f} tokens/s ({torch.cuda.get_device_name(0)})")
