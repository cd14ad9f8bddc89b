"""Atomic file and folder writes: nothing is ever visible half-written under its final name.

Every writer in the package goes through these helpers: data is written to a temporary
sibling path (same file system) and moved into place with `os.replace`, so a killed job
leaves either the old state or the new one, never a truncated file.

A full disk (ENOSPC, however the writing library reports it) while writing is one line,
``PATH: no space left on device`` (`InterlatError`, exit 2), and the temporary file or folder
is removed first, so nothing partial is left (`no_space_is_an_error`).
"""

import contextlib
import csv
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from interlat.errors import InterlatError

_UMASK = os.umask(0)
os.umask(_UMASK)


def is_no_space(exc: BaseException, folder: str | os.PathLike) -> bool:
    """Whether `exc` is a write that failed for want of space: an OSError with errno ENOSPC, or
    a library's own error saying so (safetensors, polars: "No space left on device (os error
    28)"). torch.save reports only a short write ("unexpected pos"); that counts when the file
    system of `folder` has less than 64 MiB left."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    text = str(exc)
    if "No space left on device" in text or "os error 28" in text:
        return True
    if isinstance(exc, RuntimeError) and ("unexpected pos" in text or "PytorchStreamWriter failed" in text):
        folder = Path(folder)
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        try:
            st = os.statvfs(folder)
        except OSError:
            return False
        return st.f_bavail * st.f_frsize < 64 << 20
    return False


@contextlib.contextmanager
def no_space_is_an_error(path: str | os.PathLike) -> Iterator[None]:
    """Turn a failed write for want of space inside the block into ``PATH: no space left on
    device`` (`InterlatError`, one line, exit 2); other errors pass unchanged."""
    try:
        yield
    except InterlatError:
        raise
    except Exception as e:
        if is_no_space(e, Path(path).parent):
            raise InterlatError(f"{path}: no space left on device") from None
        raise


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `final`; on success rename it onto `final`."""
    final = Path(final)
    with no_space_is_an_error(final):
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        tmp = Path(tmp)
        try:
            yield tmp
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                tmp.unlink()


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to `final`; on success it replaces `final` whole."""
    final = Path(final)
    with no_space_is_an_error(final):
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
        os.chmod(tmp, 0o777 & ~_UMASK)
        try:
            yield tmp
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj) -> None:
    """Write `obj` as sorted, indented JSON atomically (byte-stable for equal objects)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_jsonl(path: str | os.PathLike, rows) -> None:
    """Write an iterable of dicts as JSON Lines atomically."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")


def write_csv(path: str | os.PathLike, rows, columns) -> None:
    """Write dict rows as CSV with a header of `columns`, atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
