"""Tests for interlat.shards: the Parquet shard store of latent messages (docs/method.md section 1)."""

import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlat.errors import InterlatError
from interlat.shards import (
    INDEX_COLUMNS,
    MANIFEST,
    SCHEMA,
    SCHEMA_VERSION,
    Message,
    load_messages,
    load_messages_of,
    part_name,
    read_index,
    read_manifest,
    read_messages,
    verify_part,
    write_manifest,
    write_part,
)

D = 8


def make(i: int, n: int = 3, d: int = D, subject: str = "algebra", H=None) -> Message:
    g = torch.Generator().manual_seed(i)
    return Message(
        task_id=f"math-{subject}-{i:04d}",
        benchmark="math",
        split="test",
        subject=subject,
        level=1 + i % 5,
        task=f"Problem {i}: what is {i} + 1?",
        plan=f"Add one to {i}. ünïcödé ∑",
        prompt_token_ids=list(range(i, i + 4)),
        plan_token_ids=[7] * n,
        H=torch.randn(n, d, generator=g) * 3 if H is None else H,
        sender_id="qwen2.5-0.5b",
    )


def write_subject(folder: Path, messages, dtype="bfloat16", parts=1) -> dict:
    """Write `messages` as `parts` parts of rank 0 plus a manifest; return the manifest."""
    chunks = np.array_split(np.arange(len(messages)), parts)
    shas = {}
    for index, rows in enumerate(chunks):
        name = part_name(0, index)
        shas[name] = write_part(folder / name, [messages[r] for r in rows], dtype=dtype)
    return write_manifest(
        folder,
        sender_path="resources/models/qwen",
        sender_id="qwen2.5-0.5b",
        dtype=dtype,
        hidden_size=messages[0].H.shape[1],
        parts=shas,
        counts={"tasks": len(messages), "failed": 0},
    )


def raw_row(**overrides) -> dict:
    """One hand-made row of the schema (bf16 [2, 4] of ones), with fields overridden."""
    row = {
        "task_id": "t0",
        "benchmark": "math",
        "split": "test",
        "subject": "algebra",
        "level": 1,
        "task": "task",
        "plan": "plan",
        "prompt_token_ids": [1, 2],
        "plan_token_ids": [3, 4],
        "n_tokens": 2,
        "hidden_size": 4,
        "dtype": "bfloat16",
        "hidden_state": torch.ones(2, 4, dtype=torch.bfloat16).view(torch.int16).numpy().tobytes(),
        "sender_id": "s",
    }
    row.update(overrides)
    return row


def write_raw(path: Path, rows: list[dict], schema: pa.Schema = SCHEMA) -> Path:
    """Write rows with plain pyarrow, bypassing write_part's checks."""
    cols = {f.name: pa.array([r[f.name] for r in rows], f.type) for f in schema}
    pq.write_table(pa.Table.from_pydict(cols, schema=schema), path)
    return path


def one_line_error(excinfo, *needles) -> str:
    message = excinfo.value.format_message()
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


# ---------------------------------------------------------------- round trips and layout


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
def test_round_trip_preserves_values_dtype_and_fields(tmp_path, dtype):
    messages = [make(i, n=1 + i) for i in range(5)]
    path = tmp_path / part_name(0, 0)
    write_part(path, messages, dtype=dtype)
    back = list(read_messages(path))
    assert [m.task_id for m in back] == [m.task_id for m in messages]
    for m, b in zip(messages, back, strict=True):
        assert b.H.dtype == getattr(torch, dtype)
        assert torch.equal(b.H, m.H.to(getattr(torch, dtype)))
        assert (b.n_tokens, b.hidden_size) == tuple(m.H.shape)
        for field in ("benchmark", "split", "subject", "level", "task", "plan", "sender_id"):
            assert getattr(b, field) == getattr(m, field)
        assert b.prompt_token_ids == m.prompt_token_ids
        assert b.plan_token_ids == m.plan_token_ids


