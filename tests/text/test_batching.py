"""Dynamic padding: rows padded to the batch's longest, masks from lengths (never from ids != pad)."""

import torch

from interlat.text.batching import collate_lm, mask_from_lengths, pad_right
from interlat.text.chat import IGNORE


def test_pad_right_pads_to_the_longest_row_only():
    out, lengths = pad_right([[5, 6, 7], [8]], value=0)
    assert out.tolist() == [[5, 6, 7], [8, 0, 0]] and lengths.tolist() == [3, 1]


def test_mask_comes_from_lengths_even_when_pad_is_a_real_token():
    # pad id 0 also occurs inside the first row: the mask must still cover it
    batch = collate_lm([[0, 4, 0], [9]], [[IGNORE, 4, 0], [9]], pad_id=0)
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE, 4, 0], [9, IGNORE, IGNORE]]


def test_mask_from_lengths():
    assert mask_from_lengths(torch.tensor([0, 2]), 3).tolist() == [[0, 0, 0], [1, 1, 0]]


def test_empty_batch_has_width_one():
    out, lengths = pad_right([], value=0)
    assert out.shape == (0, 1) and lengths.numel() == 0
