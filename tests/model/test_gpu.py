"""The CUDA path: bf16 weights and SDPA attention on a GPU, at tiny shapes, against the fp32 CPU
path the rest of the suite checks (docs/method.md sections 1 and 3), and a 2-step DeepSpeed run.

Tolerances: bf16 keeps 8 significant bits (epsilon 7.8e-3). Over 2 layers, the norms and a
softmax the outputs drift by a few of those relative to their largest entry; 5% of the largest
entry leaves headroom and is still far below a real fault (a state read one position off, a
message spliced at the wrong row or a padding row attended to differs by O(1)).
"""

import pytest
import torch
from safetensors.torch import load_file

import interlat
from interlat.conversations import read_conversations
from interlat.model.adapter import LatentAdapter
from interlat.model.decode import Sampling, decode
from interlat.shards import load_messages
from interlat.text.batching import left_padded_prompts
from interlat.text.chat import render_ids
from interlat.text.prompts import planner_messages
from interlat.text.tokenizer import build_tokenizer
from interlat.train.objective import ReceiverObjective
from interlat.train.samples import build_samples, collate
from tests.helpers import tiny_lm

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
DEVICE = "cuda"
REL = 0.05

CORPUS = ["Solve for x: 3x+4=19. Subtract 4 from both sides to get 3x=15. Then divide by 3.",
          "Provide a plan only, not the final answer, for the following problem."]
PROBLEMS = ["Solve for $x$: $3x+4=19$.", "Solve $x$.", "Solve for $x$: $2x+9=27$. Subtract 9 from both sides."]


def close(actual: torch.Tensor, expected: torch.Tensor, rel: float = REL) -> None:
    """|actual - expected| within `rel` of expected's largest entry, everywhere."""
    actual, expected = actual.float().cpu(), expected.float().cpu()
    assert actual.shape == expected.shape and torch.isfinite(actual).all()
    worst = (actual - expected).abs().max().item()
    assert worst <= rel * expected.abs().max().item(), f"max |diff| {worst:.4g}"


def on_gpu(model):
    """`model` (fp32, CPU) copied to the GPU in bf16 with PyTorch's SDPA attention kernels."""
    import copy

    gpu = copy.deepcopy(model).to(DEVICE, torch.bfloat16).eval()
    gpu.set_attn_implementation("sdpa")
    assert gpu.config._attn_implementation == "sdpa"
    return gpu


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(CORPUS)


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_bf16_sdpa_forward_of_left_padded_prompts_matches_fp32(arch, tokenizer):
    cpu = tiny_lm(arch, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                  eos_token_id=tokenizer.eos_token_id).float().eval()
    gpu = on_gpu(cpu)
    rows = [render_ids(tokenizer, planner_messages("math", p), True) for p in PROBLEMS]
    ids, mask = left_padded_prompts(tokenizer, rows, "cpu")
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        want = cpu(ids, attention_mask=mask, position_ids=position_ids).logits
        got = gpu(ids.to(DEVICE), attention_mask=mask.to(DEVICE), position_ids=position_ids.to(DEVICE)).logits
    assert got.dtype == torch.bfloat16 and got.device.type == "cuda"
    real = mask.bool()  # padding positions' logits are never read
    close(got.cpu()[real], want[real])


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_bf16_decode_states_equal_a_full_forward_on_the_gpu(arch, tokenizer):
    """Decode with the KV cache on the GPU: row t of each message is the last layer at the
    position that sampled token t, as one full bf16 forward over prompt + plan computes it."""
    gpu = on_gpu(tiny_lm(arch, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, seed=1))
    rows = [render_ids(tokenizer, planner_messages("math", p), True) for p in PROBLEMS]
    ids, mask = left_padded_prompts(tokenizer, rows, DEVICE)
    out = decode(gpu, gpu.get_input_embeddings()(ids), mask, eos_ids={tokenizer.eos_token_id},
                 cfg=Sampling(1.0, 1.0, 0, 10), generator=torch.Generator().manual_seed(0), keep_states=True)
    assert len(out.states) == len(rows)
    for prompt, toks, H in zip(rows, out.tokens, out.states, strict=True):
        assert len(toks) >= 1 and H.shape == (len(toks), gpu.config.hidden_size)
        assert H.dtype == torch.bfloat16 and H.device.type == "cuda"
        with torch.no_grad():
            full = gpu(torch.tensor([prompt + toks], device=DEVICE), output_hidden_states=True)
        close(H, full.hidden_states[-1][0, len(prompt) - 1 : len(prompt) - 1 + len(toks)])


