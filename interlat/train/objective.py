"""The receiver's training step: curriculum mixing and the three forward passes (docs/method.md section 3).

Per step, for every sample: the adapter runs on all L message rows, then the message is the
first round(r*L) adapted rows followed by the plan-token embeddings from round(r*L_plan) on.

- pass P (no grad): the plan text between `<bop>`/`<eop>`;
- pass R (no grad): another task's raw latents resized to L, mixed with the sample's own
  plan tail at the same r;
- pass N (grad): the true latents.

Logits are aligned per path with the causal shift (`aligned_logits`), and the losses of
`interlat.losses` compare the tokens supervised in both paths. Total = CE + w_plan*L_plan +
w_rand*L_rand with weights from detached values. With `loss_chunk` (the default) the passes
stop at their hidden states and the vocabulary-sized terms are computed `loss_chunk` tokens
at a time (`interlat.train.head_losses`), never holding any pass's [B, S, V] logits; None
computes them from full logits (same values; the reference for tests and benchmark P3b).
"""

import torch
import torch.nn.functional as F
from torch import nn

from interlat import losses
from interlat.model.insertion import aligned_positions, concat_ragged, gather_rows
from interlat.train import head_losses


def resize_negative(H: torch.Tensor, n: torch.Tensor, target: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Resize each negative message H[b, :n_b] to target_b rows: truncate, or tile + noise.

    `noise` [B, Lt, d] ~ N(0, 0.01^2) is added to the tiled copy only (rows past n_b).
    """
    width = int(target.max().item())
    j = torch.arange(width, device=H.device)[None, :]
    idx = j % n.clamp(min=1)[:, None]
    out = gather_rows(H, idx)
    tiled = (j >= n[:, None]) & (j < target[:, None])
    out = out + noise[:, :width] * tiled[..., None].to(out.dtype)
    return out * (j < target[:, None])[..., None].to(out.dtype)


def aligned_logits(logits: torch.Tensor, labels: torch.Tensor):
    """(logits [B, T, V] predicting each supervised token, targets [B, T], mask [B, T])."""
    pos, target, mask = aligned_positions(labels)
    return gather_rows(logits, pos), target, mask


class ReceiverObjective(nn.Module):
    """Wraps a `Receiver`; forward(batch) returns the loss terms of one step.

    mode "interlat": the three-pass objective; "text": CE with the plan text as the message
    (the `cot_full` baseline); "none": CE without any message (the `no_cot` baseline).
    """

    def __init__(self, receiver, mode: str = "interlat", margin: float = 0.69, contrast: bool = True,
                 loss_chunk: int | None = losses.DEFAULT_CHUNK):
        super().__init__()
        self.receiver = receiver
        self.mode = mode
        self.margin = margin
        self.contrast = contrast
        self.loss_chunk = loss_chunk

    def pass_rows(self, embeds, mask, labels):
        """(aligned rows [B, T, d or V], targets, mask) of one pass: hidden states when chunked."""
        rec = self.receiver
        out = rec.logits(embeds, mask) if self.loss_chunk is None else rec.hidden(embeds, mask)
        return aligned_logits(out, labels)

    def mixed_message(self, H, H_len, plan_emb, plan_len, r):
        L = H_len.clamp(max=self.receiver.prepended_length)
        adapted = self.receiver.adapt(H, L)
        k1 = torch.round(r * L).long()
        k2 = torch.round(r * plan_len).long()
        return concat_ragged(adapted, k1, plan_emb, k2, plan_len)

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        rec = self.receiver
        if self.mode == "none":
            out = rec.lm(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]
            )
            return {"loss": out.loss, "ce": out.loss.detach()}
        plan_emb = rec.embed(batch["plan_ids"])
        plan_len = batch["plan_len"]
        if self.mode == "text":
            embeds, labels, mask, _ = rec.splice(batch, plan_emb, plan_len)
            ce = self.terms(self.pass_rows(embeds, mask, labels))["ce"]
            return {"loss": ce, "ce": ce.detach()}
        r = batch["r"]
        msg, msg_len = self.mixed_message(batch["H"], batch["H_len"], plan_emb, plan_len, r)
        embeds, labels, mask, _ = rec.splice(batch, msg, msg_len)
        true = self.pass_rows(embeds, mask, labels)
        plan = negative = None
        if self.contrast:
            with torch.no_grad():
                embeds, labels, mask, _ = rec.splice(batch, plan_emb, plan_len)
                plan = self.pass_rows(embeds, mask, labels)[::2]
                if "neg_H" in batch:
                    L = batch["H_len"].clamp(max=rec.prepended_length)
                    neg = resize_negative(batch["neg_H"], batch["neg_len"], L, batch["neg_noise"])
                    msg_r, len_r = self.mixed_message(neg, L, plan_emb, plan_len, r)
                    embeds, labels, mask, _ = rec.splice(batch, msg_r, len_r)
                    negative = self.pass_rows(embeds, mask, labels)[::2]
        t = self.terms(true, plan, negative)
        ce = t["ce"]
        out = {"ce": ce.detach(), "r": r.mean().detach()}
        if not self.contrast:
            out["loss"] = ce
            return out
        l_plan = t["l_plan"]
        out["l_plan"] = l_plan.detach()
        if negative is not None:
            l_rand = t["l_rand"]
            out["l_rand"] = l_rand.detach()
            out["hinge_active"] = t["hinge_active"]
        else:
            l_rand = torch.zeros((), device=ce.device)
            out["l_rand"] = l_rand
        w_plan, w_rand = losses.dynamic_weights(l_plan.detach(), l_rand.detach())
        total = ce + w_plan * l_plan + w_rand * l_rand
        out.update(loss=total, w_plan=w_plan.detach(), w_rand=w_rand.detach())
        return out

    def terms(self, true, plan=None, negative=None) -> dict[str, torch.Tensor]:
        """CE (and L_plan, L_rand, hinge share where the passes are given) of aligned pass rows."""
        if self.loss_chunk is not None:
            return head_losses.receiver_losses(self.receiver.head, true, plan, negative, self.margin, self.loss_chunk)
        lg_n, tgt, m_n = true
        out = {"ce": F.cross_entropy(lg_n[m_n].float(), tgt[m_n])}
        if plan is not None:
            out["l_plan"] = losses.plan_similarity(lg_n, plan[0], m_n & plan[1], chunk_size=None)
        if negative is not None:
            both = m_n & negative[1]
            out["l_rand"], out["hinge_active"] = losses.random_contrast_terms(
                lg_n, negative[0], both, margin=self.margin, chunk_size=None)
        return out
