"""Splicing a message into the receiver's input embeddings at the marker (docs/method.md section 3).

At the marker position p the embedding sequence becomes
``E[:p] + [e(<bop>), Z, e(<eop>)] + E[p:]`` with the marker itself removed, attention mask 1
and label -100 on the inserted rows. Everything is batched with gathers: messages of
different lengths, dynamic padding to the batch's longest row, masks from lengths.
"""

import torch

IGNORE = -100


def gather_rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """table [B, N, ...], index [B, M] -> [B, M, ...] (row-wise gather)."""
    shape = index.shape + table.shape[2:]
    flat = index.reshape(index.shape[0], -1)
    if table.dim() > 2:
        flat = flat[..., None].expand(-1, -1, *table.shape[2:])
    return torch.gather(table, 1, flat).reshape(shape)


def concat_ragged(
    a: torch.Tensor, a_len: torch.Tensor, b: torch.Tensor, b_start: torch.Tensor, b_len: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: a[:a_len] followed by b[b_start:b_len]; returns (out [B, M, d], lengths [B])."""
    out_len = a_len + (b_len - b_start).clamp(min=0)
    width = max(int(out_len.max().item()) if out_len.numel() else 0, 1)
    j = torch.arange(width, device=a.device)[None, :]
    table = torch.cat([a, b], dim=1)
    idx = torch.where(j < a_len[:, None], j, a.shape[1] + j - a_len[:, None] + b_start[:, None])
    idx = torch.where(j < out_len[:, None], idx, 0).clamp(max=table.shape[1] - 1)
    out = gather_rows(table, idx)
    out = out * (j < out_len[:, None])[..., None].to(out.dtype)
    return out, out_len


def insert_message(
    embeds: torch.Tensor,
    labels: torch.Tensor,
    lengths: torch.Tensor,
    marker_pos: torch.Tensor,
    message: torch.Tensor,
    message_len: torch.Tensor,
    bop: torch.Tensor | None,
    eop: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Replace the marker of each row by ``[bop] + message[:message_len] + [eop]``.

    embeds [B, S, d] right-padded to `lengths`; labels [B, S]; marker_pos [B]; message [B, L, d];
    bop/eop [d] or None (no delimiters: the marker is simply removed, as in compression path B).
    Returns (embeds [B, S', d], labels [B, S'], attention_mask [B, S'], new_lengths [B]).
    """
    B, S, d = embeds.shape
    device = embeds.device
    n_delim = 0 if bop is None else 1
    inserted = message_len + 2 * n_delim
    new_len = lengths - 1 + inserted
    width = int(new_len.max().item())
    j = torch.arange(width, device=device)[None, :].expand(B, -1)
    p = marker_pos[:, None]
    ins = inserted[:, None]
    # Index into table = [embeds (S) | message (L) | bop | eop].
    L = message.shape[1]
    k = j - p
    msg_idx = S + (k - n_delim).clamp(0, max(L - 1, 0))
    in_block = (j >= p) & (j < p + ins)
    idx = torch.where(j < p, j, j - ins + 1)
    if n_delim:
        idx = torch.where(in_block & (k == 0), S + L, idx)
        idx = torch.where(in_block & (k == ins - 1), S + L + 1, idx)
        idx = torch.where(in_block & (k > 0) & (k < ins - 1), msg_idx, idx)
        extra = torch.stack([bop, eop]).to(embeds.dtype)[None].expand(B, -1, -1)
    else:
        idx = torch.where(in_block, msg_idx, idx)
        extra = embeds.new_zeros(B, 2, d)
    valid = j < new_len[:, None]
    idx = torch.where(valid, idx, 0).clamp(0, S + L + 1)
    table = torch.cat([embeds, message.to(embeds.dtype), extra], dim=1)
    out = gather_rows(table, idx) * valid[..., None].to(embeds.dtype)
    label_table = torch.cat([labels, labels.new_full((B, L + 2), IGNORE)], dim=1)
    out_labels = gather_rows(label_table, idx)
    out_labels = torch.where(valid & ~in_block, out_labels, IGNORE)
    return out, out_labels, valid.long(), new_len


def left_pad(embeds: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move right padding to the left (for generation): row b is shifted right by S - len_b."""
    S = embeds.shape[1]
    j = torch.arange(S, device=embeds.device)[None, :]
    shift = (S - lengths)[:, None]
    src = (j - shift).clamp(min=0)
    valid = j >= shift
    out = gather_rows(embeds, src) * valid[..., None].to(embeds.dtype)
    return out, valid.long()


def aligned_positions(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Locate the logits that predict each supervised label (the causal shift).

    labels [B, S] -> (pos [B, T], target [B, T], mask [B, T]): the k-th supervised token of
    row b is predicted by the logits at pos[b, k] = (its position - 1). T is the largest count.
    """
    sup = labels[:, 1:] != IGNORE
    count = sup.sum(1)
    T = max(int(count.max().item()) if count.numel() else 0, 1)
    rank = sup.cumsum(1) - 1
    B, S1 = sup.shape
    pos = torch.zeros(B, T, dtype=torch.long, device=labels.device)
    target = torch.full((B, T), IGNORE, dtype=labels.dtype, device=labels.device)
    rows, cols = sup.nonzero(as_tuple=True)
    pos[rows, rank[rows, cols]] = cols
    target[rows, rank[rows, cols]] = labels[rows, cols + 1]
    mask = torch.arange(T, device=labels.device)[None, :] < count[:, None]
    return pos, target, mask


def pad_messages(Hs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ragged [N_b, d] messages into [B, max N, d] (fp32) with their lengths."""
    lens = torch.tensor([h.shape[0] for h in Hs])
    width = max(int(lens.max().item()), 1)
    out = torch.zeros(len(Hs), width, Hs[0].shape[1])
    for i, h in enumerate(Hs):
        out[i, : h.shape[0]] = h.float()
    return out, lens
