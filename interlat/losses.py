"""Training losses of the receiver and the compression student (docs/method.md sections 3 and 4).

Pure functions over logits that the caller has already aligned: row t of every
[B, T, V] argument predicts the same supervised token (the causal shift and the
per-path positions of docs/method.md section 3, "Logit alignment", are applied before
these are called), and `mask` [B, T] marks the rows supervised in both paths.
Logits are assumed finite.

- `plan_similarity`: L_plan = 0.7 * KL(P || Q) + 0.3 * (1 - cos), section 3.
- `random_contrast` / `random_contrast_terms` / `hinge_active_fraction`: hinge
  max(0, m - JSD) against a negative message, and the share of active hinges, section 3
  (`token_jsd` is the per-token Jensen-Shannon divergence in nats).
- `dynamic_weights`: the detached per-step loss weights, section 3.
- `uncertainty_weighted_kl`: the entropy-drop weighted distillation term L_kl, section 4
  (weights from `entropy_drop_weights` / `cap_and_normalise`).
- `latent_alignment`: L_align between mean adapted latents, section 4.

Only the supervised rows are gathered, `chunk_size` tokens at a time ([chunk, V];
None: all N masked tokens at once), and per-sample sums are segment sums over
those rows, so nothing loops over samples in Python. A chunk's vocabulary-sized
intermediates are recomputed in the backward (activation checkpointing), so peak
memory beyond the inputs does not grow with N x V; the per-token terms
(`plan_terms`, `token_jsd`, `weighted_kl_terms`) and their combinations
(`plan_from_terms`, `contrast_from_jsd`) are public so `interlat.train.head_losses`
can feed them from hidden states without materialising the logits. All arithmetic is float32 whatever the logits' dtype. Reference
paths (plan pass P, negative pass R, full-message path D, no-message path B) are
detached here, so gradients reach only the true pass N / the student path A.
"""

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

#: KL weight and cosine weight inside L_plan (docs/method.md section 3).
PLAN_KL_WEIGHT = 0.7
PLAN_COS_WEIGHT = 0.3
#: Default hinge margin of the random contrast, just under ln 2 (docs/method.md section 3).
DEFAULT_MARGIN = 0.69
#: Norm floor of the cosines (as `torch.nn.functional.cosine_similarity`).
_COS_EPS = 1e-8
#: Tokens per chunk of the vocabulary-sized terms (about 600 MB of fp32 intermediates at V = 152k).
DEFAULT_CHUNK = 256


def _check_aligned(mask: torch.Tensor, *logits: torch.Tensor) -> None:
    if mask.dtype != torch.bool or mask.dim() != 2:
        raise ValueError(f"mask must be a [B, T] bool tensor, got {mask.dtype} {tuple(mask.shape)}")
    for x in logits:
        if x.dim() != 3 or x.shape[:2] != mask.shape:
            raise ValueError(
                f"logits must be [B, T, V] with [B, T] = {tuple(mask.shape)}, got {tuple(x.shape)}"
            )
    if len({x.shape[-1] for x in logits}) > 1:
        raise ValueError(f"vocabulary sizes differ: {[x.shape[-1] for x in logits]}")


def map_token_chunks(fn: Callable, rows: list[torch.Tensor], chunk_size: int | None) -> list[torch.Tensor]:
    """Apply `fn` to row chunks of the [N, ...] tensors `rows`; concatenate its [n] outputs.

    `fn(*chunks)` returns a tuple of per-token tensors. With gradients on, each chunk is
    checkpointed: only its inputs are kept, and its intermediates are recomputed in the
    backward. `chunk_size` None: one call on all rows (no checkpoint).
    """
    n = rows[0].shape[0]
    if chunk_size is None or n <= chunk_size:
        return list(fn(*rows))
    grad = torch.is_grad_enabled() and any(r.requires_grad for r in rows)
    outs = []
    for a in range(0, n, chunk_size):
        part = [r[a : a + chunk_size] for r in rows]
        outs.append(checkpoint(fn, *part, use_reentrant=False) if grad else fn(*part))
    return [torch.cat(o) for o in zip(*outs, strict=True)]


