"""P1 benchmark: reading latent messages into torch tensors (docs/method.md sections 1 and 6).

The same random messages are written three ways and read back in full:

(a) interlat shards (`interlat.shards.read_messages`), with and without the sha256 check;
(b) the reference's way (docs/method.md section 6 lists it as a defect): the hidden state as a
    Parquet `list<list<float>>` column, read with `to_pylist()` and `torch.tensor(...)`;
(c) the physical limit: `np.fromfile` of one raw file holding every message back to back,
    `torch.from_numpy`, and a split into per-message views.

Each method gets one warm-up read, then `repeats` timed reads interleaved round-robin with
the other methods (so load from other processes hits all of them alike); the median is
reported. Files are read from a warm page cache. Path (b) holds every value as a Python
float (~32 bytes each), so it is timed on the first `naive_messages` messages only and its
time is scaled per message; the table says so on its row.
"""

import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from interlat.runtime import cpu_name
from interlat.shards import DTYPES, Message, part_name, read_messages, write_manifest, write_part

log = logging.getLogger(__name__)

OURS = "(a) interlat read_messages"
OURS_UNVERIFIED = "(a) interlat, verify=False"
NESTED = "(b) reference: nested lists"
LIMIT = "(c) limit: np.fromfile"
COPY = "(c') readinto a reused buffer"
COLUMNS = [
    "method",
    "messages timed",
    "seconds",
    "best",
    "messages/s",
    "GB/s",
    "speedup vs (b)",
    "time vs (c)",
]


def _messages(H: torch.Tensor, first: int) -> list[Message]:
    """Messages with plausible metadata around the [n, N, d] block `H`."""
    n_tokens = H.shape[1]
    return [
        Message(
            task_id=f"math-bench-{first + i:06d}",
            benchmark="math",
            split="test",
            subject="algebra",
            level=1 + i % 5,
            task="Compute 2 + 2.",
            plan="Add the numbers.",
            prompt_token_ids=list(range(64)),
            plan_token_ids=[11] * n_tokens,
            H=H[i],
            sender_id="bench",
        )  # fmt: skip
        for i in range(H.shape[0])
    ]


def _nested_table(H: torch.Tensor) -> pa.Table:
    """The reference's layout: one list<list<float32>> value per message (built without loops)."""
    n, N, d = H.shape
    values = pa.array(H.float().numpy().reshape(-1))
    rows = pa.ListArray.from_arrays(
        pa.array(np.arange(0, n * N * d + 1, d, dtype=np.int32)), values
    )
    messages = pa.ListArray.from_arrays(pa.array(np.arange(0, n * N + 1, N, dtype=np.int32)), rows)
    return pa.table({"hidden_state": messages})


def _write_all(root: Path, n_messages, n_tokens, hidden, dtype, naive_messages, seed, per_part):
    """Write the same random messages as shards, one raw file and (a prefix) nested lists."""
    tdtype = DTYPES[dtype][0]
    shards, raw, nested = root / "shards", root / "raw.bin", root / "nested.parquet"
    shards.mkdir()
    gen, shas, nested_parts = torch.Generator().manual_seed(seed), {}, []
    with open(raw, "wb") as f:
        for index, first in enumerate(range(0, n_messages, per_part)):
            n = min(per_part, n_messages - first)
            H = torch.randn(n, n_tokens, hidden, generator=gen).to(tdtype)
            shas[part_name(0, index)] = write_part(
                shards / part_name(0, index), _messages(H, first), dtype=dtype
            )
            f.write(memoryview(H.view(torch.uint8).numpy()))
            if first < naive_messages:
                nested_parts.append(_nested_table(H[: naive_messages - first]))
            log.info("wrote %d/%d messages", first + n, n_messages)
    write_manifest(
        shards, sender_path="bench", sender_id="bench", dtype=dtype, hidden_size=hidden,
        parts=shas, counts={"messages": n_messages},
    )  # fmt: skip
    pq.write_table(pa.concat_tables(nested_parts), nested)
    return shards, raw, nested


def _read_shards(path, verify):
    return [m.H for m in read_messages(path, verify=verify)]


def _read_nested(path, dtype):
    lists = pq.read_table(path, columns=["hidden_state"]).column("hidden_state").to_pylist()
    return [torch.tensor(h, dtype=DTYPES[dtype][0]) for h in lists]


