"""Renamed copies of ALFWorld training episodes: one augmentation against memorising names.

A tiny receiver trained on a few hundred expert episodes learns which object goes with which
room instead of reading the object's name off the task ("put some potato on countertop" ->
"take potato 1 from fridge 1"): at 300 generated games its expert-forced `take` accuracy was
6 of 56 (docs/alfworld.md). A renamed copy replaces the task's target object type, everywhere
in the record (task, first observation, turns, reference plan), by another object type of the
training games that the record does not mention, so the only way to get the copy's actions
right is to copy the name from the task and the observations.

Copies are text only: their `game` still names the original game (whose engine state holds
the original object), they are training records and never played. Each copy gets a
content-derived `task_id` (the original id and the new name); the test splits are untouched.
"""

import hashlib
import json
import random
import re

#: The target object type in an official-layout task folder `<task_type>-<Object>-<mrecep>-...`.
_FOLDER = re.compile(r"(?:^|/)[a-z_]+-([A-Za-z]+)-[A-Za-z]+-[A-Za-z]+-\d+/")


def target_object(record: dict) -> str:
    """The lower-cased target object type of a record, from its game folder name ("" if none)."""
    match = _FOLDER.search(record.get("game", ""))
    return match[1].lower() if match else ""


def _word(name: str) -> re.Pattern:
    """`name` as a whole word (so renaming "pen" leaves "pencil" alone)."""
    return re.compile(rf"\b{re.escape(name)}\b")


def renamed_copies(records: list[dict], copies: int, seed: int) -> list[dict]:
    """`copies` renamed copies of each record (new names drawn with `seed`; none if 0)."""
    if copies <= 0:
        return []
    names = sorted({target_object(r) for r in records} - {""})
    rng = random.Random(seed)
    out = []
    for rec in sorted(records, key=lambda r: r["task_id"]):
        old = target_object(rec)
        if not old:
            continue
        text = json.dumps(rec, sort_keys=True)
        pool = [n for n in names if not _word(n).search(text)]
        for new in rng.sample(pool, min(copies, len(pool))):
            copy = json.loads(_word(old).sub(new, text))
            copy["task_id"] = hashlib.sha256(f"{rec['task_id']}:{new}".encode()).hexdigest()[:16]
            out.append(copy)
    return out
