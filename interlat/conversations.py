"""Converted conversations (`interlat convert` output): read, check and render as chat messages.

Shared by training, evaluation and compression so that every stage reads the file alike.
"""

from pathlib import Path

from interlat.errors import InterlatError
from interlat.jsonl import iter_jsonl
from interlat.text.prompts import receiver_first_turn

ROLES = {"human": "user", "gpt": "assistant"}


def read_conversations(path: str | Path) -> list[dict]:
    """Rows of a converted JSON Lines file, each checked for `id` and `conversations`."""
    rows = []
    for i, row in iter_jsonl(Path(path)):
        if not isinstance(row, dict):
            raise InterlatError(f"{path}: row {i}: a {type(row).__name__}, expected a JSON object")
        for key in ("id", "conversations", "task", "plan"):
            if key not in row:
                raise InterlatError(f"{path}: row {i}: field \"{key}\": missing")
        rows.append(row)
    return rows


def chat_messages(row: dict, mode: str) -> list[dict]:
    """The row's conversation as chat messages; the first human turn rebuilt for `mode`."""
    msgs = [{"role": ROLES[t["from"]], "content": t["value"]} for t in row["conversations"]]
    if mode == "none":
        msgs[0] = {"role": "user", "content": receiver_first_turn(row["task"], with_plan=False)}
    return msgs