def _segment_sum(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum the [N] per-token `values` into their samples: [B]."""
    sample = mask.nonzero(as_tuple=True)[0]
    return values.new_zeros(mask.shape[0]).index_add(0, sample, values)


def _mean_over_samples(per_sample: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Unweighted mean over the samples that have at least one token (0 when none has)."""
    has_tokens = mask.any(dim=1)
    n = has_tokens.sum().clamp(min=1)
    return torch.where(has_tokens, per_sample, torch.zeros_like(per_sample)).sum() / n


def _tokens_per_sample(mask: torch.Tensor) -> torch.Tensor:
    return mask.sum(dim=1).clamp(min=1).float()


def plan_terms(true_logits: torch.Tensor, plan_logits: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per-token terms of L_plan from [n, V] logits: (KL(P || Q), P.Q, |Q|^2, |P|^2), each [n]."""
    log_q = F.log_softmax(true_logits.float(), dim=-1)
    log_p = F.log_softmax(plan_logits.float(), dim=-1)
    q, p = log_q.exp(), log_p.exp()
    return (p * (log_p - log_q)).sum(-1), (p * q).sum(-1), q.square().sum(-1), p.square().sum(-1)


def plan_from_terms(kl, dot, q2, p2, mask: torch.Tensor) -> torch.Tensor:
    """L_plan from `plan_terms` of the rows of `mask` (row-major order); see `plan_similarity`."""
    kl = _segment_sum(kl, mask) / _tokens_per_sample(mask)
    dot = _segment_sum(dot, mask)
    norm_q = _segment_sum(q2, mask).clamp(min=_COS_EPS**2).sqrt()
    norm_p = _segment_sum(p2, mask).clamp(min=_COS_EPS**2).sqrt()
    cos = dot / (norm_q * norm_p)
    per_sample = PLAN_KL_WEIGHT * kl + PLAN_COS_WEIGHT * (1.0 - cos)
    return _mean_over_samples(per_sample, mask)


def plan_similarity(
    true_logits: torch.Tensor, plan_logits: torch.Tensor, mask: torch.Tensor, chunk_size: int | None = DEFAULT_CHUNK
) -> torch.Tensor:
    """L_plan of docs/method.md section 3, a scalar.

    Per sample i over its T_i masked tokens: 0.7 * KL_i + 0.3 * (1 - cos_i), where
    KL_i = mean over tokens of KL(P_t || Q_t) summed over the vocabulary,
    Q = softmax(true_logits) (pass N, with grad), P = softmax(plan_logits) (pass P,
    detached), and cos_i is ONE cosine between the flattened [T_i x V] arrays of P and
    Q. Unweighted mean over the samples with tokens; 0 (on the graph) if none has.
    `chunk_size` tokens at a time (None: all at once); the value does not depend on it.
    """
    _check_aligned(mask, true_logits, plan_logits)
    terms = map_token_chunks(plan_terms, [true_logits[mask], plan_logits.detach()[mask]], chunk_size)
    return plan_from_terms(*terms, mask)


def token_jsd(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence (nats, in [0, ln 2]) between softmax(a) and softmax(b).

    Over the last dimension; symmetric in its arguments. M = (A + B) / 2 is formed in
    log space, JSD = 0.5 * KL(A || M) + 0.5 * KL(B || M). Float32; no detaching.
    """
    log_a = F.log_softmax(logits_a.float(), dim=-1)
    log_b = F.log_softmax(logits_b.float(), dim=-1)
    log_m = torch.logaddexp(log_a, log_b) - math.log(2.0)
    kl_a = (log_a.exp() * (log_a - log_m)).sum(-1)
    kl_b = (log_b.exp() * (log_b - log_m)).sum(-1)
    return (0.5 * (kl_a + kl_b)).clamp(0.0, math.log(2.0))


def random_contrast_terms(
    true_logits: torch.Tensor,
    neg_logits: torch.Tensor,
    mask: torch.Tensor,
    margin: float = DEFAULT_MARGIN,
    chunk_size: int | None = DEFAULT_CHUNK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_rand, active fraction) of docs/method.md section 3, both scalars.

    JSD_i = mean over the T_i masked tokens of `token_jsd(Q_t, R_t)`, Q = softmax of
    pass N (with grad), R = softmax of the negative pass R (detached). L_rand = mean
    over samples with tokens of max(0, margin - JSD_i). The active fraction (detached)
    is the share of those samples whose hinge is active (margin - JSD_i > 0), for logging.
    """
    _check_aligned(mask, true_logits, neg_logits)
    (jsd,) = map_token_chunks(lambda a, b: (token_jsd(a, b),), [true_logits[mask], neg_logits.detach()[mask]], chunk_size)
    return contrast_from_jsd(jsd, mask, margin)


def contrast_from_jsd(jsd: torch.Tensor, mask: torch.Tensor, margin: float = DEFAULT_MARGIN):
    """(L_rand, active fraction) from the per-token JSD of the rows of `mask` (row-major order)."""
    jsd = _segment_sum(jsd, mask) / _tokens_per_sample(mask)
    gap = margin - jsd
    loss = _mean_over_samples(gap.clamp(min=0.0), mask)
    active = _mean_over_samples((gap > 0).float(), mask).detach()
    return loss, active


def random_contrast(
    true_logits: torch.Tensor,
    neg_logits: torch.Tensor,
    mask: torch.Tensor,
    margin: float = DEFAULT_MARGIN,
    chunk_size: int | None = DEFAULT_CHUNK,
) -> torch.Tensor:
    """L_rand of docs/method.md section 3 (see `random_contrast_terms`)."""
    return random_contrast_terms(true_logits, neg_logits, mask, margin, chunk_size)[0]


def hinge_active_fraction(
    true_logits: torch.Tensor,
    neg_logits: torch.Tensor,
    mask: torch.Tensor,
    margin: float = DEFAULT_MARGIN,
    chunk_size: int | None = DEFAULT_CHUNK,
) -> torch.Tensor:
    """Fraction of samples (with tokens) whose random-contrast hinge is active; detached."""
    return random_contrast_terms(true_logits, neg_logits, mask, margin, chunk_size)[1]


def dynamic_weights(
    l_plan: torch.Tensor | float, l_rand: torch.Tensor | float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(w_plan, w_rand) from the detached batch losses (docs/method.md section 3).

    w_plan = 0.01 + 0.04 * clip(L_plan / 4, 0, 1); w_rand = 0.01 + 0.49 * clip(L_rand / 0.69, 0, 1).
    Neither carries gradient.
    """
    l_plan = torch.as_tensor(l_plan).detach().float()
    l_rand = torch.as_tensor(l_rand).detach().float()
    w_plan = 0.01 + 0.04 * (l_plan / 4.0).clamp(0.0, 1.0)
    w_rand = 0.01 + 0.49 * (l_rand / 0.69).clamp(0.0, 1.0)
    return w_plan, w_rand


def _entropy(log_p: torch.Tensor) -> torch.Tensor:
    return -(log_p.exp() * log_p).sum(-1)


def entropy_drop_weights(
    full_log_probs: torch.Tensor, none_log_probs: torch.Tensor, quantile: float = 0.95
) -> torch.Tensor:
    """Detached per-token weights of L_kl (docs/method.md section 4), [N] from [N, V] log-probs.

    w = relu(H(p_B) - H(p_D)), capped at the `quantile` of the positive weights (all
    zero if none is positive), then divided by the mean over all N tokens (zeros
    included, mean floored at 1e-6).
    """
    with torch.no_grad():
        w = (_entropy(none_log_probs) - _entropy(full_log_probs)).clamp(min=0.0)
        return cap_and_normalise(w, quantile)


def cap_and_normalise(weights: torch.Tensor, quantile: float = 0.95) -> torch.Tensor:
    """Cap non-negative [N] weights at the `quantile` of the positive ones, divide by their mean.

    The mean is over all N (zeros included), floored at 1e-6; no positive weight gives
    all zeros. Detached (docs/method.md section 4).
    """
    w = weights.detach()
    if w.numel() == 0:
        return w
    positive = torch.where(w > 0, w, torch.full_like(w, float("nan")))
    cap = torch.nanquantile(positive, quantile).nan_to_num(0.0)
    w = torch.minimum(w, cap)
    return w / w.mean().clamp(min=1e-6)


def weighted_kl_terms(student_logits, full_logits, none_logits, T: float = 4.0) -> tuple[torch.Tensor, ...]:
    """Per-token terms of L_kl from [n, V] logits: (T^2 KL(p_D^T || p_A^T), H(p_D), H(p_B)), each [n].

    The entropies (temperature 1) feed the detached weights; only the KL carries gradient.
    """
    full = full_logits.float()
    with torch.no_grad():
        h_full = _entropy(F.log_softmax(full, dim=-1))
        h_none = _entropy(F.log_softmax(none_logits.float(), dim=-1))
    log_d = F.log_softmax(full / T, dim=-1)
    log_a = F.log_softmax(student_logits.float() / T, dim=-1)
    return T * T * (log_d.exp() * (log_d - log_a)).sum(-1), h_full, h_none


def weighted_kl_from_terms(kl, h_full, h_none, quantile: float = 0.95) -> torch.Tensor:
    """L_kl = sum(w * kl) / (sum(w) + 1e-6), w = `cap_and_normalise`(relu(H_B - H_D))."""
    w = cap_and_normalise((h_none - h_full).clamp(min=0.0).detach(), quantile)
    return (w * kl).sum() / (w.sum() + 1e-6)


def uncertainty_weighted_kl(
    student_logits: torch.Tensor,
    full_logits: torch.Tensor,
    none_logits: torch.Tensor,
    mask: torch.Tensor,
    T: float = 4.0,
    quantile: float = 0.95,
    chunk_size: int | None = DEFAULT_CHUNK,
) -> torch.Tensor:
    """L_kl of docs/method.md section 4, a scalar weighted token mean over the whole batch.

    Paths: A = student latents (`student_logits`, with grad), D = full message
    (`full_logits`, teacher, detached), B = no message (`none_logits`, detached).
    kl_t = T^2 * KL(softmax(D/T) || softmax(A/T)); weights from `entropy_drop_weights`
    (temperature 1); returns sum(w * kl) / (sum(w) + 1e-6). `chunk_size` tokens at a time.
    """
    _check_aligned(mask, student_logits, full_logits, none_logits)
    rows = [student_logits[mask], full_logits.detach()[mask], none_logits.detach()[mask]]
    kl, h_full, h_none = map_token_chunks(lambda a, d, b: weighted_kl_terms(a, d, b, T), rows, chunk_size)
    return weighted_kl_from_terms(kl, h_full, h_none, quantile)


def _masked_row_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    x = x.float()
    if mask is None:
        return x.mean(dim=1)
    if mask.shape != x.shape[:2] or mask.dtype != torch.bool:
        raise ValueError(f"row mask must be bool {tuple(x.shape[:2])}, got {tuple(mask.shape)}")
    weights = mask.unsqueeze(-1).float()
    return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def latent_alignment(
    student_adapted: torch.Tensor,
    full_adapted: torch.Tensor,
    student_mask: torch.Tensor | None = None,
    full_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """L_align of docs/method.md section 4, a scalar.

    Batch mean of 1 - cos(mean over the K rows of `student_adapted` [B, K, d], mean
    over the L rows of `full_adapted` [B, L, d]), both already through the teacher
    adapter; the full path is detached. Masks ([B, K] / [B, L] bool, True = real row)
    exclude padded rows; a sample with no real row on either side is skipped.
    """
    if student_adapted.dim() != 3 or full_adapted.dim() != 3:
        raise ValueError("adapted latents must be [B, rows, d]")
    student = _masked_row_mean(student_adapted, student_mask)
    full = _masked_row_mean(full_adapted.detach(), full_mask)
    per_sample = 1.0 - F.cosine_similarity(student, full, dim=-1, eps=_COS_EPS)
    has_rows = torch.ones_like(per_sample, dtype=torch.bool)
    for mask in (student_mask, full_mask):
        if mask is not None:
            has_rows = has_rows & mask.any(dim=1)
    return _mean_over_samples(per_sample, has_rows.unsqueeze(1))
