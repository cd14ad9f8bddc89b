"""Paths D and B of the compression objective, computed once per task instead of every step.

The teacher is frozen and in eval mode, so the full message's path D and the no-message path
B give the same rows for a task in every epoch: recomputing them each step is ~22% of a
student step on the default (two teacher forwards without gradient next to path A's forward
and backward). `ReferenceCache.fill` runs them once over all tasks, in fixed batches of the
given size, so the cached rows depend only on the tasks and the batch size (a resumed run
refills the same values); `ReferenceCache.batch` stacks a step's tasks back into
`CompressionLoss.reference_paths`' layout.

Memory: per task, its adapted message rows and two rows of the teacher's hidden size per
supervised token (all in the teacher's dtype, on its device). That is small on the default and
large at paper scale (7B teacher, long answers), where `compress.cache_reference: false` keeps
the per-step recomputation.
"""

import torch

from interlat.compress.data import make_batch
from interlat.progress import progress


class ReferenceCache:
    """task id -> (adapted full message [L, d], hidden rows D [n_d, d], hidden rows B [n_b, d])."""

    def __init__(self):
        self.rows: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def fill(self, loss_fn, samples, tokenizer, vocab_size: int, device, batch_size: int) -> None:
        """Run paths D and B over `samples` (in their order, `batch_size` at a time)."""
        for start in progress(range(0, len(samples), batch_size), desc="reference paths D and B (batches)"):
            part = samples[start : start + batch_size]
            adapted, lengths, rows_d, m_d, rows_b, m_b = loss_fn.reference_paths(
                make_batch(part, tokenizer, vocab_size, device))
            for i, s in enumerate(part):
                self.rows[s.task_id] = (adapted[i, : int(lengths[i])].clone(), rows_d[i, : int(m_d[i].sum())].clone(),
                                        rows_b[i, : int(m_b[i].sum())].clone())

    def __contains__(self, task_id: str) -> bool:
        return task_id in self.rows

    def batch(self, task_ids: list[str], width: int):
        """`reference_paths`' tuple for these tasks, the D and B rows padded to `width` (path A's)."""
        parts = [self.rows[t] for t in task_ids]
        adapted = torch.nn.utils.rnn.pad_sequence([a for a, _, _ in parts], batch_first=True)
        lengths = torch.tensor([a.shape[0] for a, _, _ in parts], device=adapted.device)
        rows_d, m_d = _padded([d for _, d, _ in parts], width)
        rows_b, m_b = _padded([b for _, _, b in parts], width)
        return adapted, lengths, rows_d, m_d, rows_b, m_b


def _padded(rows: list[torch.Tensor], width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows [n_i, d] -> ([B, width, d] zero-padded, mask [B, width]: the first n_i of each row)."""
    out = rows[0].new_zeros(len(rows), width, rows[0].shape[-1])
    counts = torch.tensor([min(r.shape[0], width) for r in rows], device=out.device)
    for i, r in enumerate(rows):
        out[i, : counts[i]] = r[:width]
    return out, torch.arange(width, device=out.device)[None, :] < counts[:, None]
