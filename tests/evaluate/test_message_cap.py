"""The message is capped at the receiver's `prepended_length` before any variant (docs/method.md section 5).

With 1500-token plans and a cap of 800-1000, a truncation or noise applied to the uncapped
message would make `truncated_100`..`truncated_67` equal the plain run and take noise
statistics from rows the receiver never sees.
"""

from types import SimpleNamespace

import pytest
import torch

from interlat import variants
from interlat.evaluate.messages import raw_messages, task_seed

N, CAP, D = 30, 12, 8


@pytest.fixture
def messages():
    g = torch.Generator().manual_seed(0)
    # rows past the cap are far off, so any use of them shows in the result's statistics
    H = {f"t{i}": torch.cat([torch.randn(CAP, D, generator=g), 100 + torch.randn(N - CAP, D, generator=g)])
         for i in range(3)}
    return {k: SimpleNamespace(H=v) for k, v in H.items()}


@pytest.mark.parametrize("variant, rows", [("interlat", CAP), ("truncated_50", CAP // 2), ("truncated_100", CAP),
                                           ("first_4", 4), ("whitenoise", CAP), ("covnoise_0.5", CAP),
                                           ("randomrot", CAP), ("covgauss_mu", CAP), ("cross_task", CAP)])
def test_variants_act_on_the_capped_message(messages, variant, rows):
    ids = sorted(messages)
    raw = raw_messages(variant, ids, ids, messages, seed=3, cap=CAP)
    for tid, m in zip(ids, raw, strict=True):
        assert m.shape == (rows, D)
        assert m.abs().max() < 50  # nothing from the rows past the cap
        if variant not in ("cross_task",):
            base = variants.parse(variant).perturbation
            expected = variants.perturb(base, messages[tid].H[:CAP].float(), seed=task_seed(3, tid))
            torch.testing.assert_close(m, expected)


def test_truncation_differs_from_the_plain_message_below_the_cap(messages):
    ids = sorted(messages)
    plain = raw_messages("interlat", ids, ids, messages, seed=0, cap=CAP)
    cut = raw_messages("truncated_67", ids, ids, messages, seed=0, cap=CAP)
    assert all(c.shape[0] < p.shape[0] for c, p in zip(cut, plain, strict=True))
