"""The on-disk format of a shard folder (docs/formats.md): the part schema (declared once, in
`SCHEMA`), the schema check on opening a part, and the folder's `manifest.json` (parts with
their sha256, read and written here). `interlat.shards` re-exports all of it.
"""

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from interlat.atomic import write_json
from interlat.errors import InterlatError
from interlat.shards.codec import DTYPES

SCHEMA_VERSION = 1
VERSION_KEY = b"interlat.schema_version"
MANIFEST = "manifest.json"

SCHEMA = pa.schema(
    [
        pa.field("task_id", pa.string(), nullable=False),
        pa.field("benchmark", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("subject", pa.string(), nullable=False),
        pa.field("level", pa.int32(), nullable=False),
        pa.field("task", pa.string(), nullable=False),
        pa.field("plan", pa.string(), nullable=False),
        pa.field("prompt_token_ids", pa.list_(pa.int32()), nullable=False),
        pa.field("plan_token_ids", pa.list_(pa.int32()), nullable=False),
        pa.field("n_tokens", pa.int32(), nullable=False),
        pa.field("hidden_size", pa.int32(), nullable=False),
        pa.field("dtype", pa.string(), nullable=False),
        pa.field("hidden_state", pa.large_binary(), nullable=False),
        pa.field("sender_id", pa.string(), nullable=False),
    ],
    metadata={VERSION_KEY: str(SCHEMA_VERSION).encode()},
)
INDEX_COLUMNS = [name for name in SCHEMA.names if name != "hidden_state"]
# what pyarrow raises on a damaged file (UnicodeDecodeError, a ValueError, for mangled names)
READ_ERRORS = (pa.ArrowException, OSError, ValueError)


def first_line(e: Exception) -> str:
    """First line of an exception's message (pyarrow's can span several)."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def open_part(path, checksums: bool = False) -> pq.ParquetFile:
    """Open a part and check its schema version, column names and column types.

    `checksums` turns on Parquet's per-page CRC32 check (~3 GB/s): the integrity check of
    last resort for a part with no manifest entry; a manifest's sha256 makes it redundant.
    """
    try:
        pf = pq.ParquetFile(path, memory_map=True, page_checksum_verification=checksums)
        schema = pf.schema_arrow
    except READ_ERRORS as e:
        raise InterlatError(f"{path}: not a readable Parquet file ({first_line(e)})") from None
    version = (schema.metadata or {}).get(VERSION_KEY)
    if version != str(SCHEMA_VERSION).encode():
        found = version.decode(errors="replace") if version else "missing"
        raise InterlatError(f"{path}: schema version {found}, expected {SCHEMA_VERSION}")
    problems = [f'unexpected column "{n}"' for n in schema.names if n not in SCHEMA.names]
    problems += [
        f'column "{n}" repeated' for n in sorted(set(schema.names)) if schema.names.count(n) > 1
    ]
    for field in SCHEMA:
        if field.name not in schema.names:
            problems.append(f'missing column "{field.name}"')
        elif schema.names.count(field.name) == 1 and schema.field(field.name).type != field.type:
            problems.append(
                f'field "{field.name}": type {schema.field(field.name).type}, expected {field.type}'
            )
    if problems:
        raise InterlatError(f"{path}: " + "; ".join(problems))
    return pf


# ---------------------------------------------------------------- manifest


def write_manifest(
    folder, *, sender_path: str, sender_id: str, dtype: str, hidden_size: int,
    parts: dict[str, str], counts: dict,
) -> dict:  # fmt: skip
    """Write `folder/manifest.json` listing `parts` (file name -> sha256) atomically; return it.

    Row counts and sizes come from the part files themselves; `counts` is stored as given
    (e.g. {"tasks": 500, "messages": 498, "failed": 2}).
    """
    folder = Path(folder)
    if dtype not in DTYPES:
        raise InterlatError(
            f'{folder / MANIFEST}: dtype "{dtype}": expected one of {", ".join(DTYPES)}'
        )
    entries = []
    for name in sorted(parts):
        file = folder / name
        if Path(name).name != name or not file.is_file():
            raise InterlatError(f'{folder / MANIFEST}: part "{name}": no such file in {folder}')
        rows = open_part(file).metadata.num_rows
        entries.append(
            {"name": name, "sha256": parts[name], "rows": rows, "bytes": file.stat().st_size}
        )
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "sender_path": str(sender_path),
        "sender_id": sender_id,
        "dtype": dtype,
        "hidden_size": int(hidden_size),
        "n_messages": sum(e["rows"] for e in entries),
        "parts": entries,
        "counts": counts,
    }
    write_json(folder / MANIFEST, manifest)
    return manifest


def sha256_file(path) -> str:
    """sha256 (hex) of a file, read in 8 MiB blocks."""
    h, buf = hashlib.sha256(), bytearray(8 << 20)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def verify_part(path, sha256: str) -> None:
    """Raise InterlatError unless the file at `path` hashes to `sha256`."""
    compare_digest(path, sha256_file(path), sha256)


def compare_digest(path, actual: str, sha256: str) -> None:
    if actual != sha256:
        raise InterlatError(
            f"{path}: sha256 {actual[:16]}..., expected {sha256[:16]}... from its {MANIFEST} "
            "(truncated or corrupted part)"
        )


def read_manifest(folder) -> dict:
    """Read and check `folder/manifest.json` (schema version, keys, part entries)."""
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InterlatError(f"{path}: unreadable manifest ({e})") from None
    if not isinstance(manifest, dict):
        raise InterlatError(f"{path}: expected a JSON object")
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise InterlatError(
            f'{path}: field "schema_version": {manifest.get("schema_version")!r}, expected {SCHEMA_VERSION}'
        )
    keys = {"sender_id": str, "dtype": str, "hidden_size": int, "n_messages": int, "parts": list}
    for key, kind in keys.items():
        if not isinstance(manifest.get(key), kind):
            raise InterlatError(
                f'{path}: field "{key}": {manifest.get(key)!r}, expected {kind.__name__}'
            )
    for i, e in enumerate(manifest["parts"]):
        ok = (
            isinstance(e, dict)
            and isinstance(e.get("name"), str)
            and isinstance(e.get("sha256"), str)
        )
        if not ok or Path(e["name"]).name != e["name"] or not isinstance(e.get("rows"), int):
            raise InterlatError(
                f'{path}: field "parts[{i}]": {e!r}, expected {{name, sha256, rows}}'
            )
    return manifest
