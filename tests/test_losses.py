"""interlat.losses against slow float64 per-sample references (docs/method.md sections 3-4)."""

import math

import pytest
import torch

from interlat import losses

B, T, V = 4, 6, 11
LN2 = math.log(2.0)


def _logits(seed: int, scale: float = 3.0, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(B, T, V, generator=g)).to(dtype)


def _ragged_mask() -> torch.Tensor:
    """Ragged rows, one of them all False."""
    mask = torch.zeros(B, T, dtype=torch.bool)
    mask[0, :6] = True
    mask[1, 2:4] = True
    mask[3, [0, 3, 5]] = True
    return mask


def _rows(x: torch.Tensor, mask: torch.Tensor, i: int) -> torch.Tensor:
    return x.detach()[i, mask[i]].double()


def _mean_or_zero(values: list) -> float:
    return sum(values) / len(values) if values else 0.0


def ref_plan_similarity(true, plan, mask) -> float:
    per_sample = []
    for i in range(true.shape[0]):
        if not mask[i].any():
            continue
        q = torch.softmax(_rows(true, mask, i), -1)
        p = torch.softmax(_rows(plan, mask, i), -1)
        kl = (p * (p.log() - q.log())).sum(-1).mean()
        cos = (p.flatten() @ q.flatten()) / (p.flatten().norm() * q.flatten().norm())
        per_sample.append(float(0.7 * kl + 0.3 * (1 - cos)))
    return _mean_or_zero(per_sample)


def ref_jsd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    p, q = torch.softmax(a.double(), -1), torch.softmax(b.double(), -1)
    m = (p + q) / 2
    return 0.5 * (p * (p / m).log()).sum(-1) + 0.5 * (q * (q / m).log()).sum(-1)


def ref_random_contrast(true, neg, mask, margin) -> tuple[float, float]:
    hinges = []
    for i in range(true.shape[0]):
        if not mask[i].any():
            continue
        jsd = ref_jsd(_rows(true, mask, i), _rows(neg, mask, i)).mean()
        hinges.append(max(0.0, margin - float(jsd)))
    return _mean_or_zero(hinges), _mean_or_zero([float(h > 0) for h in hinges])


def ref_percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    h = (len(s) - 1) * q
    lo, hi = math.floor(h), math.ceil(h)
    return s[lo] + (h - lo) * (s[hi] - s[lo])


def ref_uncertainty_kl(student, full, none, mask, temp, quantile) -> float:
    student, full, none = student.detach(), full.detach(), none.detach()
    weights, kls = [], []
    for i in range(student.shape[0]):
        for t in range(student.shape[1]):
            if not mask[i, t]:
                continue
            p_b = torch.softmax(none[i, t].double(), -1)
            p_d = torch.softmax(full[i, t].double(), -1)
            drop = float(-(p_b * p_b.log()).sum() + (p_d * p_d.log()).sum())
            weights.append(max(0.0, drop))
            d_t = torch.softmax(full[i, t].double() / temp, -1)
            a_t = torch.softmax(student[i, t].double() / temp, -1)
            kls.append(float(temp**2 * (d_t * (d_t / a_t).log()).sum()))
    positive = [w for w in weights if w > 0]
    cap = ref_percentile(positive, quantile) if positive else 0.0
    weights = [min(w, cap) for w in weights]
    mean = max(sum(weights) / len(weights), 1e-6)
    weights = [w / mean for w in weights]
    return sum(w * k for w, k in zip(weights, kls, strict=True)) / (sum(weights) + 1e-6)


def test_plan_similarity_matches_reference():
    true, plan, mask = _logits(0), _logits(1), _ragged_mask()
    got = losses.plan_similarity(true, plan, mask)
    assert got.dtype == torch.float32 and got.shape == ()
    assert got.item() == pytest.approx(ref_plan_similarity(true, plan, mask), rel=1e-5)


def test_plan_similarity_is_zero_for_identical_passes():
    true, mask = _logits(2), _ragged_mask()
    assert losses.plan_similarity(true, true.clone(), mask).item() == pytest.approx(0, abs=1e-6)


def test_plan_similarity_gradient_reaches_only_true_logits():
    true = _logits(3).requires_grad_()
    plan = _logits(4).requires_grad_()
    mask = _ragged_mask()
    losses.plan_similarity(true, plan, mask).backward()
    assert plan.grad is None
    assert true.grad[~mask].abs().max() == 0
    assert true.grad[mask].abs().sum() > 0


