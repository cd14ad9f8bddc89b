"""Reading JSON Lines: one record per line; a bad line is an error naming the file and row.

(Writing goes through `interlat.atomic.write_jsonl`: a temporary file, then a rename.)
"""

import json
from collections.abc import Iterator
from pathlib import Path

from interlat.errors import InterlatError


def iter_jsonl(path: Path) -> Iterator[tuple[int, object]]:
    """(row number from 1, record) per line, parsed as it is reached (so callers checking each
    record report the first bad row, whether it fails to parse or fails their check)."""
    path = Path(path)
    if not path.is_file():
        raise InterlatError(f"{path}: no such file")
    for i, line in enumerate(path.read_bytes().splitlines(), 1):
        try:
            yield i, json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InterlatError(f"{path}: row {i}: not valid UTF-8 JSON") from None


def read_jsonl(path: Path) -> list:
    """The records of a JSON Lines file, in order."""
    return [record for _, record in iter_jsonl(path)]
