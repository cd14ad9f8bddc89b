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


def test_bench_train_chunking_writes_two_rows_with_equal_values(tmp_path):
    out = tmp_path / "p3b.md"
    run_cli("--threads", 1, "bench", "train", "--compare", "chunking", "--shape", "small", "--batch-size", 2,
            "--tokens", 40, "--message-rows", 8, "--loss-chunk", 16, "--steps", 1, "--out", out)
    rows = [line.split("|")[1:-1] for line in out.read_text().splitlines() if line.startswith("| (")]
    assert [r[0].strip()[:3] for r in rows] == ["(a)", "(b)"]
    assert abs(float(rows[0][5]) - float(rows[1][5])) <= 2e-6  # the same loss (printed to 6 decimals)
    assert float(rows[0][6]) < 1e-5 and float(rows[0][7]) < 1e-4  # terms and gradient norms agree
