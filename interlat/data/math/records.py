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
        if rec[key] in (None, ""):
            raise InterlatError(f"{where}: field \"{key}\": missing or empty")
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


def json_records(f: Path) -> list:
    """The records of a JSON file (one object or a list of them) or of a JSON Lines file (blank
    lines skipped); a parse error names the file's line."""
    text = f.read_text()
    if f.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InterlatError(f"{f}: line {e.lineno}: not valid JSON") from None
        return data if isinstance(data, list) else [data]
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise InterlatError(f"{f}: line {number}: not valid JSON") from None
    return records


def load_local(path: str | Path) -> list[dict]:
    """Read a local copy (Parquet, JSON, JSON Lines or a `save_to_disk` folder)."""
    path = Path(path)
    if not path.exists():
        raise InterlatError(f"{path}: no such file or folder")
    rows: list[tuple[str, dict]] = []
    if path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "dataset_info.json").exists()):
        import datasets

        ds = datasets.load_from_disk(str(path))
        parts = ds.items() if isinstance(ds, datasets.DatasetDict) else [("test", ds)]
        rows = [(split, r) for split, d in parts for r in d]
    else:
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for f in files:
            split = "train" if "train" in f.name else "test"
            if f.suffix == ".parquet":
                import polars as pl

                rows += [(split, r) for r in pl.read_parquet(f).to_dicts()]
            elif f.suffix in (".jsonl", ".json"):
                rows += [(split, r) for r in json_records(f)]
    return [normalise(r, split, f"{path}: row {i}") for i, (split, r) in enumerate(rows)]