def test_plan_similarity_bf16_is_computed_in_float32():
    true, plan, mask = (
        _logits(5, dtype=torch.bfloat16),
        _logits(6, dtype=torch.bfloat16),
        _ragged_mask(),
    )
    got = losses.plan_similarity(true, plan, mask)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(ref_plan_similarity(true, plan, mask), rel=1e-5)


@pytest.mark.parametrize(
    "fn",
    [
        lambda a, b, m: losses.plan_similarity(a, b, m),
        lambda a, b, m: losses.random_contrast(a, b, m),
        lambda a, b, m: losses.uncertainty_weighted_kl(a, b, b, m),
    ],
    ids=["plan", "rand", "kl"],
)
def test_no_supervised_tokens_gives_zero_that_backpropagates(fn):
    true = _logits(7).requires_grad_()
    mask = torch.zeros(B, T, dtype=torch.bool)
    got = fn(true, _logits(8), mask)
    assert got.item() == 0.0 and got.dtype == torch.float32
    got.backward()
    assert true.grad is not None and true.grad.abs().max() == 0


@pytest.mark.parametrize("margin", [0.69, 0.45, 0.3])  # per-sample JSDs here: 0.45, 0.37, 0.47
def test_random_contrast_matches_reference(margin):
    true, neg, mask = _logits(9), _logits(10), _ragged_mask()
    loss, active = losses.random_contrast_terms(true, neg, mask, margin)
    want_loss, want_active = ref_random_contrast(true, neg, mask, margin)
    assert loss.item() == pytest.approx(want_loss, rel=1e-5, abs=1e-7)
    assert active.item() == pytest.approx(want_active)
    assert losses.random_contrast(true, neg, mask, margin).item() == pytest.approx(loss.item())
    assert losses.hinge_active_fraction(true, neg, mask, margin).item() == active.item()


def test_random_contrast_gradient_reaches_only_true_logits():
    true = _logits(11).requires_grad_()
    neg = _logits(12).requires_grad_()
    loss, active = losses.random_contrast_terms(true, neg, _ragged_mask())
    assert not active.requires_grad
    loss.backward()
    assert neg.grad is None
    assert true.grad.abs().sum() > 0


def test_token_jsd_is_symmetric_and_bounded_by_ln2():
    g = torch.Generator().manual_seed(13)
    a, b = 20 * torch.randn(64, V, generator=g), 20 * torch.randn(64, V, generator=g)
    jsd = losses.token_jsd(a, b)
    torch.testing.assert_close(jsd, losses.token_jsd(b, a))
    assert jsd.min() >= 0 and jsd.max() <= LN2
    torch.testing.assert_close(jsd.double(), ref_jsd(a, b), rtol=1e-4, atol=1e-6)
    assert losses.token_jsd(a, a).abs().max() < 1e-6


def _peaked(tokens: torch.Tensor) -> torch.Tensor:
    """Logits putting nearly all mass on `tokens` [B, T]."""
    return 40.0 * torch.nn.functional.one_hot(tokens, V).float()


def test_hinge_is_zero_for_nearly_disjoint_distributions():
    mask = _ragged_mask()
    tokens = torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(14))
    true, neg = _peaked(tokens), _peaked((tokens + 1) % V)
    assert losses.token_jsd(true, neg).min() > 0.69
    loss, active = losses.random_contrast_terms(true, neg, mask)
    assert loss.item() == 0.0 and active.item() == 0.0


def test_hinge_active_fraction_counts_samples_with_tokens():
    mask = _ragged_mask()  # samples 0, 1, 3 have tokens
    tokens = torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(15))
    neg_tokens = (tokens + 1) % V
    neg_tokens[0] = tokens[0]  # sample 0: identical -> JSD 0, hinge active
    true, neg = _peaked(tokens), _peaked(neg_tokens)
    loss, active = losses.random_contrast_terms(true, neg, mask)
    assert active.item() == pytest.approx(1 / 3)
    assert loss.item() == pytest.approx(0.69 / 3, rel=1e-4)


