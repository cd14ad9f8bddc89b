"""`interlat bench train` (P3) runs all three methods on the same batch and writes its table."""

import pytest

from tests.helpers import run_cli

pytestmark = pytest.mark.slow


def test_bench_train_writes_three_rows(tmp_path):
    out = tmp_path / "p3.md"
    run_cli("--threads", 1, "bench", "train", "--batch-size", 2, "--steps", 1, "--warmup", 0, "--out", out)
    text = out.read_text()
    for method in ("(a) interlat", "(b) reference", "(c) limit"):
        assert method in text
    assert text.count("\n| (") == 3
