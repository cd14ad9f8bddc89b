"""MATH records: the hendrycks MATH download, local copies, and the shared record checks.

Every MATH-format record, generated or downloaded, has `task_id` (content-derived),
`problem`, `solution` (with a final ``\\boxed{}``), `subject` (a MATH subject name), `level`
(1-5) and `split`. `--source hf` loads hendrycks MATH with `datasets` (one config per
subject of the dataset id given in config; default `EleutherAI/hendrycks_math`, which keeps
the original `problem`/`level`/`type`/`solution` fields), `--source PATH` reads a local copy:
Parquet, JSON/JSON Lines, or a `save_to_disk` folder.
"""

import json
import re
from pathlib import Path

from interlat.data.math.generated import task_id
from interlat.errors import InterlatError
from interlat.jsonl import check_unicode

SUBJECT_CONFIGS = {
    "algebra": "Algebra",
    "counting_and_probability": "Counting & Probability",
    "geometry": "Geometry",
    "intermediate_algebra": "Intermediate Algebra",
    "number_theory": "Number Theory",
    "prealgebra": "Prealgebra",
    "precalculus": "Precalculus",
}
REQUIRED = ("problem", "solution", "subject", "level", "split")
SPLITS = ("train", "test")
#: files of a local copy (`--source PATH`) that are read
SUFFIXES = (".jsonl", ".json", ".parquet")


def normalise(raw: dict, split: str, where: str) -> dict:
    """A hendrycks-style row (`type`, "Level 3") or one of ours -> our record; errors name the field."""
    subject = raw.get("subject") or raw.get("type")
    level = raw.get("level")
    if isinstance(level, str):
        m = re.search(r"\d", level)
        level = int(m.group()) if m else 0
    rec = {
        "problem": raw.get("problem"),
        "solution": raw.get("solution"),
        "subject": subject,
        "level": level,
        "split": raw.get("split") or split,
    }
    for key in REQUIRED:
        if rec[key] is None or rec[key] == "":
            raise InterlatError(f"{where}: field \"{key}\": missing or empty")
        kinds = (int,) if key == "level" else (str,)
        if not isinstance(rec[key], kinds) or isinstance(rec[key], bool):
            raise InterlatError(f"{where}: field \"{key}\": {type(rec[key]).__name__}, expected {kinds[0].__name__}")
    if rec["split"] not in SPLITS:
        raise InterlatError(f"{where}: field \"split\": {rec['split']!r}, expected one of {list(SPLITS)}")
    for key in ("task_id", "plan"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise InterlatError(f"{where}: field \"{key}\": {type(raw[key]).__name__}, expected str")
    if "\\boxed" not in rec["solution"]:
        raise InterlatError(f"{where}: field \"solution\": no \\boxed{{}} answer")
    if rec["subject"] not in SUBJECT_CONFIGS.values():
        raise InterlatError(f"{where}: field \"subject\": {rec['subject']!r} is not a MATH subject")
    if not 0 <= int(rec["level"]) <= 5:
        raise InterlatError(f"{where}: field \"level\": {rec['level']!r} not in 1-5")
    rec["level"] = int(rec["level"])
    rec["task_id"] = raw.get("task_id") or task_id("math", rec["problem"])
    if raw.get("plan"):
        rec["plan"] = raw["plan"]
    return rec


def load_hf(dataset_id: str, subjects: list[str], splits: tuple[str, ...] = ("train", "test")) -> list[dict]:
    """Download hendrycks MATH with `datasets` (one config per subject)."""
    import datasets

    out = []
    for cfg in subjects:
        if cfg not in SUBJECT_CONFIGS:
            raise InterlatError(f"config: field \"data.math.subjects\": unknown subject {cfg!r}")
        for split in splits:
            ds = datasets.load_dataset(dataset_id, cfg, split=split)
            out += [normalise(r, split, f"{dataset_id}/{cfg}/{split}: row {i}") for i, r in enumerate(ds)]
    return out


def decode_text(f: Path) -> str:
    """A file's text: UTF-8, a leading byte-order mark accepted; an error names the file and line."""
    data = f.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InterlatError(f"{f}: line {line}: not valid UTF-8 (byte {data[e.start]:#04x})") from None


def json_records(f: Path) -> list[tuple[int, object]]:
    """(row from 1, record) of a JSON file (one object, or a list of them: rows are list
    positions) or of a JSON Lines file (rows are line numbers; blank lines skipped); a parse
    error names the file's line."""
    text = decode_text(f)
    if f.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InterlatError(f"{f}: line {e.lineno}: not valid JSON ({e.msg})") from None
        if isinstance(data, dict):
            return [(1, data)]
        if not isinstance(data, list):
            raise InterlatError(f"{f}: a JSON {type(data).__name__}, expected an object or a list of objects")
        return list(enumerate(data, 1))
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                records.append((number, json.loads(line)))
            except json.JSONDecodeError as e:
                raise InterlatError(f"{f}: line {number}: not valid JSON ({e.msg})") from None
    return records


def parquet_records(f: Path) -> list[tuple[int, object]]:
    """(row from 1, record) of a Parquet file; an unreadable file is an error naming it."""
    import polars as pl

    try:
        return list(enumerate(pl.read_parquet(f).to_dicts(), 1))
    except Exception as e:  # noqa: BLE001 (polars and pyarrow raise many kinds on a damaged file)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise InterlatError(f"{f}: not a readable Parquet file ({first})") from None


def load_local(path: str | Path) -> list[dict]:
    """Read a local copy (Parquet, JSON, JSON Lines or a `save_to_disk` folder)."""
    path = Path(path)
    if not path.exists():
        raise InterlatError(f"{path}: no such file or folder")
    rows: list[tuple[str, str, object]] = []  # (where: file and its own row, split, record)
    if path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "dataset_info.json").exists()):
        import datasets

        ds = datasets.load_from_disk(str(path))
        parts = ds.items() if isinstance(ds, datasets.DatasetDict) else [("test", ds)]
        rows = [(f"{path}/{split}: row {i}", split, r) for split, d in parts for i, r in enumerate(d, 1)]
    else:
        files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
        files = [f for f in files if f.suffix in SUFFIXES and not f.name.startswith(".")]
        if not files:
            raise InterlatError(f"{path}: no .jsonl, .json or .parquet file (a local benchmark copy)")
        for f in files:
            split = "train" if "train" in f.name else "test"
            read = parquet_records if f.suffix == ".parquet" else json_records
            rows += [(f"{f}: row {i}", split, r) for i, r in read(f)]
        if not rows:
            raise InterlatError(f"{path}: no records in {', '.join(f.name for f in files)}")
    records = []
    for where, split, r in rows:
        if not isinstance(r, dict):
            raise InterlatError(f"{where}: a JSON {type(r).__name__}, expected an object (a record)")
        check_unicode(r, where)
        records.append(normalise(r, split, where))
    return records
