"""Problems only the compression student trains on (`data.math.n_compress`, split `compress`).

They must leave everything the sender and receivers see unchanged: the same train and test
problems, and (tests/test_collect.py) the same collected messages for those.
"""

import json

import pytest

from interlat.collect import make_batches
from interlat.data.math import generated
from interlat.errors import InterlatError
from tests.helpers import assert_clean_error, nothing_written, run_cli


def by_split(records, split):
    return [r for r in records if r["split"] == split]


def test_student_only_problems_leave_train_and_test_unchanged_and_share_nothing_with_them():
    plain = generated.generate(seed=3, n_train=30, n_test=6)
    more = generated.generate(seed=3, n_train=30, n_test=6, n_compress=25)
    assert [r for r in more if r["split"] != "compress"] == plain
    extra = by_split(more, "compress")
    assert len(extra) == 25 * len(generated.SUBJECTS)
    assert {r["subject"] for r in extra} == set(generated.SUBJECTS)
    assert not {r["problem"] for r in extra} & {r["problem"] for r in plain}
    assert len({r["task_id"] for r in more}) == len(more)
    assert generated.generate(seed=3, n_train=30, n_test=6, n_compress=25) == more  # seeded
    assert by_split(generated.generate(seed=4, n_train=30, n_test=6, n_compress=25), "compress") != extra


def test_asking_for_more_problems_than_exist_names_n_compress():
    with pytest.raises(InterlatError, match='field "n_compress": Prealgebra'):
        generated.generate(seed=0, n_train=400, n_test=60, n_compress=1000)


def test_data_writes_compress_jsonl_only_when_asked(tmp_path):
    common = ["data", "--source", "generated", "--n-train", "6", "--n-test", "2", "--seed", "0"]
    run_cli(*common, "--out", tmp_path / "plain")
    run_cli(*common, "--n-compress", "3", "--out", tmp_path / "more")
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == ["test.jsonl", "train.jsonl"]
    for name in ("train.jsonl", "test.jsonl"):
        assert (tmp_path / "plain" / name).read_bytes() == (tmp_path / "more" / name).read_bytes()
    rows = [json.loads(line) for line in (tmp_path / "more" / "compress.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and {r["split"] for r in rows} == {"compress"}


def test_n_compress_on_data_that_is_not_generated_is_a_one_line_error(tmp_path):
    source = tmp_path / "mine.jsonl"
    source.write_text(json.dumps({"problem": "1+1?", "solution": "\\boxed{2}", "type": "Algebra", "level": "Level 1"}) + "\n")
    out = tmp_path / "out"
    result = run_cli("data", "--source", source, "--n-compress", "2", "--out", out, expect=2)
    assert_clean_error(result, 'field "n_compress"')
    assert nothing_written(out)


def test_student_only_tasks_are_batched_after_all_others():
    records = generated.generate(seed=0, n_train=9, n_test=3, n_compress=5, subjects=("Algebra",))
    others = [r for r in records if r["split"] != "compress"]
    batches = make_batches(records, 4)
    assert batches[: len(make_batches(others, 4))] == make_batches(others, 4)
    assert [r["split"] for b in batches[len(make_batches(others, 4)) :] for r in b] == ["compress"] * 5