def test_stored_bytes_are_little_endian_row_major(tmp_path):
    H = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    path = tmp_path / "p.parquet"
    write_part(path, [make(0, n=2, d=3, H=H)], dtype="float32")
    blob = pq.read_table(path, columns=["hidden_state"]).column(0)[0].as_py()
    assert np.frombuffer(blob, "<f4").tolist() == [0, 1, 2, 3, 4, 5]


def test_read_part_subject_folder_and_run_folder(tmp_path):
    run = tmp_path / "results" / "default" / "latents" / "math" / "qwen2.5-0.5b"
    algebra = [make(i, subject="algebra") for i in range(7)]
    geometry = [make(i, subject="geometry") for i in range(4)]
    write_subject(run / "algebra", algebra, parts=3)
    write_subject(run / "geometry", geometry, parts=2)
    ids = [m.task_id for m in algebra + geometry]
    assert [m.task_id for m in read_messages(tmp_path / "results")] == ids
    assert [m.task_id for m in read_messages(run)] == ids
    assert [m.task_id for m in read_messages(run / "geometry")] == ids[7:]
    assert [m.task_id for m in read_messages(run / "algebra" / part_name(0, 2))] == ids[5:7]
    assert set(load_messages(run)) == set(ids)


def test_manifest_lists_parts_with_sha_rows_and_version(tmp_path):
    manifest = write_subject(tmp_path, [make(i) for i in range(5)], parts=2)
    assert manifest == read_manifest(tmp_path)
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["n_messages"] == 5
    assert [p["rows"] for p in manifest["parts"]] == [3, 2]
    for entry in manifest["parts"]:
        verify_part(tmp_path / entry["name"], entry["sha256"])
    assert pq.read_schema(tmp_path / part_name(0, 0)).metadata[b"interlat.schema_version"] == b"1"


def test_read_index_reads_everything_but_hidden_state(tmp_path):
    write_subject(tmp_path, [make(i, n=2 + i) for i in range(3)])
    index = read_index(tmp_path)
    assert isinstance(index, pl.DataFrame)
    assert index.columns == INDEX_COLUMNS + ["part"]
    assert index["n_tokens"].to_list() == [2, 3, 4]
    assert index["plan_token_ids"].to_list()[0] == [7, 7]


def test_empty_subject_folder_reads_as_empty(tmp_path):
    write_manifest(tmp_path, sender_path="m", sender_id="m", dtype="bfloat16", hidden_size=D,
                   parts={}, counts={"messages": 0})  # fmt: skip
    assert list(read_messages(tmp_path)) == []
    assert read_index(tmp_path).columns == INDEX_COLUMNS + ["part"]


def test_verified_reader_can_stop_early(tmp_path):
    write_subject(tmp_path, [make(i) for i in range(6)], parts=3)
    reader = read_messages(tmp_path)
    assert next(reader).task_id == "math-algebra-0000"
    reader.close()


def test_readers_skip_temporary_files_of_a_killed_writer(tmp_path):
    write_part(tmp_path / part_name(1, 0), [make(0), make(1)])
    (tmp_path / f".{part_name(1, 1)}.abc.tmp").write_bytes(b"half a parquet file")
    (tmp_path / f".{part_name(1, 2)}").write_bytes(b"half a parquet file")
    assert [m.task_id for m in read_messages(tmp_path)] == ["math-algebra-0000", "math-algebra-0001"]
    assert read_index(tmp_path)["task_id"].to_list() == ["math-algebra-0000", "math-algebra-0001"]


def test_part_name():
    assert part_name(3, 12) == "part-r03-00012.parquet"


