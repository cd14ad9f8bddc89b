"""Local benchmark data sources (`interlat data --source PATH`) and benchmark folders read by later
stages: a bad file is one line naming the file (its own 1-based row, the field), exit 2, nothing written.
"""

import json
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlat.cli import main
from tests.helpers import assert_clean_error as clean_error
from tests.helpers import nothing_written, run_cli

ROW = {"problem": "What is $1+1$?", "solution": "It is $\\boxed{2}$.", "type": "Algebra", "level": "Level 2"}


def rows(n: int, **change) -> list[dict]:
    return [{**ROW, "problem": f"What is ${i}+1$?", **change} for i in range(n)]


def jsonl(records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


#: folder contents (file name -> bytes) and what the one error line must name
BAD_SOURCES = {
    "split_not_train_or_test": ({"a_train.jsonl": jsonl(rows(3)), "b_test.jsonl": jsonl(rows(1) + rows(1, split="valid"))},
                                ["b_test.jsonl: row 2", 'field "split"', "'valid'"]),
    "no_data_file": ({"README.txt": b"hello"}, ["no .jsonl, .json or .parquet file"]),
    "empty_folder": ({}, ["no .jsonl, .json or .parquet file"]),
    "not_utf8": ({"test.jsonl": jsonl(rows(1)) + b'{"problem": "\xff\xfe"}\n'}, ["test.jsonl: line 2", "not valid UTF-8"]),
    "lone_surrogate": ({"test.jsonl": jsonl(rows(1)) + b'{"problem": "x\\ud800"}\n'},
                       ["test.jsonl: row 2", 'field "problem"', "surrogate"]),
    "json_list_of_numbers": ({"a.jsonl": jsonl(rows(2)), "nums.json": b"[1, 2, 3]"}, ["nums.json: row 1", "int", "object"]),
    "json_scalar": ({"one.json": b"42"}, ["one.json", "int"]),
    "wrong_type_level": ({"test.jsonl": jsonl(rows(2) + rows(1, level=[2]))}, ["test.jsonl: row 3", 'field "level"', "list"]),
    "wrong_type_problem": ({"test.jsonl": jsonl(rows(1, problem=7))}, ["test.jsonl: row 1", 'field "problem"', "int"]),
    "wrong_type_task_id": ({"test.jsonl": jsonl(rows(1, task_id=3))}, ["test.jsonl: row 1", 'field "task_id"']),
    "own_row_in_second_file": ({"a.jsonl": jsonl(rows(5)), "b.jsonl": jsonl(rows(1) + rows(1, solution="2"))},
                               ["b.jsonl: row 2", 'field "solution"']),
    "damaged_parquet": ({"train.parquet": b"PAR1 this is not parquet PAR1"}, ["train.parquet", "not a readable Parquet"]),
}


@pytest.mark.parametrize("case", sorted(BAD_SOURCES))
def test_bad_local_source(tmp_path, case):
    files, needles = BAD_SOURCES[case]
    src = tmp_path / "src"
    src.mkdir()
    for name, data in files.items():
        (src / name).write_bytes(data)
    out = tmp_path / "out"
    clean_error(run_cli("data", "--source", src, "--out", out, expect=2), *needles)
    assert nothing_written(out)


def test_bom_is_accepted(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.jsonl").write_bytes(b"\xef\xbb\xbf" + jsonl(rows(2)))
    (src / "test.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(rows(1)).encode())
    r = run_cli("data", "--source", src, "--out", tmp_path / "out")
    assert "3 records" in r.output
    assert len((tmp_path / "out" / "train.jsonl").read_text().splitlines()) == 2


#: a benchmark folder's train.jsonl, as later stages read it (here `interlat tokenizer`)
BAD_FOLDERS = {
    "not_utf8": (b'{"task_id": "a", "subject": "Algebra"}\n\xff\n', ["train.jsonl: row 2", "not valid UTF-8"]),
    "lone_surrogate": (b'{"task_id": "a", "subject": "Alg\\udc00"}\n', ["train.jsonl: row 1", 'field "subject"', "surrogate"]),
    "row_not_an_object": (b'{"task_id": "a", "subject": "Algebra"}\n[1]\n', ["train.jsonl: row 2", "list"]),
    "task_id_not_a_string": (b'{"task_id": 1, "subject": "Algebra"}\n', ["train.jsonl: row 1", 'field "task_id"']),
}


@pytest.mark.parametrize("case", sorted(BAD_FOLDERS))
def test_bad_benchmark_folder(tiny, tmp_path, case):
    data, needles = BAD_FOLDERS[case]
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "train.jsonl").write_bytes(data)
    (folder / "test.jsonl").write_bytes((tiny["data"] / "test.jsonl").read_bytes())
    out = tmp_path / "tok"
    clean_error(run_cli("tokenizer", "--data", folder, "--out", out, expect=2), *needles)
    assert nothing_written(out)


def test_benchmark_folder_with_a_bom_is_accepted(tiny, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("train.jsonl", "test.jsonl"):
        (folder / name).write_bytes(b"\xef\xbb\xbf" + (tiny["data"] / name).read_bytes())
    run_cli("tokenizer", "--data", folder, "--out", tmp_path / "tok")
    assert (tmp_path / "tok" / "tokenizer_config.json").is_file()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.sampled_from([*ROW, "split", "subject", "task_id", "plan", "x"]), kids, max_size=4),
    max_leaves=8,
)
records = st.fixed_dictionaries({}, optional={k: st.one_of(st.just(v), json_values) for k, v in
                                              {**ROW, "split": "train", "task_id": "t1", "plan": "p"}.items()})


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(["train.jsonl", "test.json", "x.jsonl"]),
       content=st.one_of(st.binary(max_size=64), json_values.map(lambda v: json.dumps(v).encode()),
                         st.lists(records, max_size=3).map(lambda rs: json.dumps(rs).encode()),
                         st.lists(records, max_size=3).map(jsonl)))
def test_fuzz_local_data_file(name, content):
    """Random bytes or JSON as a local data file: valid records, or one InterlatError naming the file."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        (src / name).write_bytes(content)
        out = Path(tmp) / "out"
        r = CliRunner().invoke(main, ["data", "--source", str(src), "--out", str(out)])
        assert r.exit_code in (0, 2), (r.output, r.exception)
        if r.exit_code == 2:
            clean_error(r, name)
            assert nothing_written(out)
        else:
            assert (out / "train.jsonl").is_file() and (out / "test.jsonl").is_file()
