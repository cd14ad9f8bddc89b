"""Benchmark data: MATH-format problems and ALFWorld games as records (`interlat data`)."""

from pathlib import Path

from interlat.errors import InterlatError
from interlat.jsonl import iter_jsonl


def split_files(data_dir: Path) -> list[Path]:
    """A benchmark folder's record files: train.jsonl, test.jsonl, and compress.jsonl where there
    is one (MATH problems only the compression student trains on, `data.math.n_compress`)."""
    folder = Path(data_dir)
    student_only = folder / "compress.jsonl"
    return [folder / "train.jsonl", folder / "test.jsonl", *([student_only] if student_only.is_file() else [])]


def load_tasks(data_dir: Path) -> list[dict]:
    """All records of a benchmark folder (`split_files`); each must be an object with string
    `task_id` and `subject` (an error names the file, row and field)."""
    tasks = []
    for path in split_files(data_dir):
        for i, record in iter_jsonl(path):
            if not isinstance(record, dict):
                raise InterlatError(f"{path}: row {i}: a JSON {type(record).__name__}, expected an object (a record)")
            for key in ("task_id", "subject"):
                if not isinstance(record.get(key), str) or not record[key]:
                    raise InterlatError(f"{path}: row {i}: field \"{key}\": missing, empty or not a string")
            tasks.append(record)
    return tasks


def cap_test(records: list[dict], max_test: int) -> list[dict]:
    """Keep at most `max_test` test records per subject (in task_id order; 0 keeps all)."""
    if not max_test:
        return records
    kept, seen = [], {}
    for r in sorted(records, key=lambda r: r["task_id"]):
        if r["split"] == "test":
            seen[r["subject"]] = seen.get(r["subject"], 0) + 1
            if seen[r["subject"]] > max_test:
                continue
        kept.append(r)
    return kept


def math_records(source: str, dataset_id: str, subjects: list[str], *, n_train: int, n_test: int, seed: int,
                 n_compress: int = 0) -> list[dict]:
    """MATH-format records: generated (subjects validated), downloaded (hf) or a local PATH."""
    from interlat.data.math import generated as math_generated
    from interlat.data.math import records as math_source

    if source == "generated":
        names = [math_source.SUBJECT_CONFIGS.get(s, s) for s in subjects]
        unknown = [s for s in names if s not in math_generated.SUBJECTS]
        if unknown:
            raise InterlatError(f"--subjects: {unknown[0]!r}: generated subjects are {math_generated.SUBJECTS}")
        return math_generated.generate(seed=seed, n_train=n_train, n_test=n_test, subjects=tuple(names),
                                       n_compress=n_compress)
    if n_compress:
        raise InterlatError(f"field \"n_compress\": {n_compress}: only generated MATH data has problems for the student alone "
                            f"(source {source!r}; set it to 0)")
    if source == "hf":
        return math_source.load_hf(dataset_id, subjects)
    return math_source.load_local(source)


def run_data(benchmark: str, *, source: str, dataset_id: str, subjects: list[str], task_types: list[str],
             n_train: int, n_test: int, n_valid_seen: int, n_valid_unseen: int, max_train: int, max_test: int,
             max_steps: int, expert: str, alfworld_data: str | None, workers: int, seed: int, out: Path,
             renamed_copies: int = 0, n_compress: int = 0) -> str:
    """Make or download one benchmark into `out` (train.jsonl, test.jsonl; ALFWorld also the games)."""
    from interlat.atomic import atomic_dir, write_jsonl

    def by_id(rows):
        return sorted(rows, key=lambda r: r["task_id"])

    if benchmark == "alfworld":
        from interlat.data.alfworld import records as alfworld_records
        from interlat.data.alfworld.renaming import renamed_copies as renamed_copies_of

        with atomic_dir(out) as tmp:
            records = alfworld_records.build(
                tmp, source=source, task_types=task_types, n_train=n_train, n_valid_seen=n_valid_seen,
                n_valid_unseen=n_valid_unseen, max_train=max_train, max_test=max_test, max_steps=max_steps,
                expert=expert, alfworld_data=alfworld_data, seed=seed, workers=workers,
            )  # fmt: skip
            games = [r for r in records if r["split"] == "train"]
            train = by_id(games + renamed_copies_of(games, renamed_copies, seed))
            write_jsonl(tmp / "train.jsonl", train)
            write_jsonl(tmp / "test.jsonl", by_id(r for r in records if r["split"] != "train"))
        return f"{len(records)} ALFWorld games ({len(train)} train records, {len(train) - len(games)} of them renamed copies) -> {out}"
    records = math_records(source, dataset_id, subjects, n_train=n_train, n_test=n_test, seed=seed, n_compress=n_compress)
    records = cap_test(records, max_test)
    with atomic_dir(out) as tmp:
        for split in ("train", "test"):
            write_jsonl(tmp / f"{split}.jsonl", by_id(r for r in records if r["split"] == split))
        student_only = by_id(r for r in records if r["split"] == "compress")
        if student_only:
            write_jsonl(tmp / "compress.jsonl", student_only)
    return f"{len(records)} records -> {out}"