def test_tensors_are_writable_views_without_warnings(tmp_path):
    write_part(tmp_path / "p.parquet", [make(0), make(1)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first, second = read_messages(tmp_path / "p.parquet")
    before = second.H.clone()
    first.H.add_(1)
    assert torch.equal(second.H, before)


# ---------------------------------------------------------------- refused at write


def test_write_rejects_nan_and_overflow(tmp_path):
    H = torch.zeros(3, D)
    H[1, 2] = float("nan")
    with pytest.raises(InterlatError) as e:
        write_part(tmp_path / "p.parquet", [make(0), make(1, H=H)])
    one_line_error(e, "p.parquet", "row 1", "math-algebra-0001", "hidden_state", "non-finite")
    big = torch.full((3, D), 1e6)  # finite in float32, inf in float16
    with pytest.raises(InterlatError, match="non-finite"):
        write_part(tmp_path / "p.parquet", [make(0, H=big)], dtype="float16")
    assert not list(tmp_path.iterdir())


def test_write_rejects_inconsistent_messages(tmp_path):
    path = tmp_path / "p.parquet"
    with pytest.raises(InterlatError, match='row 1: field "hidden_size"'):
        write_part(path, [make(0), make(1, d=D + 1)])
    with pytest.raises(InterlatError, match='row 0: field "n_tokens"'):
        write_part(path, [make(0, H=torch.zeros(4, D))])
    with pytest.raises(InterlatError, match='row 1: field "task_id"'):
        write_part(path, [make(0), make(0)])
    with pytest.raises(InterlatError, match="dtype"):
        write_part(path, [make(0)], dtype="float64")


# ---------------------------------------------------------------- refused at read


def test_schema_version_mismatch(tmp_path):
    schema = SCHEMA.with_metadata({b"interlat.schema_version": b"2"})
    path = write_raw(tmp_path / "p.parquet", [raw_row()], schema)
    with pytest.raises(InterlatError) as e:
        list(read_messages(path))
    one_line_error(e, str(path), "schema version 2, expected 1")


def test_missing_and_mistyped_columns_are_named(tmp_path):
    schema = SCHEMA.remove(SCHEMA.get_field_index("sender_id"))
    path = write_raw(tmp_path / "a.parquet", [raw_row()], schema)
    with pytest.raises(InterlatError) as e:
        list(read_messages(path))
    one_line_error(e, str(path), 'missing column "sender_id"')
    i = SCHEMA.get_field_index("level")
    schema = SCHEMA.set(i, pa.field("level", pa.string()))
    path = write_raw(tmp_path / "b.parquet", [raw_row(level="5")], schema)
    with pytest.raises(InterlatError) as e:
        read_index(path)
    one_line_error(e, str(path), 'field "level": type string, expected int32')


def test_wrong_buffer_length_names_file_row_and_field(tmp_path):
    one = {"n_tokens": 1, "plan_token_ids": [5], "hidden_size": 4096}
    rows = [
        raw_row(**one, hidden_state=np.ones(4096, "<u2").tobytes()),
        raw_row(**one, task_id="t1", hidden_state=np.ones(4095, "<u2").tobytes()),
    ]
    path = write_raw(tmp_path / "p.parquet", rows)
    with pytest.raises(InterlatError) as e:
        list(read_messages(path, verify=False))
    one_line_error(e, f"{path}: row 1:", "row 1", 'field "hidden_state": 4095 values')
    assert "expected n_tokens*hidden_size = 4096" in str(e.value)


def test_nan_rejected_at_read(tmp_path):
    H = torch.ones(2, 4, dtype=torch.bfloat16)
    H[1, 3] = float("inf")
    bad = raw_row(task_id="bad-one", hidden_state=H.view(torch.int16).numpy().tobytes())
    path = write_raw(tmp_path / "p.parquet", [raw_row(), bad])
    with pytest.raises(InterlatError) as e:
        list(read_messages(path))
    one_line_error(e, str(path), "row 1", "bad-one", "non-finite")


def test_truncated_part_is_named(tmp_path):
    write_subject(tmp_path, [make(i) for i in range(4)])
    part = tmp_path / part_name(0, 0)
    part.write_bytes(part.read_bytes()[:-100])
    with pytest.raises(InterlatError) as e:
        list(read_messages(tmp_path))
    one_line_error(e, str(part), "truncated")
    (tmp_path / MANIFEST).unlink()  # without a manifest Parquet itself notices
    with pytest.raises(InterlatError) as e:
        list(read_messages(tmp_path))
    one_line_error(e, str(part), "not a readable Parquet file")


def flip_in_hidden_state(part: Path) -> None:
    """Flip one bit inside the first message's stored hidden state."""
    data = bytearray(part.read_bytes())
    first = pq.read_table(part, columns=["hidden_state"]).column(0)[0].as_py()
    at = data.find(first[:64]) + 32
    data[at] ^= 0x04
    part.write_bytes(bytes(data))


def test_bit_flip_is_caught_by_manifest_sha256(tmp_path):
    write_subject(tmp_path, [make(i) for i in range(4)])
    part = tmp_path / part_name(0, 0)
    flip_in_hidden_state(part)
    with pytest.raises(InterlatError) as e:
        list(read_messages(tmp_path))
    one_line_error(e, str(part), "sha256", "corrupted")
    assert len(list(read_messages(tmp_path, verify=False))) == 4  # the opt-out is honoured


def test_bit_flip_without_manifest_is_caught_by_page_checksum(tmp_path):
    part = tmp_path / "p.parquet"
    write_part(part, [make(i) for i in range(4)])
    flip_in_hidden_state(part)
    with pytest.raises(InterlatError) as e:
        list(read_messages(part))
    one_line_error(e, str(part), "unreadable")


def test_manifest_problems(tmp_path):
    write_subject(tmp_path, [make(0)])
    write_part(tmp_path / part_name(9, 0), [make(1)])
    with pytest.raises(InterlatError, match="not listed in"):
        list(read_messages(tmp_path))
    (tmp_path / MANIFEST).write_text(json.dumps({"schema_version": 0}))
    with pytest.raises(InterlatError, match='field "schema_version": 0, expected 1'):
        list(read_messages(tmp_path))


def test_duplicate_task_ids_name_both_files(tmp_path):
    write_part(tmp_path / "a" / "p.parquet", [make(0), make(1)])
    write_part(tmp_path / "b" / "p.parquet", [make(1)])
    with pytest.raises(InterlatError) as e:
        load_messages(tmp_path)
    one_line_error(e, "math-algebra-0001", str(tmp_path / "a" / "p.parquet"), "b/p.parquet")


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(InterlatError, match="no such file"):
        list(read_messages(tmp_path / "nope"))
    with pytest.raises(InterlatError, match="no shard parts"):
        list(read_messages(tmp_path))


# ---------------------------------------------------------------- fuzzing


def read_cleanly(path) -> None:
    """Reading may succeed or raise InterlatError; anything else fails the test."""
    try:
        for m in read_messages(path):
            assert m.H.shape == (len(m.plan_token_ids), m.H.shape[1])
            assert torch.isfinite(m.H.float()).all()
        read_index(path)
    except InterlatError as e:
        assert "\n" not in e.format_message()


# INTERLAT_FUZZ_EXAMPLES=3000 for a longer hunt (a few minutes)
FUZZ = settings(
    max_examples=int(os.environ.get("INTERLAT_FUZZ_EXAMPLES", 60)),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@FUZZ
@given(st.binary(max_size=2048), st.booleans())
def test_fuzz_random_bytes_as_parquet(blob, magic):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.parquet"
        path.write_bytes(b"PAR1" + blob + b"PAR1" if magic else blob)
        read_cleanly(path)


@pytest.fixture(scope="module")
def valid_part_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("valid") / "p.parquet"
    write_part(path, [make(i, n=2, d=4) for i in range(3)])
    return path.read_bytes()


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=4))
def test_fuzz_mutated_valid_part(valid_part_bytes, flips):
    data = bytearray(valid_part_bytes)
    for at, mask in flips:
        data[at % len(data)] ^= mask
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.parquet"
        path.write_bytes(bytes(data))
        read_cleanly(path)


int32 = st.integers(-(2**31), 2**31 - 1)
small = st.one_of(st.integers(-2, 6), int32)
weird = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
row_strategy = st.fixed_dictionaries(
    {
        "task_id": weird,
        "level": int32,
        "prompt_token_ids": st.lists(int32, max_size=4),
        "plan_token_ids": st.lists(int32, max_size=4),
        "n_tokens": small,
        "hidden_size": small,
        "dtype": st.one_of(st.sampled_from(["bfloat16", "float16", "float32", "float64"]), weird),
        "hidden_state": st.binary(max_size=64),
        "plan": weird,
    }
)


@FUZZ
@given(st.lists(row_strategy, min_size=1, max_size=4), st.booleans())
def test_fuzz_well_typed_records(rows, consistent):
    if consistent:  # make most rows plausible so the deeper checks get exercised too
        for r in rows:
            n, d = max(1, r["n_tokens"] % 4), max(1, r["hidden_size"] % 4)
            r.update(n_tokens=n, hidden_size=d, dtype="float16", plan_token_ids=[0] * n)
            r["hidden_state"] = (r["hidden_state"] * (2 * n * d))[: 2 * n * d].ljust(
                2 * n * d, b"\0"
            )
    with tempfile.TemporaryDirectory() as tmp:
        path = write_raw(Path(tmp) / "p.parquet", [raw_row(**r) for r in rows])
        read_cleanly(path)


# ---------------------------------------------------------------- the P1 benchmark


def test_bench_shards_command_writes_a_table(tmp_path):
    from click.testing import CliRunner

    from interlat.bench.cli import bench

    help_text = CliRunner().invoke(bench, ["shards", "--help"]).output
    assert "--n-messages" in help_text and "default: 10000" in help_text
    out = tmp_path / "p1.md"
    args = ["shards", "--n-messages", "12", "--n-tokens", "3", "--hidden-size", "8"]
    args += [
        "--naive-messages",
        "4",
        "--repeats",
        "1",
        "--work-dir",
        str(tmp_path),
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(bench, args)
    assert result.exit_code == 0, result.output
    table = out.read_text()
    assert table.count("\n| (") == 5 and "4 (scaled to 12)" in table
    assert [p.name for p in tmp_path.iterdir()] == ["p1.md"]  # benchmark files removed


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=False), weird),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(weird, inner, max_size=3)),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def valid_folder(tmp_path_factory) -> Path:
    """A shard folder with one part and its manifest, as collection writes it."""
    folder = tmp_path_factory.mktemp("manifest")
    sha = write_part(folder / "part-0.parquet", [make(i, n=2, d=4) for i in range(3)])
    write_manifest(folder, sender_path="s", sender_id="s", dtype="bfloat16", hidden_size=4,
                   parts={"part-0.parquet": sha}, counts={"tasks": 3, "messages": 3})
    return folder


@FUZZ
@given(st.sampled_from(["schema_version", "sender_id", "dtype", "hidden_size", "n_messages", "parts", "extra"]),
       json_values, st.booleans())
def test_fuzz_mutated_manifest(valid_folder, key, value, into_parts):
    """A manifest with any key set to any JSON value: the folder reads cleanly or fails in one line."""
    manifest = json.loads((valid_folder / "manifest.json").read_text())
    if into_parts:
        manifest["parts"][0][key] = value
    else:
        manifest[key] = value
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "f"
        folder.mkdir()
        (folder / "part-0.parquet").write_bytes((valid_folder / "part-0.parquet").read_bytes())
        (folder / "manifest.json").write_text(json.dumps(manifest))
        try:
            messages = load_messages_of([folder])
            assert len(messages) == 3
        except InterlatError as e:
            assert "\n" not in e.format_message()
