"""The Parquet shard store for latent messages (docs/method.md section 1, "Store per task").

A message is the sender's last-layer hidden states H = [h_1 .. h_N], shape [N, d], one row
per generated plan token. This package owns the on-disk schema (declared once, in `SCHEMA`,
with the manifest, in `interlat.shards.manifest`) and every read or write of it;
`docs/formats.md` describes the layout for people.

- One row per task. H is one contiguous, row-major, little-endian buffer in its own dtype
  (bf16 as its raw 2-byte pattern), never nested lists (a reference defect, docs/method.md
  section 6). The column is stored uncompressed and unencoded, so reading is one copy out
  of the file followed by zero-copy `torch.frombuffer` views, one per message.
- Every reader checks the schema version, the column names and types on open, the part's
  sha256 against its folder's `manifest.json` (unless `verify=False`), and per row the
  buffer length and finiteness. Problems raise a one-line `InterlatError` naming the file,
  row and field.
- Parts are written atomically (a dot-prefixed temporary sibling, then a rename), so a
  killed collection leaves only complete parts.

The tensors `read_messages` yields share the buffer Arrow decoded the row group into: a
private heap allocation (Parquet binary values are always copied out of the file, never
mapped), so in-place edits are safe and touch only that message. Arrow marks the buffer
read-only, so torch's one-time "buffer is not writable" warning is silenced on purpose.
"""

from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from interlat.atomic import atomic_path
from interlat.errors import InterlatError
from interlat.shards.codec import (
    DTYPES,
    check_rows,
    fail,
    hidden_states,
    int_lists,
    pack_hidden_states,
)
from interlat.shards.manifest import (
    INDEX_COLUMNS,
    MANIFEST,
    READ_ERRORS,
    SCHEMA,
    SCHEMA_VERSION,
    VERSION_KEY,
    compare_digest,
    first_line,
    open_part,
    read_manifest,
    sha256_file,
    verify_part,
    write_manifest,
)

__all__ = [
    "DTYPES", "INDEX_COLUMNS", "MANIFEST", "SCHEMA", "SCHEMA_VERSION", "VERSION_KEY", "Message",
    "load_messages", "load_messages_of", "part_name", "read_index", "read_manifest", "read_messages",
    "sha256_file", "verify_part", "write_manifest", "write_part",
]

_ROW_GROUP_BYTES = 64 << 20  # hidden-state bytes per row group: bounds memory while reading
_COMPRESSED = ["task_id", "task", "plan", "prompt_token_ids", "plan_token_ids"]
_DICTIONARY = ["benchmark", "split", "subject", "dtype", "sender_id"]
_SCALARS = ["task_id", "benchmark", "split", "subject", "level", "task", "plan", "sender_id"]
_STATISTICS = ["task_id", "benchmark", "split", "subject", "level", "n_tokens", "hidden_size"]


@dataclass(frozen=True, eq=False)
class Message:
    """One task's latent message: H [N, d] in its stored dtype, plus the task and plan.

    `eq=False`: messages compare by identity (tensor fields have no boolean equality).
    `level` is 0 where the benchmark has no levels; `plan_token_ids` has N entries.
    """

    task_id: str
    benchmark: str
    split: str
    subject: str
    level: int
    task: str
    plan: str
    prompt_token_ids: list[int]
    plan_token_ids: list[int]
    H: torch.Tensor
    sender_id: str

    @property
    def n_tokens(self) -> int:
        return self.H.shape[0]

    @property
    def hidden_size(self) -> int:
        return self.H.shape[1]


def part_name(rank: int, index: int) -> str:
    """File name of the `index`-th part written by distributed rank `rank`."""
    return f"part-r{rank:02d}-{index:05d}.parquet"


# ---------------------------------------------------------------- writing


