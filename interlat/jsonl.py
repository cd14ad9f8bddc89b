"""Reading JSON Lines: one record per line; a bad line is an error naming the file and row.

A UTF-8 byte-order mark at the start of the file is accepted; bytes that are not UTF-8, a
line that is not JSON, or a string holding a lone surrogate (`"\\ud800"`, which no UTF-8
writer can write back) is an error naming the file, row and field.
(Writing goes through `interlat.atomic.write_jsonl`: a temporary file, then a rename.)
"""

import codecs
import json
from collections.abc import Iterator
from pathlib import Path

from interlat.errors import InterlatError


def _printable(name: str) -> str:
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def lone_surrogate(value, field: str = "") -> str | None:
    """The field (dotted path) of the first string or key holding a lone surrogate, else None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return field or "(the value)"
    elif isinstance(value, dict):
        for key, item in value.items():
            name = f"{field}.{_printable(str(key))}" if field else _printable(str(key))
            if lone_surrogate(key) is not None:
                return name
            hit = lone_surrogate(item, name)
            if hit is not None:
                return hit
    elif isinstance(value, list):
        for j, item in enumerate(value):
            hit = lone_surrogate(item, f"{field}[{j}]")
            if hit is not None:
                return hit
    return None


def check_unicode(record, where: str) -> None:
    """An error naming `where` and the field when a string of `record` holds a lone surrogate."""
    field = lone_surrogate(record)
    if field is not None:
        raise InterlatError(f"{where}: field \"{field}\": a lone surrogate (\\ud800-\\udfff escape), not valid Unicode")


def iter_jsonl(path: Path) -> Iterator[tuple[int, object]]:
    """(row number from 1, record) per line, parsed as it is reached (so callers checking each
    record report the first bad row, whether it fails to parse or fails their check)."""
    path = Path(path)
    if not path.is_file():
        raise InterlatError(f"{path}: no such file")
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):  # a byte-order mark is accepted
        data = data[len(codecs.BOM_UTF8) :]
    for i, line in enumerate(data.splitlines(), 1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InterlatError(f"{path}: row {i}: not valid UTF-8 (byte {line[e.start]:#04x} at column {e.start + 1})") from None
        try:
            record = json.loads(text)
        except json.JSONDecodeError as e:
            raise InterlatError(f"{path}: row {i}: not valid JSON ({e.msg})") from None
        if "\\u" in text:  # only an escape can make a lone surrogate
            check_unicode(record, f"{path}: row {i}")
        yield i, record


def read_jsonl(path: Path) -> list:
    """The records of a JSON Lines file, in order."""
    return [record for _, record in iter_jsonl(path)]
