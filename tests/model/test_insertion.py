"""Batched insertion at the marker against a per-sample reference (docs/method.md section 3)."""

import torch

from interlat.model.insertion import (
    IGNORE,
    aligned_positions,
    concat_ragged,
    insert_message,
    left_pad,
)


def reference_insert(E, labels, length, p, Z, m, bop, eop):
    """Slow per-sample splice: E[:p] + [bop, Z[:m], eop] + E[p+1:len]."""
    parts = [E[:p]]
    lab = [labels[:p]]
    if bop is not None:
        parts += [bop[None], Z[:m], eop[None]]
        lab += [torch.full((m + 2,), IGNORE)]
    else:
        parts += [Z[:m]]
        lab += [torch.full((m,), IGNORE)]
    parts.append(E[p + 1 : length])
    lab.append(labels[p + 1 : length])
    return torch.cat(parts), torch.cat(lab)


def test_insert_matches_reference_for_ragged_rows():
    torch.manual_seed(0)
    B, S, L, d = 4, 9, 6, 5
    lengths = torch.tensor([9, 5, 7, 3])
    marker = torch.tensor([4, 0, 6, 2])
    msg_len = torch.tensor([6, 0, 3, 1])
    E = torch.randn(B, S, d)
    labels = torch.randint(0, 50, (B, S))
    Z = torch.randn(B, L, d)
    bop, eop = torch.randn(d), torch.randn(d)
    for delim in (True, False):
        b_, e_ = (bop, eop) if delim else (None, None)
        out, out_labels, mask, new_len = insert_message(E, labels, lengths, marker, Z, msg_len, b_, e_)
        for b in range(B):
            ref, ref_lab = reference_insert(E[b], labels[b], lengths[b], marker[b], Z[b], msg_len[b], b_, e_)
            n = int(new_len[b])
            assert n == len(ref)
            torch.testing.assert_close(out[b, :n], ref)
            assert torch.equal(out_labels[b, :n], ref_lab)
            assert mask[b, :n].all() and not mask[b, n:].any()
            assert (out[b, n:] == 0).all() and (out_labels[b, n:] == IGNORE).all()


def test_insert_is_differentiable_through_the_message():
    E = torch.randn(2, 4, 3)
    Z = torch.randn(2, 2, 3, requires_grad=True)
    out, *_ = insert_message(
        E, torch.zeros(2, 4, dtype=torch.long), torch.tensor([4, 3]), torch.tensor([1, 2]),
        Z, torch.tensor([2, 1]), torch.zeros(3), torch.zeros(3),
    )
    out.sum().backward()
    # row 1 uses only its first message row
    assert Z.grad[0].abs().sum() > 0 and Z.grad[1, 0].abs().sum() > 0 and Z.grad[1, 1].abs().sum() == 0


def test_concat_ragged_mixes_adapted_rows_and_plan_tail():
    a = torch.arange(12.0).reshape(2, 3, 2)
    b = 100 + torch.arange(16.0).reshape(2, 4, 2)
    out, n = concat_ragged(a, torch.tensor([2, 0]), b, torch.tensor([1, 3]), torch.tensor([4, 4]))
    assert n.tolist() == [5, 1]
    torch.testing.assert_close(out[0, :5], torch.cat([a[0, :2], b[0, 1:4]]))
    torch.testing.assert_close(out[1, :1], b[1, 3:4])
    assert (out[1, 1:] == 0).all()


def test_left_pad_moves_padding_left():
    E = torch.arange(1.0, 13.0).reshape(2, 3, 2)
    out, mask = left_pad(E, torch.tensor([3, 1]))
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    torch.testing.assert_close(out[1, 2], E[1, 0])
    assert (out[1, :2] == 0).all()


def test_aligned_positions_apply_the_causal_shift():
    labels = torch.tensor([[IGNORE, IGNORE, 7, 8, IGNORE], [IGNORE, 5, IGNORE, IGNORE, IGNORE]])
    pos, target, mask = aligned_positions(labels)
    # label 7 at position 2 is predicted by the logits at position 1
    assert pos[0].tolist() == [1, 2] and target[0].tolist() == [7, 8]
    assert pos[1, 0].item() == 0 and target[1, 0].item() == 5
    assert mask.tolist() == [[True, True], [True, False]]
