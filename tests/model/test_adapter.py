"""The adapter of docs/method.md section 3: initialisation, clamp, projection, padding."""

import math

import torch

from interlat.model.adapter import CLAMP, LatentAdapter


def test_initialisation_matches_the_method():
    torch.manual_seed(0)
    a = LatentAdapter(64)
    assert a.proj is None
    assert a.attn.num_heads == 8 and a.attn.dropout == 0.1
    assert a.pre_norm.eps == 1e-6 and a.post_norm.eps == 1e-6
    assert a.projection.scale_in.item() == torch.tensor(0.2).item()
    assert a.projection.scale_out.item() == torch.tensor(0.1).item()
    assert torch.all(a.attn.in_proj_bias == 0) and torch.all(a.attn.out_proj.bias == 0)
    # xavier_uniform with gain 1/sqrt(3) on in_proj [3d, d]: bound = gain*sqrt(6/(fan_in+fan_out))
    bound = (1 / math.sqrt(3)) * math.sqrt(6 / (64 + 192))
    assert a.attn.in_proj_weight.abs().max() <= bound + 1e-6
    assert abs(a.projection.fc1.weight.std().item() - 0.02) < 0.005
    assert a.projection.fc2.weight.abs().max() <= 1e-2 * math.sqrt(6 / 128) + 1e-6


def test_cross_family_projection_and_clamp():
    a = LatentAdapter(32, sender_dim=48).eval()
    assert a.proj.in_features == 48 and a.proj.out_features == 32
    with torch.no_grad():
        a.projection.scale_out.fill_(1e4)
    out = a(torch.randn(2, 5, 48) * 100)
    assert out.shape == (2, 5, 32)
    assert out.abs().max() <= CLAMP and (out.abs() == CLAMP).any()


def test_padding_rows_do_not_change_real_rows():
    torch.manual_seed(0)
    a = LatentAdapter(16, num_heads=4).eval()
    H = torch.randn(1, 6, 16)
    short = a(H[:, :4], torch.tensor([4]))
    padded = a(torch.cat([H[:, :4], 99 * torch.ones(1, 2, 16)], 1), torch.tensor([4]))
    torch.testing.assert_close(short, padded[:, :4], rtol=1e-5, atol=1e-6)
