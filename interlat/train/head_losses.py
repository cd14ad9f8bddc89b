"""The vocabulary-sized loss terms from hidden states, in chunks of tokens (docs/method.md sections 3 and 4).

The three-pass receiver step (CE on pass N, L_plan against pass P, L_rand against pass R) and
the compression step (CE on path A, L_kl against paths D and B) compare next-token
distributions over the whole vocabulary. From full logits, every pass holds [B, S, V] fp32
logits and the losses several [N, V] copies (at V = 151,936 and 2 x 1,024 tokens, 1.2 GB
each). Here each pass stops at its final-norm hidden states; the LM head is applied to
`chunk_size` aligned rows at a time, every pass's logits of those rows become per-token terms
(`interlat.losses.plan_terms`, `token_jsd`, `weighted_kl_terms`, CE) and the chunk is
checkpointed (`interlat.losses.map_token_chunks`), so the backward recomputes the chunk's
logits instead of keeping them. Beyond the hidden states, peak memory is O(chunk_size x V)
whatever the number of tokens. The reference passes (P, R, D, B) are detached, as in
`interlat.losses`; the values equal the logits path's (tests/train/test_head_losses.py).

Each pass is given as its aligned rows: `(hidden [B, T, d], mask [B, T])` (row t of every
pass predicts the same supervised token, `interlat.train.objective.aligned_logits`), and the
pass with gradient also as `targets [B, T]`.
"""

import torch
import torch.nn.functional as F

from interlat import losses


def _logits(head, h: torch.Tensor) -> torch.Tensor:
    return head(h).float()


def receiver_losses(
    head,
    true: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    plan: tuple[torch.Tensor, torch.Tensor] | None = None,
    negative: tuple[torch.Tensor, torch.Tensor] | None = None,
    margin: float = losses.DEFAULT_MARGIN,
    chunk_size: int | None = losses.DEFAULT_CHUNK,
) -> dict[str, torch.Tensor]:
    """CE of pass N, and L_plan (with `plan`) and L_rand / hinge-active share (with `negative`).

    `true` = (hidden, targets, mask) of pass N (with grad); `plan`, `negative` = (hidden, mask)
    of passes P and R. Returns a dict with "ce" and, where asked, "l_plan", "l_rand", "hinge_active".
    """
    h_n, target, m_n = true
    rows = [h_n[m_n], target[m_n]]
    if plan is not None:
        rows.append(plan[0].detach()[m_n])
    if negative is not None:
        rows.append(negative[0].detach()[m_n])

    def terms(h, t, *refs):
        z = _logits(head, h)
        out = [F.cross_entropy(z, t, reduction="none")]
        refs = list(refs)
        if plan is not None:
            with torch.no_grad():
                z_p = _logits(head, refs.pop(0))
            out += losses.plan_terms(z, z_p)
        if negative is not None:
            with torch.no_grad():
                z_r = _logits(head, refs.pop(0))
            out.append(losses.token_jsd(z, z_r))
        return tuple(out)

    out = losses.map_token_chunks(terms, rows, chunk_size)
    result = {"ce": out[0].mean()}
    rest = out[1:]
    if plan is not None:
        both = m_n & plan[1]
        sel = both[m_n]
        result["l_plan"] = losses.plan_from_terms(*(x[sel] for x in rest[:4]), both)
        rest = rest[4:]
    if negative is not None:
        both = m_n & negative[1]
        result["l_rand"], result["hinge_active"] = losses.contrast_from_jsd(rest[0][both[m_n]], both, margin)
    return result


def compression_losses(
    head,
    student: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    full: tuple[torch.Tensor, torch.Tensor],
    none: tuple[torch.Tensor, torch.Tensor],
    T: float = 4.0,
    quantile: float = 0.95,
    chunk_size: int | None = losses.DEFAULT_CHUNK,
) -> dict[str, torch.Tensor]:
    """CE of path A and L_kl (docs/method.md section 4) from the teacher's hidden states.

    `student` = (hidden, targets, mask) of path A (with grad); `full`, `none` = (hidden, mask)
    of paths D and B. L_kl is over the tokens supervised in all three, as
    `interlat.losses.uncertainty_weighted_kl`.
    """
    h_a, target, m_a = student
    rows = [h_a[m_a], target[m_a], full[0].detach()[m_a], none[0].detach()[m_a]]

    def terms(h, t, h_d, h_b):
        z = _logits(head, h)
        with torch.no_grad():
            z_d, z_b = _logits(head, h_d), _logits(head, h_b)
        return (F.cross_entropy(z, t, reduction="none"), *losses.weighted_kl_terms(z, z_d, z_b, T))

    ce, kl, h_full, h_none = losses.map_token_chunks(terms, rows, chunk_size)
    sel = (m_a & full[1] & none[1])[m_a]
    return {"ce": ce.mean(), "l_kl": losses.weighted_kl_from_terms(kl[sel], h_full[sel], h_none[sel], quantile)}