def _read_raw(path, n_tokens, hidden, dtype):
    bits = np.fromfile(path, dtype=np.uint8)
    flat = torch.from_numpy(bits).view(DTYPES[dtype][0])
    return list(flat.view(-1, n_tokens, hidden).unbind(0))


def _read_into(path, buffer: np.ndarray, n_tokens, hidden, dtype):
    with open(path, "rb", buffering=0) as f:
        f.readinto(memoryview(buffer))
    flat = torch.from_numpy(buffer).view(DTYPES[dtype][0])
    return list(flat.view(-1, n_tokens, hidden).unbind(0))


def _time(readers: dict, repeats: int) -> dict[str, list[float]]:
    """Seconds per timed read of each reader: one warm-up each, then round-robin repeats."""
    times: dict[str, list[float]] = {name: [] for name in readers}
    for rep in range(repeats + 1):
        for name, read in readers.items():
            start = time.perf_counter()
            out = read()
            elapsed = time.perf_counter() - start
            del out
            if rep:
                times[name].append(elapsed)
        log.info("repeat %d/%d done", rep, repeats)
    return times


def bench_shards(
    *, n_messages: int = 10000, n_tokens: int = 200, hidden: int = 896, dtype: str = "bfloat16",
    workdir, repeats: int = 5, naive_messages: int = 250, seed: int = 0, per_part: int = 1000,
) -> list[dict]:  # fmt: skip
    """Time reading `n_messages` messages of [n_tokens, hidden] `dtype` three ways; return rows.

    Files go to a temporary folder under `workdir`, removed at the end. Besides (c), row (c')
    reads the raw file into one reused buffer: copy bandwidth without fresh-page faults.
    """
    naive_messages = min(naive_messages, n_messages)
    payload = n_messages * n_tokens * hidden * DTYPES[dtype][1].itemsize
    with tempfile.TemporaryDirectory(prefix="bench-shards-", dir=workdir) as tmp:
        shards, raw, nested = _write_all(
            Path(tmp), n_messages, n_tokens, hidden, dtype, naive_messages, seed, per_part
        )
        buffer = np.empty(payload, np.uint8)
        readers = {
            OURS: lambda: _read_shards(shards, True),
            OURS_UNVERIFIED: lambda: _read_shards(shards, False),
            NESTED: lambda: _read_nested(nested, dtype),
            LIMIT: lambda: _read_raw(raw, n_tokens, hidden, dtype),
            COPY: lambda: _read_into(raw, buffer, n_tokens, hidden, dtype),
        }  # fmt: skip
        times = _time(readers, repeats)
        del readers  # frees the reused buffer
    # scale the subsampled path to the full count (its cost is per message)
    scale = {
        name: n_messages / (naive_messages if name == NESTED else n_messages) for name in times
    }
    median = {name: statistics.median(t) * scale[name] for name, t in times.items()}
    rows = []
    for name, s in median.items():
        timed = (
            f"{n_messages:,}"
            if scale[name] == 1
            else f"{naive_messages:,} (scaled to {n_messages:,})"
        )
        rows.append({
            "method": name,
            "messages timed": timed,
            "seconds": float(f"{s:.4g}"),
            "best": float(f"{min(times[name]) * scale[name]:.4g}"),
            "messages/s": round(n_messages / s),
            "GB/s": round(payload / s / 1e9, 3),
            "speedup vs (b)": f"{median[NESTED] / s:.1f}x",
            "time vs (c)": f"{s / median[LIMIT]:.2f}x",
        })  # fmt: skip
    return rows


def describe_setup(n_messages: int, n_tokens: int, hidden: int, dtype: str, repeats: int) -> str:
    """One line naming the workload and machine, for the table's caption."""
    cpu = cpu_name()
    gb = n_messages * n_tokens * hidden * DTYPES[dtype][1].itemsize / 1e9
    return (
        f"{n_messages:,} messages of [{n_tokens}, {hidden}] {dtype} ({gb:.2f} GB of hidden states); "
        f"median of {repeats} reads after a warm-up, warm page cache; {cpu}, {os.cpu_count()} "
        f"cores; torch {torch.__version__}, pyarrow {pa.__version__}, numpy {np.__version__}"
    )