def test_dynamic_weights_values_and_no_grad():
    l_plan = torch.tensor(2.0, requires_grad=True)
    l_rand = torch.tensor(0.345, requires_grad=True)
    w_plan, w_rand = losses.dynamic_weights(l_plan * 1, l_rand * 1)
    assert not w_plan.requires_grad and not w_rand.requires_grad
    assert w_plan.item() == pytest.approx(0.01 + 0.04 * 0.5)
    assert w_rand.item() == pytest.approx(0.01 + 0.49 * 0.5)
    lo = losses.dynamic_weights(torch.tensor(-1.0), torch.tensor(-1.0))
    hi = losses.dynamic_weights(torch.tensor(100.0), torch.tensor(100.0))
    assert [w.item() for w in lo] == pytest.approx([0.01, 0.01])
    assert [w.item() for w in hi] == pytest.approx([0.05, 0.5])


@pytest.mark.parametrize("temp,quantile", [(4.0, 0.95), (1.0, 0.5)])
def test_uncertainty_weighted_kl_matches_reference(temp, quantile):
    student, full, mask = _logits(16), _logits(17), _ragged_mask()
    none = _logits(18, scale=0.5)  # flatter than `full`: positive entropy drops ...
    none[0, :3] *= 12  # ... except these three tokens (weight 0)
    got = losses.uncertainty_weighted_kl(student, full, none, mask, T=temp, quantile=quantile)
    want = ref_uncertainty_kl(student, full, none, mask, temp, quantile)
    assert got.item() == pytest.approx(want, rel=1e-4)


def test_uncertainty_weighted_kl_bf16_and_gradient_only_to_student():
    student = _logits(19, dtype=torch.bfloat16).requires_grad_()
    full = _logits(20, dtype=torch.bfloat16).requires_grad_()
    none = _logits(21, scale=0.5, dtype=torch.bfloat16).requires_grad_()
    mask = _ragged_mask()
    got = losses.uncertainty_weighted_kl(student, full, none, mask)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(
        ref_uncertainty_kl(student, full, none, mask, 4.0, 0.95), rel=1e-4
    )
    got.backward()
    assert full.grad is None and none.grad is None
    assert student.grad.abs().sum() > 0


def test_cap_and_normalise_caps_at_quantile_of_positive_weights():
    w = torch.tensor([0.0, 0.0, 1.0, 2.0, 3.0, 100.0])
    cap = 3.0 + 0.85 * 97.0  # 95th percentile of [1, 2, 3, 100], linear interpolation
    capped = torch.tensor([0.0, 0.0, 1.0, 2.0, 3.0, cap])
    want = capped / capped.mean()  # mean over all six, zeros included
    torch.testing.assert_close(losses.cap_and_normalise(w, 0.95), want)
    assert losses.cap_and_normalise(w, 0.95).mean().item() == pytest.approx(1.0)


def test_cap_and_normalise_all_zero_and_mean_floor():
    torch.testing.assert_close(losses.cap_and_normalise(torch.zeros(5)), torch.zeros(5))
    tiny = torch.tensor([0.0, 0.0, 0.0, 1e-9])
    torch.testing.assert_close(losses.cap_and_normalise(tiny), tiny / 1e-6)


def test_uncertainty_weighted_kl_zero_when_full_message_adds_no_certainty():
    student, full, mask = _logits(22), _logits(23), _ragged_mask()
    assert losses.uncertainty_weighted_kl(student, full, full, mask).item() == 0.0


def ref_latent_alignment(student, full, smask, fmask) -> float:
    student, full = student.detach(), full.detach()
    values = []
    for i in range(student.shape[0]):
        s = student[i].double() if smask is None else student[i, smask[i]].double()
        f = full[i].double() if fmask is None else full[i, fmask[i]].double()
        if len(s) == 0 or len(f) == 0:
            continue
        a, b = s.mean(0), f.mean(0)
        values.append(float(1 - a @ b / (a.norm() * b.norm())))
    return _mean_or_zero(values)


def test_latent_alignment_matches_reference_and_detaches_full():
    g = torch.Generator().manual_seed(24)
    student = torch.randn(3, 4, 8, generator=g).requires_grad_()
    full = torch.randn(3, 9, 8, generator=g).requires_grad_()
    got = losses.latent_alignment(student, full)
    assert got.item() == pytest.approx(ref_latent_alignment(student, full, None, None), rel=1e-5)
    smask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=torch.bool)
    fmask = torch.ones(3, 9, dtype=torch.bool)
    fmask[0, 5:] = False
    got = losses.latent_alignment(student, full, smask, fmask)
    want = ref_latent_alignment(student, full, smask, fmask)
    assert got.item() == pytest.approx(want, rel=1e-5)
    got.backward()
    assert full.grad is None
    assert student.grad[2].abs().max() == 0 and student.grad[0, 2:].abs().max() == 0
