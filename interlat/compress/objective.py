"""The compression objective: three teacher paths and L = CE_A + w_kl*L_kl + w_align*L_align.

docs/method.md section 4. The teacher is the trained receiver, frozen and in eval mode (dropout
off); the student is the only thing that learns.

- path A (grad): the student's K latents through the teacher's adapter, spliced at the marker
  between `<bop>`/`<eop>`;
- path D (no grad): the dataset's full message (capped only at the teacher's
  `prepended_length`, as in training and evaluation; never at K) through the adapter;
- path B (no grad): the teacher prompt without any message and without `<bop>`/`<eop>`.

Each path's logits are aligned separately with the causal shift (`objective.aligned_logits`)
and compared over the tokens supervised in all three. With `loss_chunk` (the default) the
paths stop at the teacher's hidden states and CE and L_kl are computed `loss_chunk` tokens
at a time (`interlat.train.head_losses.compression_losses`); None uses full logits. L_kl is
`losses.uncertainty_weighted_kl` (T = 4), L_align is `losses.latent_alignment` between the
mean adapted student latents and the mean adapted full message. Paths D and B do not change
while the student trains: with a `interlat.compress.reference.ReferenceCache` they are computed
once per task and read back each step.
"""

import torch
import torch.nn.functional as F

from interlat import losses
from interlat.train import head_losses
from interlat.train.objective import aligned_logits


class CompressionLoss:
    """Callable: batch -> dict of loss terms; see the module docstring."""

    def __init__(self, student, teacher, K: int, kl_weight: float = 0.1, align_weight: float = 0.1, temperature: float = 4.0,
                 loss_chunk: int | None = losses.DEFAULT_CHUNK, cache=None):
        self.loss_chunk = loss_chunk
        self.cache = cache  # a filled `interlat.compress.reference.ReferenceCache`, or None
        self.student = student
        self.teacher = teacher
        self.K = K
        self.kl_weight = kl_weight
        self.align_weight = align_weight
        self.temperature = temperature
        teacher.requires_grad_(False)
        teacher.eval()

    def teacher_logits(self, batch: dict, message: torch.Tensor, lengths: torch.Tensor, delimiters: bool = True):
        embeds, labels, mask, _ = self.teacher.splice(batch, message, lengths, delimiters=delimiters)
        run = self.teacher.logits if self.loss_chunk is None else self.teacher.hidden
        return aligned_logits(run(embeds, mask), labels)  # hidden rows when chunked

    def student_path(self, batch: dict):
        """(adapted student latents [B, K, d], aligned logits, targets, mask) of path A."""
        Z = self.student(batch["student_ids"], batch["student_mask"], self.K)  # forward: also through a DeepSpeed engine
        rows = min(self.K, self.teacher.prepended_length)  # the teacher's cap, as for every message
        lengths = torch.full((Z.shape[0],), rows, dtype=torch.long, device=Z.device)
        adapted = self.teacher.adapt(Z, lengths)
        return (adapted, *self.teacher_logits(batch, adapted, lengths))

    @torch.no_grad()
    def full_message(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Path D's adapted message [B, L, d] and its row counts [B] (the whole stored message)."""
        lengths = batch["H_len"].clamp(max=self.teacher.prepended_length)
        return self.teacher.adapt(batch["H"], lengths), lengths

    @torch.no_grad()
    def reference_paths(self, batch: dict):
        """(adapted D, D's rows, logits D, mask D, logits B, mask B)."""
        adapted, lengths = self.full_message(batch)
        lg_d, _, m_d = self.teacher_logits(batch, adapted, lengths)
        B = lengths.shape[0]
        empty = adapted.new_zeros(B, 1, adapted.shape[-1])
        none = torch.zeros(B, dtype=torch.long, device=lengths.device)
        lg_b, _, m_b = self.teacher_logits(batch, empty, none, delimiters=False)
        return adapted, lengths, lg_d, m_d, lg_b, m_b

    @torch.no_grad()
    def answers_right(self, batch: dict) -> torch.Tensor:
        """Per task [B] bool: the teacher, given the student's K latents, predicts every reference
        answer token greedily. Under teacher forcing on the reference that is exactly whether greedy
        decoding writes the reference answer: the held-out accuracy early stopping can select on."""
        _, rows, target, mask = self.student_path(batch)
        return self._right(rows, target, mask)

    @torch.no_grad()
    def _right(self, rows: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """`answers_right` from path A's aligned rows (logits, or hidden rows when chunked)."""
        logits = rows if self.loss_chunk is None else self.teacher.head(rows)  # answer rows only: small
        return ((logits.argmax(-1) == target) | ~mask).all(-1) & mask.any(-1)

    def __call__(self, batch: dict, answers: bool = False, task_ids: list[str] | None = None) -> dict[str, torch.Tensor]:
        """The loss terms; with `answers`, also "right" (`answers_right`) from the same path A.
        With a cache and the batch's `task_ids` (all cached), paths D and B come from the cache."""
        adapted_a, lg_a, target, m_a = self.student_path(batch)
        if self.cache is not None and task_ids is not None and all(t in self.cache for t in task_ids):
            adapted_d, len_d, lg_d, m_d, lg_b, m_b = self.cache.batch(task_ids, lg_a.shape[1])
        else:
            adapted_d, len_d, lg_d, m_d, lg_b, m_b = self.reference_paths(batch)
        both = m_a & m_d & m_b
        if self.loss_chunk is None:
            ce = F.cross_entropy(lg_a[m_a].float(), target[m_a])
            l_kl = losses.uncertainty_weighted_kl(lg_a, lg_d, lg_b, both, T=self.temperature, chunk_size=None)
        else:
            t = head_losses.compression_losses(self.teacher.head, (lg_a, target, m_a), (lg_d, m_d), (lg_b, m_b),
                                               T=self.temperature, chunk_size=self.loss_chunk)
            ce, l_kl = t["ce"], t["l_kl"]
        rows_d = torch.arange(adapted_d.shape[1], device=len_d.device)[None, :] < len_d[:, None]
        l_align = losses.latent_alignment(adapted_a, adapted_d, None, rows_d)
        total = ce + self.kl_weight * l_kl + self.align_weight * l_align
        out = {"loss": total, "ce": ce.detach(), "l_kl": l_kl.detach(), "l_align": l_align.detach()}
        if answers:
            out["right"] = self._right(lg_a.detach(), target, m_a)
        return out
