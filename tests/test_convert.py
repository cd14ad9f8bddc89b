"""Fuzzing conversion (hypothesis): random-but-well-typed frames into the join, random records and
random bytes into `interlat convert`. Every outcome is a clean result or a clean one-line error."""

import json
import os
import tempfile
from pathlib import Path

import polars as pl
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlat.cli import main
from interlat.convert import convert
from interlat.errors import InterlatError
from interlat.jsonl import read_jsonl
from interlat.text.prompts import MARKER

# INTERLAT_FUZZ_EXAMPLES=3000 for a longer hunt
FUZZ = settings(
    max_examples=int(os.environ.get("INTERLAT_FUZZ_EXAMPLES", 60)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
ids = st.sampled_from(["t0", "t1", "t2", "t3", "t4"])  # few ids: duplicates and misses are common
text = st.text(max_size=12)
index_row = st.fixed_dictionaries({
    "task_id": ids, "plan": st.one_of(text, st.sampled_from(["", "  "])), "split": st.sampled_from(["train", "test"]),
    "n_tokens": st.integers(-1, 4), "hidden_size": st.sampled_from([8, 16]),
})
truth_row = st.fixed_dictionaries({
    "task_id": ids, "problem": text, "subject": text, "level": st.integers(0, 5), "solution": text,
})


def frame(rows, schema):
    return pl.DataFrame(rows, schema=schema)


INDEX = {"task_id": pl.String, "plan": pl.String, "split": pl.String, "n_tokens": pl.Int64, "hidden_size": pl.Int64}
TRUTH = {"task_id": pl.String, "problem": pl.String, "subject": pl.String, "level": pl.Int64, "solution": pl.String}


@FUZZ
@given(st.lists(index_row, max_size=6), st.lists(truth_row, max_size=6), st.booleans())
def test_the_join_gives_good_rows_or_names_a_reject(index_rows, truth_rows, strict):
    index, truth = frame(index_rows, INDEX), frame(truth_rows, TRUTH)
    try:
        rows, rejects = convert(index, truth, hidden_size=8, strict=strict, where="fuzz")
    except InterlatError as e:
        assert strict and "\n" not in e.format_message() and "task_id t" in e.format_message()
        return
    bad = set(rejects["task_id"])
    got = [r["id"] for r in rows]
    assert len(got) == len(set(got)) and not bad & set(got)
    assert not (strict and bad)
    # every id is accounted for: a conversation or a reject, never silently dropped
    assert set(index["task_id"]) | set(truth["task_id"]) == set(got) | bad
    for r in rows:
        first = r["conversations"][0]
        assert first["from"] == "human" and first["value"].endswith(MARKER) and r["plan"].strip()


def run_convert(tiny, data: Path, out: Path):
    args = ["convert", "--latents", str(tiny["latents"]), "--data", str(data), "--no-strict", "--out", str(out)]
    return CliRunner().invoke(main, args, catch_exceptions=True)


def assert_clean(result, out: Path):
    if result.exit_code == 0:
        assert (out / "train.jsonl").is_file() and (out / "rejects.csv").is_file()
        return
    assert result.exit_code == 2, (result.output, result.exception)
    message = result.output.strip()
    assert message.startswith("Error: ") and "\n" not in message, message
    assert not out.exists(), "a half-written output"


json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)


@FUZZ
@given(st.data())
def test_random_records_in_the_ground_truth(tiny, data):
    valid = read_jsonl(tiny["data"] / "train.jsonl")[:4]
    records = []
    for rec in valid:  # each record kept, broken in one field, or replaced by any JSON value
        how = data.draw(st.sampled_from(["keep", "drop", "retype", "replace"]))
        rec = dict(rec)
        key = data.draw(st.sampled_from(sorted(rec)))
        if how == "drop":
            del rec[key]
        elif how == "retype":
            rec[key] = data.draw(json_value)
        elif how == "replace":
            rec = data.draw(json_value)
        records.append(rec)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "data"
        d.mkdir()
        (d / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        (d / "test.jsonl").write_bytes((tiny["data"] / "test.jsonl").read_bytes())
        assert_clean(run_convert(tiny, d, Path(tmp) / "out"), Path(tmp) / "out")


@FUZZ
@given(st.binary(max_size=512), st.booleans())
def test_random_bytes_as_ground_truth(tiny, blob, after_a_good_line):
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "data"
        d.mkdir()
        good = (tiny["data"] / "train.jsonl").read_bytes().splitlines(keepends=True)[0] if after_a_good_line else b""
        (d / "train.jsonl").write_bytes(good + blob)
        (d / "test.jsonl").write_bytes(b"")
        assert_clean(run_convert(tiny, d, Path(tmp) / "out"), Path(tmp) / "out")
