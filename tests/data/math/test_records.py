"""MATH records: hendrycks-style rows and local copies normalise to our record; errors name the field."""

import json

import polars as pl
import pytest

from interlat.data.math.records import load_local, normalise
from interlat.errors import InterlatError

HENDRYCKS = {"problem": "What is $1+1$?", "solution": "It is $\\boxed{2}$.", "type": "Prealgebra", "level": "Level 2"}


def test_hendrycks_row_normalises_with_a_content_derived_task_id():
    a = normalise(dict(HENDRYCKS), "test", "row 0")
    b = normalise(dict(HENDRYCKS), "test", "row 1")
    assert a["subject"] == "Prealgebra" and a["level"] == 2 and a["split"] == "test"
    assert a["task_id"] == b["task_id"] and a["task_id"]
    c = normalise({**HENDRYCKS, "problem": "What is $2+2$?"}, "test", "row 2")
    assert c["task_id"] != a["task_id"]


@pytest.mark.parametrize(("change", "field"), [
    ({"solution": "2"}, "solution"), ({"type": "Astrology"}, "subject"), ({"problem": ""}, "problem"),
    ({"level": 9}, "level"),
])
def test_bad_rows_name_their_field(change, field):
    with pytest.raises(InterlatError, match=f'row 3: field "{field}"'):
        normalise({**HENDRYCKS, **change}, "train", "row 3")


def test_local_jsonl_and_parquet_copies_read_the_same(tmp_path):
    rows = [HENDRYCKS, {**HENDRYCKS, "problem": "What is $3+3$?", "solution": "$\\boxed{6}$"}]
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "p").mkdir()
    pl.DataFrame(rows).write_parquet(tmp_path / "p" / "train.parquet")
    a, b = load_local(tmp_path / "j"), load_local(tmp_path / "p")
    assert a == b and [r["split"] for r in a] == ["train", "train"]


def test_local_json_that_does_not_parse_names_the_line(tmp_path):
    (tmp_path / "test.jsonl").write_text(json.dumps(HENDRYCKS) + "\n{oops\n")
    with pytest.raises(InterlatError, match="test.jsonl: line 2: not valid JSON"):
        load_local(tmp_path / "test.jsonl")
