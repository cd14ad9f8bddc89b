"""Bad inputs shared by several stages: one validator per input kind, used by every reader of it.

Conversations (train, evaluate, compress, latency read them through
`interlat.conversations.read_conversations`), message sets over several shard folders
(`interlat.shards.load_messages_of`), evaluation records read by `interlat tables`
(`interlat.tables.read_records`) and ALFWorld game files at evaluation
(`interlat.data.alfworld.games.read_game_file`). Every case runs the real `interlat` command
on a broken copy of the tiny world's files and expects one `Error:` line naming the file,
row and field, exit code 2, no traceback and nothing written.
"""

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlat import shards
from interlat.conversations import chat_messages, read_conversations
from interlat.errors import InterlatError
from tests.helpers import assert_clean_error, nothing_written, run_cli


def clean_error(result, out: Path, *needles: str) -> None:
    """One `Error:` line with every needle, no traceback, and `out` not written."""
    assert_clean_error(result, *needles)
    assert "Traceback" not in result.output, result.output
    assert nothing_written(out), sorted(out.parent.iterdir())


def rows_of(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def write_rows(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def evaluate(tiny, tmp_path, conversations, *extra, variant="text", expect=2):
    out = tmp_path / "o.parquet"
    r = run_cli("evaluate", "--receiver", tiny["receiver_ckpt"], "--conversations", conversations,
                "--variant", variant, "--seeds", "0", "--max-new-tokens", 2, *extra,
                "--work-dir", tmp_path / "w", "--out", out, expect=expect)
    return r, out


# ---------------------------------------------------------------- conversations


def _set(path, value):
    """A change setting `path` (keys / list indexes) of row 2 to `value` (`...` deletes it)."""

    def change(rows):
        *parents, last = path
        target = rows[1]
        for p in parents:
            target = target[p]
        if value is ...:
            del target[last]
        else:
            target[last] = value
        return rows

    return change


def _replace_row(value):
    def change(rows):
        rows[1] = value
        return rows

    return change


def _duplicate_first(rows):
    rows[6] = dict(rows[6], id=rows[1]["id"])
    return rows


CONVERSATION_CASES = {
    "empty file": (lambda rows: [], ["no conversations"]),
    "row not an object": (_replace_row(["a", "list"]), ["row 2", "expected a JSON object"]),
    "missing id": (_set(["id"], ...), ["row 2", 'field "id": missing']),
    "missing conversations": (_set(["conversations"], ...), ["row 2", 'field "conversations": missing']),
    "missing task": (_set(["task"], ...), ["row 2", 'field "task": missing']),
    "missing plan": (_set(["plan"], ...), ["row 2", 'field "plan": missing']),
    "conversations not a list": (_set(["conversations"], {"from": "human"}), ["row 2", 'field "conversations"', "list"]),
    "turn not an object": (_set(["conversations", 1], "42"), ["row 2", 'field "conversations[1]"', "object"]),
    "unknown role": (_set(["conversations", 1, "from"], "system"), ["row 2", 'field "conversations[1].from"', "system"]),
    "first turn not human": (_set(["conversations", 0, "from"], "gpt"), ["row 2", 'field "conversations[0]"', "human"]),
    "no answer turn": (_set(["conversations", 1], ...), ["row 2", 'field "conversations[1]"', "missing", "gpt"]),
    "turn value not a string": (_set(["conversations", 1, "value"], 7), ["row 2", 'field "conversations[1].value"', "int"]),
    "task not a string": (_set(["task"], ["x"]), ["row 2", 'field "task"', "list"]),
    "id not a string": (_set(["id"], 12), ["row 2", 'field "id"', "int"]),
    "level not an integer": (_set(["level"], "3"), ["row 2", 'field "level"', "'3'", "integer"]),
    "duplicate id": (_duplicate_first, ["row 7", "id \"", "duplicate of row 2"]),
}


@pytest.mark.parametrize("case", CONVERSATION_CASES)
def test_broken_conversations_at_evaluation(tiny, tmp_path, case):
    change, needles = CONVERSATION_CASES[case]
    conv = write_rows(tmp_path / "test.jsonl", change(rows_of(tiny["convert"] / "train.jsonl")))
    r, out = evaluate(tiny, tmp_path, conv)
    clean_error(r, out, "test.jsonl", *needles)


def _command(name, tiny, tmp_path, conv):
    """The argv of stage `name` reading conversations `conv`, and its output path."""
    w, lat = tmp_path / "w", tiny["latents"]
    if name == "train":
        out = tmp_path / "ckpt"
        return ["train", "--base", tiny["receiver"], "--conversations", conv, "--latents", lat, "--steps", 1,
                "--work-dir", w, "--log-csv", tmp_path / "l.csv", "--out", out], out
    if name == "evaluate":
        out = tmp_path / "o.parquet"
        return ["evaluate", "--receiver", tiny["receiver_ckpt"], "--conversations", conv, "--latents", lat,
                "--variant", "interlat", "--seeds", "0", "--work-dir", w, "--out", out], out
    if name == "compress":
        out = tmp_path / "student"
        return ["compress", "--teacher", tiny["receiver_ckpt"], "--student", tiny["sender"], "--conversations", conv,
                "--latents", lat, "--K", 2, "--max-steps", 1, "--work-dir", w, "--out", out], out
    out = tmp_path / "latency.csv"
    return ["latency", "--sender", tiny["sender"], "--receiver", tiny["receiver_ckpt"], "--conversations", conv,
            "--latents", lat, "--tasks", 1, "--repeats", 1, "--warmup", 0, "--out", out], out


@pytest.mark.parametrize("stage", ["train", "evaluate", "compress", "latency"])
@pytest.mark.parametrize("case", ["duplicate id", "no answer turn"])
def test_every_stage_reads_conversations_through_one_validator(tiny, tmp_path, stage, case):
    change, needles = CONVERSATION_CASES[case]
    conv = write_rows(tmp_path / "c.jsonl", change(rows_of(tiny["convert"] / "train.jsonl")))
    args, out = _command(stage, tiny, tmp_path, conv)
    clean_error(run_cli(*args, expect=2), out, "c.jsonl", *needles)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
_turn = st.one_of(
    st.fixed_dictionaries({"from": st.sampled_from(["human", "gpt", "system"]), "value": st.text(max_size=5)}),
    _json,
)
_valid_row = st.fixed_dictionaries({
    "id": st.sampled_from(["a", "b", "c"]), "task": st.text(max_size=5), "plan": st.text(max_size=5),
    "conversations": st.tuples(st.just("human"), st.just("gpt")).map(
        lambda roles: [{"from": r, "value": "v"} for r in roles]),
}, optional={"level": st.integers(0, 5), "subject": st.just("algebra")})
_row = st.one_of(
    _valid_row,
    _json,
    st.fixed_dictionaries(
        {},
        optional={
            "id": st.one_of(st.sampled_from(["a", "b", ""]), _json),
            "task": st.one_of(st.text(max_size=5), _json),
            "plan": st.one_of(st.text(max_size=5), _json),
            "conversations": st.one_of(st.lists(_turn, max_size=3), _json),
            "level": st.one_of(st.integers(0, 5), _json),
            "subject": st.one_of(st.just("algebra"), _json),
        },
    ),
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(_row, max_size=4))
def test_random_rows_give_valid_conversations_or_a_clean_error(tmp_path_factory, rows):
    path = tmp_path_factory.getbasetemp() / "random-conversations.jsonl"
    write_rows(path, rows)
    try:
        got = read_conversations(path)
    except InterlatError as e:
        assert e.format_message().startswith(f"{path}: "), e.format_message()
        return
    assert got and len({r["id"] for r in got}) == len(got)
    for r in got:  # what every stage then does with a row works
        assert all(isinstance(r[k], str) for k in ("id", "task", "plan"))
        assert r["conversations"][0]["from"] == "human" and r["conversations"][1]["from"] == "gpt"
        assert chat_messages(r, "interlat") and chat_messages(r, "none")


# ---------------------------------------------------------------- message sets over shard folders


def _latents_copy(tiny, tmp_path, name="lat") -> Path:
    dst = tmp_path / name
    shutil.copytree(tiny["latents"], dst)
    return dst


def _widened(tiny, tmp_path) -> Path:
    """A shard folder (with its manifest) of the tiny messages at twice the hidden width, other task ids."""
    lat = tmp_path / "wide"
    lat.mkdir()
    msgs = [shards.Message(**{**m.__dict__, "task_id": "w" + m.task_id[1:], "H": m.H.float().repeat(1, 2)})
            for m in shards.read_messages(tiny["latents"])]
    sha = shards.write_part(lat / shards.part_name(0, 0), msgs, dtype="float32")
    shards.write_manifest(lat, sender_path="x", sender_id="x", dtype="float32", hidden_size=64,
                          parts={shards.part_name(0, 0): sha}, counts={"messages": len(msgs)})
    return lat


def test_the_same_task_in_two_shard_folders(tiny, tmp_path):
    other = _latents_copy(tiny, tmp_path)
    args, out = _command("train", tiny, tmp_path, tiny["convert"] / "train.jsonl")
    r = run_cli(*args, "--latents", other, expect=2)
    clean_error(r, out, "task_id", f"in both {tiny['latents']} and {other}")


@pytest.mark.parametrize("stage", ["train", "evaluate"])
def test_shard_folders_of_different_hidden_widths(tiny, tmp_path, stage):
    wide = _widened(tiny, tmp_path)
    args, out = _command(stage, tiny, tmp_path, tiny["convert"] / "train.jsonl")
    r = run_cli(*args, "--latents", wide, expect=2)
    clean_error(r, out, str(wide), 'field "hidden_size"', "64", "32")


def test_a_shard_folder_without_its_manifest(tiny, tmp_path):
    lat = _latents_copy(tiny, tmp_path)
    (lat / shards.MANIFEST).unlink()
    args, out = _command("evaluate", tiny, tmp_path, tiny["convert"] / "test.jsonl")
    args[args.index(tiny["latents"])] = lat
    clean_error(run_cli(*args, expect=2), out, str(lat), "no manifest.json")


def test_manifest_less_reading_only_when_asked(tiny, tmp_path):
    lat = _latents_copy(tiny, tmp_path)
    (lat / shards.MANIFEST).unlink()
    with pytest.raises(InterlatError, match="no manifest.json"):
        shards.load_messages_of([lat])
    assert set(shards.load_messages_of([lat], allow_no_manifest=True)) == set(shards.load_messages_of([tiny["latents"]]))


def test_a_task_without_a_message_at_evaluation(tiny, tmp_path):
    rows = rows_of(tiny["convert"] / "test.jsonl")
    rows.append(dict(rows[0], id="ffffffffffffffff"))
    conv = write_rows(tmp_path / "test.jsonl", rows)
    r, out = evaluate(tiny, tmp_path, conv, "--latents", tiny["latents"], variant="interlat")
    clean_error(r, out, "test.jsonl", f"row {len(rows)}", 'task_id "ffffffffffffffff"', "no message", str(tiny["latents"]))


# ---------------------------------------------------------------- evaluation records at `interlat tables`


def _records(path: Path, **change) -> Path:
    from interlat.evaluate.math import RECORD_SCHEMA

    row = {"task_id": "a", "variant": "interlat", "seed": 0, "subject": "algebra", "level": 3, "prediction": "x",
           "extracted": "1", "correct": True, "n_tokens": 2, "message_rows": 4, "seconds": 0.1}
    df = pl.DataFrame([row], schema=RECORD_SCHEMA)
    for name, value in change.items():
        df = df.drop(name) if value is ... else df.with_columns(value.alias(name))
    df.write_parquet(path)
    return path


def _shard_part(tiny, tmp_path):
    return sorted(Path(tiny["latents"]).glob("part-*.parquet"))[0]


def _other_parquet(tiny, tmp_path):
    path = tmp_path / "other.parquet"
    pl.DataFrame({"x": [1, 2]}).write_parquet(path)
    return path


def _truncated(tiny, tmp_path):
    path = _records(tmp_path / "trunc.parquet")
    path.write_bytes(path.read_bytes()[:40])
    return path


def _zero_rows(tiny, tmp_path):
    path = _records(tmp_path / "e.parquet")
    pl.read_parquet(path).clear().write_parquet(path)
    return path


RECORD_CASES = {
    "shard part": (_shard_part, ["shard part"]),
    "other parquet": (_other_parquet, ["not evaluation records"]),
    "truncated": (_truncated, ["not a readable Parquet file"]),
    "zero rows": (_zero_rows, ["0 rows"]),
    "missing column": (lambda tiny, tmp: _records(tmp / "e.parquet", seed=...), ['column "seed": missing']),
    "wrong type": (lambda tiny, tmp: _records(tmp / "e.parquet", correct=pl.lit("yes")), ['column "correct"', "String", "Boolean"]),
}


@pytest.mark.parametrize("case", RECORD_CASES)
def test_broken_evaluation_records_at_tables(tiny, tmp_path, case):
    make, needles = RECORD_CASES[case]
    bad = make(tiny, tmp_path)
    good = _records(tmp_path / "good.parquet")
    out = tmp_path / "tables"
    r = run_cli("tables", "--evaluations", good, "--evaluations", bad, "--out", out, expect=2)
    clean_error(r, out, str(bad), *needles)
    r = run_cli("tables", "--evaluations", good, "--compress-evaluations", bad, "--out", out, expect=2)
    clean_error(r, out, str(bad), *needles)


def test_good_evaluation_records_make_tables(tmp_path):
    good = _records(tmp_path / "good.parquet")
    run_cli("tables", "--evaluations", good, "--out", tmp_path / "tables")
    assert (tmp_path / "tables" / "table2_math.csv").is_file()


def test_tables_reads_what_evaluation_writes():
    from interlat.evaluate import alfworld, math
    from interlat.tables import RECORD_COLUMNS

    for schema, needed in ((math.RECORD_SCHEMA, RECORD_COLUMNS["math"]), (alfworld.RECORD_SCHEMA, RECORD_COLUMNS["alfworld"])):
        assert {k: schema[k] for k in needed} == needed


# ---------------------------------------------------------------- ALFWorld game files at evaluation


@pytest.mark.parametrize("content", ['{"pddl_domain": "(define (domain', "[1, 2]", '{"grammar": "x"}'])
def test_broken_alfworld_game_file_at_evaluation(tiny, tmp_path, content):
    games = tmp_path / "games"
    game = games / "json_2.1.1" / "valid_seen" / "pick_and_place_simple-Mug-None-Desk-1" / "trial_1" / "game.tw-pddl"
    game.parent.mkdir(parents=True)
    game.write_text(content)
    rows = [dict(r, game=str(game.parent.relative_to(games)), subject="pick_and_place_simple", split="valid_seen")
            for r in rows_of(tiny["convert"] / "test.jsonl")[:1]]
    conv = write_rows(tmp_path / "test.jsonl", rows)
    r, out = evaluate(tiny, tmp_path, conv, "--benchmark", "alfworld", "--games", games, "--max-steps", 1,
                      variant="no_comm")
    clean_error(r, out, str(game))


def test_alfworld_conversation_without_its_game_field(tiny, tmp_path):
    rows = [dict(r, subject="pick_and_place_simple", split="valid_seen") for r in rows_of(tiny["convert"] / "test.jsonl")]
    conv = write_rows(tmp_path / "test.jsonl", rows)
    r, out = evaluate(tiny, tmp_path, conv, "--benchmark", "alfworld", "--games", tmp_path, variant="no_comm")
    clean_error(r, out, "test.jsonl", "row 1", 'field "game": missing')