def write_part(path, messages: Sequence[Message], *, dtype: str = "bfloat16") -> str:
    """Write `messages` as one Parquet part at `path` atomically; return its sha256 (hex).

    H is converted to `dtype` first; a message with N < 1 rows, N != len(plan_token_ids),
    a hidden size differing from row 0, a non-finite value or a repeated task_id is refused.
    """
    if dtype not in DTYPES:
        raise InterlatError(f'{path}: dtype "{dtype}": expected one of {", ".join(DTYPES)}')
    if not messages:
        raise InterlatError(f"{path}: no messages to write")
    seen: dict[str, int] = {}
    for row, m in enumerate(messages):
        if m.task_id in seen:
            fail(path, row, "task_id", f'"{m.task_id}" repeats row {seen[m.task_id]}')
        seen[m.task_id] = row
    columns = {"hidden_state": pack_hidden_states(path, messages, dtype)}
    columns["n_tokens"] = pa.array([m.H.shape[0] for m in messages], pa.int32())
    columns["hidden_size"] = pa.array([m.H.shape[1] for m in messages], pa.int32())
    columns["dtype"] = pa.array([dtype] * len(messages), pa.string())
    for field in SCHEMA:
        if field.name not in columns:
            try:
                values = [getattr(m, field.name) for m in messages]
                columns[field.name] = pa.array(values, field.type)
            except (pa.ArrowException, TypeError, ValueError, OverflowError) as e:
                raise InterlatError(f'{path}: field "{field.name}": {e}') from None
    table = pa.Table.from_arrays([columns[n] for n in SCHEMA.names], schema=SCHEMA)
    row_bytes = max(1, columns["hidden_state"].nbytes // len(messages))
    with atomic_path(path) as tmp:
        pq.write_table(
            table,
            tmp,
            row_group_size=max(1, _ROW_GROUP_BYTES // row_bytes),
            compression={n: ("zstd" if n in _COMPRESSED else "none") for n in SCHEMA.names},
            use_dictionary=_DICTIONARY,
            write_statistics=_STATISTICS,
            write_page_checksum=True,
        )
        digest = sha256_file(tmp)
    return digest


# ---------------------------------------------------------------- reading


@dataclass
class _Part:
    path: Path
    entry: dict | None = None  # this part's entry in its folder's manifest
    manifest: dict | None = None


def _parts(path) -> list[_Part]:
    """The parts under `path` (a part, a folder with a manifest, or any folder above), in order."""
    path = Path(path)
    if path.is_file():
        manifest = read_manifest(path.parent) if (path.parent / MANIFEST).exists() else None
        entries = {e["name"]: e for e in (manifest or {}).get("parts", [])}
        return [_Part(path, entries.get(path.name), manifest)]
    if not path.is_dir():
        raise InterlatError(f"{path}: no such file or folder")
    found: list[_Part] = []
    if not _find(path, found):
        raise InterlatError(f"{path}: no shard parts (*.parquet) or {MANIFEST} found")
    return found


def _find(folder: Path, found: list[_Part]) -> bool:
    """Append the parts under `folder` to `found`; True if a part or a manifest was seen."""
    if (folder / MANIFEST).exists():
        manifest = read_manifest(folder)
        listed = {e["name"] for e in manifest["parts"]}
        for extra in sorted(p.name for p in folder.glob("*.parquet") if not p.name.startswith(".")):
            if extra not in listed:
                raise InterlatError(f"{folder / extra}: part not listed in {folder / MANIFEST}")
        for e in sorted(manifest["parts"], key=lambda e: e["name"]):
            found.append(_Part(folder / e["name"], e, manifest))
        return True
    seen = False
    for child in sorted(folder.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            seen |= _find(child, found)
        elif child.suffix == ".parquet":
            found.append(_Part(child))
            seen = True
    return seen


def _open_part(part: _Part, checksums: bool) -> pq.ParquetFile:
    """Check a part against its manifest entry (presence, size, rows) and open it."""
    e = part.entry
    if e is not None and not part.path.is_file():
        raise InterlatError(f"{part.path}: listed in {part.path.parent / MANIFEST} but missing")
    if e is not None and "bytes" in e and part.path.stat().st_size != e["bytes"]:
        size = part.path.stat().st_size
        raise InterlatError(f"{part.path}: {size} bytes, expected {e['bytes']} (truncated?)")
    pf = open_part(part.path, checksums)
    if e is not None and pf.metadata.num_rows != e["rows"]:
        rows = pf.metadata.num_rows
        raise InterlatError(f"{part.path}: {rows} rows, expected {e['rows']} from its {MANIFEST}")
    return pf


def _batches(
    part: _Part, columns: list[str], checksums: bool = False
) -> Iterator[tuple[int, pa.RecordBatch, dict]]:
    """Yield (first row, checked batch, expectations) for each row group of a part."""
    pf = _open_part(part, checksums)
    expect = {k: part.manifest[k] for k in ("dtype", "hidden_size")} if part.manifest else {}
    row0 = 0
    for group in range(pf.num_row_groups):
        try:
            table = pf.read_row_group(group, columns=columns)
        except READ_ERRORS as e:
            raise InterlatError(f"{part.path}: row group {group}: unreadable ({first_line(e)})") from None
        for batch in table.to_batches():
            if batch.num_rows:  # rebuilt to drop the file's (unchecked) schema and field metadata
                batch = pa.RecordBatch.from_arrays(batch.columns, names=batch.schema.names)
                check_rows(part.path, batch, row0, expect)
                yield row0, batch, expect
                row0 += batch.num_rows


def _part_messages(part: _Part, checksums: bool) -> Iterator[tuple[Path, int, Message]]:
    for row0, batch, expect in _batches(part, SCHEMA.names, checksums):
        H = hidden_states(part.path, batch, row0, expect["dtype"])
        c = {n: batch.column(n).to_pylist() for n in _SCALARS}
        prompts = int_lists(batch.column("prompt_token_ids"))
        plans = int_lists(batch.column("plan_token_ids"))
        for i in range(batch.num_rows):
            yield part.path, row0 + i, Message(
                task_id=c["task_id"][i], benchmark=c["benchmark"][i], split=c["split"][i],
                subject=c["subject"][i], level=c["level"][i], task=c["task"][i], plan=c["plan"][i],
                prompt_token_ids=prompts[i], plan_token_ids=plans[i], H=H[i],
                sender_id=c["sender_id"][i],
            )  # fmt: skip


def _check_digest(part: _Part, digest: Future | None) -> None:
    if digest is not None:
        try:
            actual = digest.result()
        except OSError as e:
            raise InterlatError(f"{part.path}: unreadable ({e})") from None
        compare_digest(part.path, actual, part.entry["sha256"])


def _iter_sourced(path, verify: bool) -> Iterator[tuple[Path, int, Message]]:
    """Messages with their file and row. With `verify`, a part's sha256 is computed on a
    background thread while the part decodes, and its messages are yielded only once it
    matches (so one part at a time is held in memory)."""
    parts = _parts(path)
    if not verify:
        for part in parts:
            yield from _part_messages(part, checksums=False)
        return
    pool = ThreadPoolExecutor(1, thread_name_prefix="interlat-sha256")
    digests: dict[int, Future | None] = {}

    def digest(i: int) -> Future | None:  # hash at most one part ahead of the decoder
        if i < len(parts) and i not in digests:
            digests[i] = pool.submit(sha256_file, parts[i].path) if parts[i].entry else None
        return digests.get(i)

    try:
        for i, part in enumerate(parts):
            mine, _ = digest(i), digest(i + 1)
            try:
                messages = list(_part_messages(part, checksums=mine is None))
            except InterlatError:
                _check_digest(part, mine)  # a corrupt part is reported as such
                raise
            _check_digest(part, mine)
            yield from messages
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def read_messages(path, *, verify: bool = True) -> Iterator[Message]:
    """Yield every message under `path` (a part, a subject folder, or any folder above).

    Order is deterministic: folders and files sorted by name, parts in manifest order, rows in
    file order. `verify=False` skips the sha256 of each part (all other checks still run).
    """
    for _, _, message in _iter_sourced(path, verify):
        yield message


def load_messages(path, *, verify: bool = True) -> dict[str, Message]:
    """All messages under `path` keyed by task_id; a task_id seen twice is an error naming both."""
    out: dict[str, Message] = {}
    where: dict[str, tuple[Path, int]] = {}
    for file, row, m in _iter_sourced(path, verify):
        if m.task_id in where:
            f0, r0 = where[m.task_id]
            raise InterlatError(
                f'{file}: row {row}: field "task_id": "{m.task_id}" also in {f0} row {r0}'
            )
        out[m.task_id], where[m.task_id] = m, (file, row)
    return out


def _folder_of(path) -> Path:
    path = Path(path)
    return path.parent if path.is_file() else path


def load_messages_of(paths, *, hidden_size: int | None = None, reader: str = "the receiver's adapter",
                     allow_no_manifest: bool = False) -> dict[str, Message]:
    """The messages of several shard folders (one per subject) keyed by task_id: the one reader
    of message sets for train, evaluate, compress and latency.

    Every folder needs its `manifest.json` (each part's sha256 is verified against it) unless
    `allow_no_manifest` (then parts are read on their page checksums only). All folders must
    have one hidden width (a folder of another width is an error naming it and both widths);
    with `hidden_size`, that width must be it (else an error naming the folder and `reader`).
    A task_id in two folders is an error naming both.
    """
    out: dict[str, Message] = {}
    source: dict[str, Path] = {}
    first: tuple[Path, int] | None = None
    for path in paths:
        folder, messages = _folder_of(path), None
        if (folder / MANIFEST).exists():  # the width is checked before any part is read
            width = int(read_manifest(folder)["hidden_size"])
        elif allow_no_manifest:
            messages = load_messages(path)
            widths = sorted({m.H.shape[1] for m in messages.values()})
            if len(widths) > 1:
                raise InterlatError(f'{path}: field "hidden_size": messages of widths {widths}, expected one')
            width = widths[0] if widths else None
        else:
            raise InterlatError(f"{path}: no {MANIFEST} (not a shard folder written by `interlat collect`)")
        if width is not None:
            if hidden_size is not None and width != hidden_size:
                raise InterlatError(f'{path}: field "hidden_size": {width}, {reader} expects {hidden_size}')
            if first is None:
                first = (Path(path), width)
            elif width != first[1]:
                raise InterlatError(f'{path}: field "hidden_size": {width}, but {first[0]} has {first[1]}')
        if messages is None:
            messages = load_messages(path)
        for task_id, m in messages.items():
            if task_id in out:
                raise InterlatError(f'task_id "{task_id}": in both {source[task_id]} and {path}')
            out[task_id], source[task_id] = m, Path(path)
    return out


def read_index(path, *, verify: bool = False) -> pl.DataFrame:
    """Every column but hidden_state, for all messages under `path`, plus `part` (the file).

    Only those columns are read from disk; the per-row checks that need no hidden state run.
    """
    tables = []
    for part in _parts(path):
        if verify and part.entry:
            verify_part(part.path, part.entry["sha256"])
        for _, batch, _ in _batches(part, INDEX_COLUMNS, checksums=verify and not part.entry):
            t = pa.Table.from_batches([batch])
            tables.append(t.append_column("part", pa.array([str(part.path)] * len(t), pa.string())))
    if not tables:  # folders whose manifests list no parts
        fields = [SCHEMA.field(n) for n in INDEX_COLUMNS] + [pa.field("part", pa.string())]
        return pl.from_arrow(pa.schema(fields).empty_table())
    return pl.from_arrow(pa.concat_tables(tables))
