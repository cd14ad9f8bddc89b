"""Per-row checks and zero-copy decoding of shard rows (docs/method.md section 1; schema in shards/manifest.py).

`interlat.shards` owns the schema and the files; this module owns the hidden_state column
and the checks of one record batch: packing every H into one buffer on write, vectorised
row checks on read (nulls, lengths, hidden size, dtype), the finiteness test (on the raw
bit patterns, in cache-sized blocks, ~15 GB/s), and the split of the buffer into one
[N, d] tensor view per message without copying.
Every failure is an `InterlatError` naming the file, row and field.
"""

import sys
import warnings
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from interlat.errors import InterlatError

# dtype name -> (torch dtype, unsigned view for bit checks, |bits| mask, smallest non-finite |bits|)
DTYPES = {
    "bfloat16": (torch.bfloat16, np.dtype("<u2"), 0x7FFF, 0x7F80),
    "float16": (torch.float16, np.dtype("<u2"), 0x7FFF, 0x7C00),
    "float32": (torch.float32, np.dtype("<u4"), 0x7FFFFFFF, 0x7F800000),
}


def fail(path, row: int, field: str, what: str):
    raise InterlatError(f'{path}: row {row}: field "{field}": {what}')


def first_nonfinite(bits: np.ndarray, dtype: str, block: int = 1 << 19) -> int | None:
    """Index of the first non-finite value in a little-endian bit view, or None (blocked, ~15 GB/s)."""
    _, _, mask, limit = DTYPES[dtype]
    tmp = np.empty(min(block, bits.size), bits.dtype)
    for start in range(0, bits.size, block):
        chunk = bits[start : start + block]
        t = np.bitwise_and(chunk, mask, out=tmp[: chunk.size])
        if t.max() >= limit:
            return start + int(np.argmax(t >= limit))
    return None


def pack_hidden_states(path, messages: Sequence, dtype: str) -> pa.Array:
    """Check every message's H [N, d] and pack all of them into one large_binary column.

    One copy (the concatenation in `dtype`); the Arrow array wraps it without another.
    """
    tdtype, bits_dtype, _, _ = DTYPES[dtype]
    tensors, d = [], None
    for row, m in enumerate(messages):
        H = m.H
        if not isinstance(H, torch.Tensor) or H.dim() != 2 or H.shape[0] < 1:
            shape = tuple(H.shape) if isinstance(H, torch.Tensor) else type(H).__name__
            fail(path, row, "hidden_state", f"H of shape {shape}, expected [N >= 1, d]")
        d = H.shape[1] if d is None else d
        if H.shape[1] != d or d < 1:
            fail(path, row, "hidden_size", f"{H.shape[1]}, expected {d} as in row 0 (>= 1)")
        if H.shape[0] != len(m.plan_token_ids):
            fail(
                path,
                row,
                "n_tokens",
                f"H has {H.shape[0]} rows, plan_token_ids has {len(m.plan_token_ids)}",
            )
        tensors.append(H.detach().to("cpu", tdtype).reshape(-1))
    flat = torch.cat(tensors)
    bits = flat.view(torch.int32 if bits_dtype.itemsize == 4 else torch.int16).numpy()
    bits = bits.view(bits_dtype.newbyteorder("=")).astype(bits_dtype, copy=False)
    bad = first_nonfinite(bits, dtype)
    if bad is not None:
        sizes = np.cumsum([t.numel() for t in tensors])
        row = int(np.searchsorted(sizes, bad, side="right"))
        raise InterlatError(
            f'{path}: row {row}: task_id "{messages[row].task_id}": field "hidden_state": '
            f"non-finite value (NaN or inf) in {dtype}"
        )
    offsets = np.zeros(len(tensors) + 1, np.int64)
    np.cumsum([t.numel() * bits_dtype.itemsize for t in tensors], out=offsets[1:])
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(bits)]
    return pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(tensors), buffers)


def check(path, row0: int, field: str, bad: np.ndarray, describe) -> None:
    """Fail on the first row where `bad` holds; `describe(i)` says what was found and expected."""
    if bad.any():
        i = int(np.argmax(bad))
        fail(path, row0 + i, field, describe(i))


