"""Chunked vocabulary-sized losses equal the unchunked computation, values and gradients (fp32, 1e-5).

docs/method.md sections 3-4: the three-pass receiver step and the compression step computed
from full logits (`loss_chunk=None`, `chunk_size=None`) and in chunks of tokens from hidden
states (`interlat.train.head_losses`) or logits (`interlat.losses`, `chunk_size`).
Chunk sizes that do not divide the token count leave a ragged last chunk.
"""

import copy

import pytest
import torch

from interlat import load_receiver, losses
from interlat.bench.train import collate, make_receiver, make_samples
from interlat.compress.data import make_batch
from interlat.compress.objective import CompressionLoss
from interlat.compress.student import Student
from interlat.conversations import read_conversations
from interlat.shards import load_messages
from interlat.train.objective import ReceiverObjective
from interlat.train.samples import build_samples

TOL = dict(rtol=1e-5, atol=1e-5)


def logits_case(seed=0, B=3, T=7, V=50):
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(B, T, generator=g) > 0.25
    mask[2] = False  # a sample without tokens
    mask[0, 0] = True
    return [torch.randn(B, T, V, generator=g) * 3 for _ in range(3)], mask


def value_and_grad(fn, logits, mask, chunk):
    x = logits[0].clone().requires_grad_(True)
    value = fn(x, *logits[1:], mask, chunk)
    value.backward()
    return value.detach(), x.grad


LOSSES = {
    "plan_similarity": lambda a, b, c, m, k: losses.plan_similarity(a, b, m, chunk_size=k),
    "random_contrast": lambda a, b, c, m, k: losses.random_contrast(a, b, m, 0.69, chunk_size=k),
    "uncertainty_weighted_kl": lambda a, b, c, m, k: losses.uncertainty_weighted_kl(a, b, c, m, T=4.0, chunk_size=k),
}


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("chunk", [1, 4, 64])
def test_public_losses_equal_unchunked_in_value_and_gradient(name, chunk):
    logits, mask = logits_case()
    ref = value_and_grad(LOSSES[name], logits, mask, None)
    got = value_and_grad(LOSSES[name], logits, mask, chunk)
    torch.testing.assert_close(got[0], ref[0], **TOL)
    torch.testing.assert_close(got[1], ref[1], **TOL)
    assert ref[1].abs().sum() > 0


def grads(module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("mode, contrast", [("interlat", True), ("interlat", False), ("text", True)])
def test_receiver_step_chunked_equals_unchunked(mode, contrast):
    torch.manual_seed(0)
    samples = make_samples(3, 128, 128, seed=0)
    batch = collate(samples, samples[1:] + samples[:1], 0.5)
    results = {}
    for chunk in (None, 5):
        rec = make_receiver("default", seed=0)
        obj = ReceiverObjective(rec, mode=mode, contrast=contrast, loss_chunk=chunk).train()
        torch.manual_seed(1)  # the adapter's and LM's dropout draw the same masks
        out = obj(batch)
        out["loss"].backward()
        results[chunk] = ({k: v.detach() for k, v in out.items()}, grads(obj))
    (ref, ref_g), (got, got_g) = results[None], results[5]
    assert ref.keys() == got.keys()
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], **TOL, msg=k)
    assert ref_g.keys() == got_g.keys() and len(ref_g) > 10
    for k in ref_g:
        torch.testing.assert_close(got_g[k], ref_g[k], **TOL, msg=k)


def test_compression_step_chunked_equals_unchunked(tiny, teacher):
    model, tok = load_receiver(teacher)
    rows = read_conversations(tiny["convert"] / "train.jsonl")
    samples = build_samples(rows, load_messages(tiny["latents"]), tok, "interlat", "train.jsonl", model.prepended_length)
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = Student(AutoModelForCausalLM.from_pretrained(tiny["sender"]), model.adapter.sender_dim)
    batch = make_batch(samples[:4], tok, base.lm.get_input_embeddings().weight.shape[0], "cpu")
    results = {}
    for chunk in (None, 3):
        student = copy.deepcopy(base).eval()  # no dropout: both runs see the same function
        out = CompressionLoss(student, model, 3, loss_chunk=chunk)(batch)
        out["loss"].backward()
        results[chunk] = ({k: v.detach() for k, v in out.items()}, grads(student))
    (ref, ref_g), (got, got_g) = results[None], results[3]
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], **TOL, msg=k)
    assert ref["l_kl"] > 0 and len(ref_g) > 5
    for k in ref_g:
        torch.testing.assert_close(got_g[k], ref_g[k], **TOL, msg=k)
