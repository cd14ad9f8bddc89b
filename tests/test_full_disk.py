"""A full disk: a small tmpfs (root only) under a shard write, a receiver checkpoint and a tables
write. Each ends with one line naming the path and "no space left on device" (exit 2), and
nothing partial is left on the disk: no temporary file or folder, no half-written file.
"""

import contextlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

import polars as pl
import pytest
import torch

from interlat import shards
from interlat.errors import InterlatError

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


@contextlib.contextmanager
def small_disk(where: Path, size: str = "4m"):
    """A tmpfs of `size` mounted at `where`, unmounted on exit (skip: not root, or no mount)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"mount -t tmpfs failed: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def fill(disk: Path, leave: int) -> None:
    """Fill `disk` up to `leave` free bytes with a ballast file."""
    st = os.statvfs(disk)
    with open(disk / "ballast", "wb") as f:
        f.write(b"\0" * max(st.f_bavail * st.f_frsize - leave, 0))


def left_on(disk: Path) -> list[str]:
    """Everything on the disk except the ballast (hidden temporaries included)."""
    return sorted(str(p.relative_to(disk)) for p in disk.rglob("*") if p.name != "ballast")


def one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def test_shard_write_on_a_full_disk_names_the_part_and_leaves_nothing(tmp_path):
    messages = [
        shards.Message(task_id=f"t{i}", benchmark="math", split="train", subject="algebra", level=1, task="x",
                       plan="p", prompt_token_ids=[1, 2], plan_token_ids=[3] * 1000, H=torch.randn(1000, 256),
                       sender_id="s")
        for i in range(8)
    ]  # 8 x 1000 x 256 float32: 8 MB of states, twice the disk
    with small_disk(tmp_path / "disk") as disk:
        part = disk / shards.part_name(0, 0)
        with pytest.raises(InterlatError) as e:
            shards.write_part(part, messages, dtype="float32")
        assert e.value.exit_code == 2
        assert e.value.format_message() == f"{part}: no space left on device"
        assert left_on(disk) == []


def test_receiver_checkpoint_on_a_full_disk_is_one_line_exit_2_and_nothing_written(tiny, tmp_path):
    with small_disk(tmp_path / "disk") as disk:
        fill(disk, 16 << 10)  # 16 KiB left: less than the receiver's weights
        out = disk / "receiver"
        run = subprocess.run(
            [str(BIN / "interlat"), "--threads", "1", "train", "--base", str(tiny["receiver"]),
             "--conversations", str(tiny["convert"] / "train.jsonl"), "--latents", str(tiny["latents"]),
             "--steps", "2", "--batch-size", "2", "--work-dir", str(tmp_path / "work"),
             "--log-csv", str(disk / "log.csv"), "--out", str(out)],
            capture_output=True, text=True, env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"},
        )  # fmt: skip
        assert run.returncode == 2, run.stderr[-3000:]
        assert one_line(run.stderr) == f"Error: {out}: no space left on device", run.stderr[-3000:]
        assert "Traceback" not in run.stderr
        assert left_on(disk) == []


def test_tables_on_a_full_disk_are_one_line_exit_2_and_nothing_written(tmp_path):
    rows = [{"task_id": f"t{i}", "variant": v, "seed": 0, "subject": "Algebra", "level": 1 + i % 5,
             "correct": (i + len(v)) % 3 == 0, "message_rows": 4} for v in ("interlat", "no_comm") for i in range(40)]
    records = []
    for v in ("interlat", "no_comm"):
        path = tmp_path / f"{v}.parquet"
        pl.DataFrame([r for r in rows if r["variant"] == v]).write_parquet(path)
        records += ["--evaluations", str(path)]
    with small_disk(tmp_path / "disk") as disk:
        fill(disk, 8 << 10)  # 8 KiB left: less than the tables and plots
        out = disk / "tables"
        run = subprocess.run([str(BIN / "interlat"), "tables", *records, "--out", str(out)],
                             capture_output=True, text=True)
        assert run.returncode == 2, run.stderr[-3000:]
        assert one_line(run.stderr) == f"Error: {out}: no space left on device", run.stderr[-3000:]
        assert left_on(disk) == []


def test_the_full_disk_line_is_not_given_to_other_errors(tmp_path):
    """Only a write that failed for want of space is reported so; other errors pass unchanged."""
    from interlat.atomic import atomic_path

    with pytest.raises(ValueError, match="not about space"), atomic_path(tmp_path / f"{uuid.uuid4()}.txt"):
        raise ValueError("not about space")
    assert list(tmp_path.iterdir()) == []