def check_rows(path, batch: pa.RecordBatch, row0: int, expect: dict) -> None:
    """Vectorised per-row checks of one batch; `expect` carries dtype/hidden_size across batches."""
    try:
        batch.validate(full=True)
    except pa.ArrowException as e:
        raise InterlatError(
            f"{path}: rows {row0}-{row0 + batch.num_rows - 1}: invalid data ({e})"
        ) from None
    for name in batch.schema.names:
        col = batch.column(name)
        check(path, row0, name, col.is_null().to_numpy(zero_copy_only=False), lambda i: "null")
        if isinstance(col, pa.ListArray) and col.flatten().null_count:
            j = int(np.argmax(col.flatten().is_null().to_numpy(zero_copy_only=False)))
            o = col.offsets.to_numpy()
            fail(
                path,
                row0 + int(np.searchsorted(o[1:] - o[0], j, side="right")),
                name,
                "null element",
            )
    n, d = batch.column("n_tokens").to_numpy(), batch.column("hidden_size").to_numpy()
    check(path, row0, "n_tokens", n < 1, lambda i: f"{n[i]}, expected >= 1")
    check(path, row0, "hidden_size", d < 1, lambda i: f"{d[i]}, expected >= 1")
    m = pc.list_value_length(batch.column("plan_token_ids")).to_numpy()
    check(
        path, row0, "plan_token_ids", m != n, lambda i: f"{m[i]} tokens, expected n_tokens = {n[i]}"
    )
    hs = expect.setdefault("hidden_size", int(d[0]))
    check(
        path, row0, "hidden_size", d != hs, lambda i: f"{d[i]}, expected {hs} (manifest or row 0)"
    )
    dtypes = batch.column("dtype")
    dt = expect.setdefault("dtype", dtypes[0].as_py())
    bad = pc.not_equal(dtypes, dt).to_numpy(zero_copy_only=False) | (dt not in DTYPES)
    check(
        path,
        row0,
        "dtype",
        bad,
        lambda i: f'"{dtypes[i]}", expected "{dt}" (one of {", ".join(DTYPES)})',
    )


def hidden_states(path, batch: pa.RecordBatch, row0: int, dtype: str) -> list[torch.Tensor]:
    """Zero-copy [N, d] views of one batch's hidden_state buffers, after length and finiteness checks."""
    tdtype, bits_dtype, _, _ = DTYPES[dtype]
    size = bits_dtype.itemsize
    col = batch.column("hidden_state")
    _, offsets_buf, data = col.buffers()
    offs = np.frombuffer(offsets_buf, np.int64, count=len(col) + 1, offset=col.offset * 8)
    nbytes = np.diff(offs)
    n = batch.column("n_tokens").to_numpy().astype(np.int64)
    d = batch.column("hidden_size").to_numpy().astype(np.int64)
    bad = (nbytes % size != 0) | (nbytes // size != n * d)
    check(path, row0, "hidden_state", bad, lambda i: (
        f"{nbytes[i]} bytes" if nbytes[i] % size else f"{nbytes[i] // size} values"
    ) + f", expected n_tokens*hidden_size = {n[i] * d[i]} ({dtype})")  # fmt: skip
    start, count = int(offs[0]), int(offs[-1] - offs[0]) // size
    bits = np.frombuffer(data, bits_dtype, count=count, offset=start)
    bad = first_nonfinite(bits, dtype)
    if bad is not None:
        i = int(np.searchsorted((offs[1:] - start) // size, bad, side="right"))
        task_id = batch.column("task_id")[i].as_py()
        raise InterlatError(
            f'{path}: row {row0 + i}: task_id "{task_id}": field "hidden_state": non-finite value (NaN or inf)'
        )
    if sys.byteorder != "little":  # pragma: no cover - no big-endian CPU runs torch today
        raise RuntimeError("interlat shards are little-endian; big-endian hosts are not supported")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Arrow buffers are read-only; see module doc
        flat = torch.frombuffer(data, dtype=tdtype, count=count, offset=start)
    ends = ((offs - start) // size).tolist()
    return [
        flat[a:b].view(int(r), int(c)) for a, b, r, c in zip(ends, ends[1:], n, d, strict=False)
    ]


def int_lists(col: pa.ListArray) -> list[list[int]]:
    """A list<int32> column as Python lists, via one flat `tolist` (no per-element Arrow calls)."""
    values = col.flatten().to_numpy(zero_copy_only=False).tolist()
    o = col.offsets.to_numpy()
    o = (o - o[0]).tolist()
    return [values[a:b] for a, b in zip(o, o[1:], strict=False)]