def test_bf16_adapter_matches_fp32_and_ignores_padding():
    torch.manual_seed(0)
    cpu = LatentAdapter(32, sender_dim=48, num_heads=4).eval()
    gpu = LatentAdapter(32, sender_dim=48, num_heads=4).eval()
    gpu.load_state_dict(cpu.state_dict())
    gpu.to(DEVICE, torch.bfloat16)
    H, lengths = torch.randn(3, 6, 48), torch.tensor([6, 4, 1])
    with torch.no_grad():
        want = cpu(H, lengths)
        got = gpu(H.to(DEVICE), lengths.to(DEVICE))  # fp32 states in, cast by the adapter
        short = gpu(H[1:2, :4].to(DEVICE), lengths[1:2].to(DEVICE))
    assert got.dtype == torch.bfloat16
    for b, n in enumerate(lengths.tolist()):
        close(got[b, :n], want[b, :n])
    close(short[0], got[1, :4])  # the padding rows of row 1 changed nothing


def test_bf16_receiver_objective_matches_fp32_and_backpropagates(tiny):
    """The receiver (LM + adapter) in bf16 with SDPA on the GPU: the training forward on a real
    batch gives fp32's cross-entropy, and backward gives finite gradients to the adapter."""
    cpu, tok = interlat.load_receiver(tiny["receiver_ckpt"])
    gpu, _ = interlat.load_receiver(tiny["receiver_ckpt"])
    gpu.to(DEVICE, torch.bfloat16)
    gpu.lm.set_attn_implementation("sdpa")
    rows = read_conversations(tiny["convert"] / "train.jsonl")[:4]
    samples = build_samples(rows, load_messages(tiny["latents"]), tok, "interlat", "train.jsonl", cpu.prepended_length)
    batch = collate(samples, tok.pad_token_id)
    batch["r"] = torch.tensor([1.0, 0.5, 0.3, 1.0])[: len(samples)]
    results = {}
    for name, model in (("cpu", cpu), ("gpu", gpu)):
        objective = ReceiverObjective(model, "interlat", contrast=False).train()
        model.adapter.attn.dropout = 0.0  # the same function on both devices
        dev = model.device
        out = objective({k: v.to(dev) for k, v in batch.items()})
        out["loss"].backward()
        grads = [p.grad for p in model.adapter.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g.float()).all() for g in grads), name
        results[name] = out["ce"].float().item()
    assert abs(results["gpu"] - results["cpu"]) <= REL * results["cpu"], results


@pytest.mark.slow
def test_two_deepspeed_steps_on_one_gpu(tiny, tmp_path):
    """`interlat train --engine deepspeed` under torchrun on one GPU: NCCL, bf16, a receiver out."""
    from tests.train.test_engines import BIN, run_watched, train_cmd

    cmd = train_cmd(tiny, tmp_path, "deepspeed", 2)
    cmd = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node=1", "--no-python", *cmd]
    rc, _, _, stderr = run_watched(cmd, tmp_path / "run", done=tmp_path / "ckpt")
    assert rc == 0, stderr[-4000:]
    log = (tmp_path / "log.csv").read_text().splitlines()
    assert len(log) == 3 and "nan" not in "".join(log[1:]).lower()
    weights = load_file(tmp_path / "ckpt/model.safetensors")
    assert torch.bfloat16 in {t.dtype for t in weights.values()}, "DeepSpeed did not train in bf16"
    model, _ = interlat.load_receiver(tmp_path / "ckpt", device=DEVICE)
    assert model.device.type == "cuda"
