"""Converted conversations (`interlat convert` output): read, check and render as chat messages.

Shared by training, evaluation, compression and the latency stage so that every stage reads
the file alike: `read_conversations` is the one validator of the kind. A bad row is a
one-line `InterlatError` naming the file, the row (from 1) and the field.
"""

from pathlib import Path

from interlat.errors import InterlatError
from interlat.jsonl import iter_jsonl
from interlat.text.prompts import receiver_first_turn

ROLES = {"human": "user", "gpt": "assistant"}
#: fields every row has, all strings (`conversations` is checked on its own)
STRING_FIELDS = ("id", "task", "plan")
#: fields some rows carry (ALFWorld's `game`); strings where present
OPTIONAL_STRING_FIELDS = ("subject", "split", "game")


def _kind(value) -> str:
    return "null" if value is None else type(value).__name__


def _turns_problem(turns) -> tuple[str, str] | None:
    """(field, problem) of the first bad turn of a row's `conversations`, or None."""
    if not isinstance(turns, list):
        return "conversations", f"{_kind(turns)}, expected a list of turns"
    for j, turn in enumerate(turns):
        if not isinstance(turn, dict):
            return f"conversations[{j}]", f'{_kind(turn)}, expected an object with "from" and "value"'
        for key in ("from", "value"):
            if key not in turn:
                return f"conversations[{j}].{key}", "missing"
            if not isinstance(turn[key], str):
                return f"conversations[{j}].{key}", f"{_kind(turn[key])}, expected a string"
        if turn["from"] not in ROLES:
            return f"conversations[{j}].from", f'"{turn["from"]}", expected human or gpt'
    if not turns or turns[0]["from"] != "human":
        found = f'"{turns[0]["from"]}"' if turns else "missing"
        return "conversations[0]", f"{found}, expected the human (task) turn"
    if len(turns) < 2 or turns[1]["from"] != "gpt":
        found = f'"{turns[1]["from"]}"' if len(turns) > 1 else "missing"
        return "conversations[1]", f"{found}, expected the gpt (answer) turn"
    return None


def check_row(row, required: tuple[str, ...] = ()) -> tuple[str, str] | None:
    """(field, problem) of the first thing wrong with one conversation row, or None if it is valid.

    `required`: further string fields the reader needs (e.g. ALFWorld evaluation's `game`).
    """
    if not isinstance(row, dict):
        return "", f"a {_kind(row)}, expected a JSON object"
    for key in (*STRING_FIELDS, "conversations", *required):
        if key not in row:
            return key, "missing"
    for key in (*STRING_FIELDS, *OPTIONAL_STRING_FIELDS, *required):
        if key in row and not isinstance(row[key], str):
            return key, f"{_kind(row[key])}, expected a string"
    if not row["id"]:
        return "id", "empty"
    problem = _turns_problem(row["conversations"])
    if problem is not None:
        return problem
    if "level" in row and (isinstance(row["level"], bool) or not isinstance(row["level"], int)):
        return "level", f"{row['level']!r}, expected an integer"
    return None


def read_conversations(path: str | Path, *, required: tuple[str, ...] = ()) -> list[dict]:
    """The checked rows of a converted JSON Lines file (see `check_row`); ids are unique.

    An empty file, a row that is not a JSON object, a missing or mistyped field, a turn that
    is not {"from": human|gpt, "value": str}, a first turn not by human or no gpt answer after
    it, a non-integer `level` and a repeated `id` are each an error naming file, row and field.
    """
    rows = []
    seen: dict[str, int] = {}
    for i, row in iter_jsonl(Path(path)):
        problem = check_row(row, required)
        if problem is not None:
            field, what = problem
            where = f'field "{field}": ' if field else ""
            raise InterlatError(f"{path}: row {i}: {where}{what}")
        if row["id"] in seen:
            raise InterlatError(f'{path}: row {i}: id "{row["id"]}": duplicate of row {seen[row["id"]]}')
        seen[row["id"]] = i
        rows.append(row)
    if not rows:
        raise InterlatError(f"{path}: no conversations")
    return rows


def check_messages(rows: list[dict], messages: dict, path, latents) -> None:
    """Every row's task must have a message: else one line naming the task id, `path` and the shard folders."""
    for i, row in enumerate(rows, 1):
        if row["id"] not in messages:
            folders = ", ".join(str(p) for p in latents or []) or "no shard folders"
            raise InterlatError(f'{path}: row {i}: task_id "{row["id"]}": no message in {folders}')


def chat_messages(row: dict, mode: str) -> list[dict]:
    """The row's conversation as chat messages; the first human turn rebuilt for `mode`."""
    msgs = [{"role": ROLES[t["from"]], "content": t["value"]} for t in row["conversations"]]
    if mode == "none":
        msgs[0] = {"role": "user", "content": receiver_first_turn(row["task"], with_plan=False)}
    return msgs
