"""Bad inputs: each gives one line naming the file/row/field, exit code 2, and writes nothing.

Every case runs the real `interlat` command on a broken copy of the tiny world's files.
(Config-schema violations are in tests/test_config.py; shard-reader internals in
tests/shards/test_shards.py; ALFWorld game folders in tests/data/alfworld/test_alfworld.py.)
"""

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from interlat import shards
from interlat.errors import InterlatError
from tests.helpers import assert_clean_error, nothing_written, run_cli


def copy_latents(tiny, tmp_path) -> Path:
    dst = tmp_path / "latents"
    shutil.copytree(tiny["latents"], dst)
    return dst


def convert(tiny, latents, out, strict=True, data=None):
    return run_cli("convert", "--latents", latents, "--data", data or tiny["data"],
                   "--strict" if strict else "--no-strict", "--out", out, expect=2)


def first_part(folder: Path) -> Path:
    return sorted(folder.glob("part-*.parquet"))[0]


def test_truncated_parquet_part(tiny, tmp_path):
    lat = copy_latents(tiny, tmp_path)
    p = first_part(lat)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    out = tmp_path / "out"
    r = run_cli("train", "--base", tiny["receiver"], "--conversations", tiny["convert"] / "train.jsonl",
                "--latents", lat, "--steps", 1, "--work-dir", tmp_path / "w", "--log-csv", tmp_path / "l.csv",
                "--out", out, expect=2)
    assert_clean_error(r, p.name)
    assert nothing_written(out)


def test_bit_flipped_parquet_part(tiny, tmp_path):
    lat = copy_latents(tiny, tmp_path)
    p = first_part(lat)
    data = bytearray(p.read_bytes())
    data[len(data) // 3] ^= 0x10
    p.write_bytes(bytes(data))
    out = tmp_path / "o.parquet"
    r = run_cli("evaluate", "--receiver", tiny["receiver_ckpt"], "--conversations", tiny["convert"] / "test.jsonl",
                "--latents", lat, "--variant", "interlat", "--work-dir", tmp_path / "w", "--out", out, expect=2)
    assert_clean_error(r, p.name)
    assert nothing_written(out)


def test_shard_with_another_schema_version(tiny, tmp_path):
    lat = copy_latents(tiny, tmp_path)
    p = first_part(lat)
    table = pq.read_table(p)
    meta = dict(table.schema.metadata or {})
    meta[shards.VERSION_KEY] = b"99"
    pq.write_table(table.replace_schema_metadata(meta), p)
    out = tmp_path / "out"
    r = convert(tiny, lat, out)
    assert_clean_error(r, p.name)
    assert nothing_written(out)


def test_message_with_nan(tiny, tmp_path):
    lat = tmp_path / "nan"
    lat.mkdir()
    msgs = list(shards.read_messages(tiny["latents"]))[:2]
    H = msgs[0].H.float().clone()
    H[0, 0] = float("nan")
    bad = shards.Message(**{**msgs[0].__dict__, "H": H})
    with pytest.raises(InterlatError, match="finite|NaN|nan"):
        shards.write_part(lat / shards.part_name(0, 0), [bad, msgs[1]], dtype="float32")
    assert not list(lat.iterdir())


def _with_index_change(tiny, tmp_path, change) -> Path:
    """A latents copy whose first part is rewritten with `change(table) -> table` (no manifest sha)."""
    lat = copy_latents(tiny, tmp_path)
    p = first_part(lat)
    table = change(pq.read_table(p))
    pq.write_table(table, p)
    man = json.loads((lat / "manifest.json").read_text())
    for part in man["parts"]:
        if part["name"] == p.name:
            part["sha256"] = shards.sha256_file(p)
            part["bytes"] = p.stat().st_size
    (lat / "manifest.json").write_text(json.dumps(man))
    return lat


def test_duplicate_task_ids(tiny, tmp_path):
    import pyarrow as pa

    def dup(t):
        ids = t.column("task_id").to_pylist()
        ids[1] = ids[0]
        return t.set_column(0, "task_id", pa.array(ids, pa.string()))

    lat = _with_index_change(tiny, tmp_path, dup)
    out = tmp_path / "out"
    r = convert(tiny, lat, out)
    assert_clean_error(r, "duplicate")
    assert nothing_written(out)


def test_task_id_in_latents_but_not_in_ground_truth(tiny, tmp_path):
    import pyarrow as pa

    def rename(t):
        ids = t.column("task_id").to_pylist()
        ids[0] = "ffffffffffffffff"
        return t.set_column(0, "task_id", pa.array(ids, pa.string()))

    lat = _with_index_change(tiny, tmp_path, rename)
    out = tmp_path / "out"
    r = convert(tiny, lat, out)
    assert_clean_error(r, "task_id", "ground truth")
    assert nothing_written(out)


def test_empty_plan(tiny, tmp_path):
    import pyarrow as pa

    def empty(t):
        plans = t.column("plan").to_pylist()
        plans[0] = "  "
        return t.set_column(t.schema.get_field_index("plan"), "plan", pa.array(plans, pa.string()))

    lat = _with_index_change(tiny, tmp_path, empty)
    out = tmp_path / "out"
    r = convert(tiny, lat, out)
    assert_clean_error(r, "empty plan")
    assert nothing_written(out)


def test_hidden_size_mismatch_without_projection(tiny, tmp_path):
    lat = tmp_path / "wide"
    lat.mkdir()
    msgs = [shards.Message(**{**m.__dict__, "H": m.H.float().repeat(1, 2)}) for m in shards.read_messages(tiny["latents"])]
    sha = shards.write_part(lat / shards.part_name(0, 0), msgs, dtype="float32")
    shards.write_manifest(lat, sender_path="x", sender_id="x", dtype="float32", hidden_size=64,
                          parts={shards.part_name(0, 0): sha}, counts={"messages": len(msgs)})
    out = tmp_path / "o.parquet"
    r = run_cli("evaluate", "--receiver", tiny["receiver_ckpt"], "--conversations", tiny["convert"] / "test.jsonl",
                "--latents", lat, "--variant", "interlat", "--work-dir", tmp_path / "w", "--out", out, expect=2)
    assert_clean_error(r, "hidden_size", "64", "32")
    assert nothing_written(out)


def test_prompt_without_the_marker(tiny, tmp_path):
    rows = [json.loads(x) for x in (tiny["convert"] / "train.jsonl").read_text().splitlines()]
    rows[1]["conversations"][0]["value"] = rows[1]["task"]
    conv = tmp_path / "train.jsonl"
    conv.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    r = run_cli("train", "--base", tiny["receiver"], "--conversations", conv, "--latents", tiny["latents"],
                "--steps", 1, "--work-dir", tmp_path / "w", "--log-csv", tmp_path / "l.csv", "--out", out, expect=2)
    assert_clean_error(r, "train.jsonl", "row 2", "conversations", "marker")
    assert nothing_written(out)


def test_conversations_that_are_not_json(tiny, tmp_path):
    conv = tmp_path / "train.jsonl"
    conv.write_text('{"id": "a"}\n{broken\n')
    out = tmp_path / "out"
    r = run_cli("train", "--base", tiny["receiver"], "--conversations", conv, "--mode", "none", "--steps", 1,
                "--work-dir", tmp_path / "w", "--log-csv", tmp_path / "l.csv", "--out", out, expect=2)
    assert_clean_error(r, "train.jsonl", "row 1")  # row 1 lacks fields before row 2 fails to parse
    assert nothing_written(out)


def test_tokenizer_without_a_chat_template(tiny, tmp_path):
    sender = tmp_path / "sender"
    shutil.copytree(tiny["sender"], sender)
    (sender / "chat_template.jinja").unlink(missing_ok=True)
    cfg = json.loads((sender / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (sender / "tokenizer_config.json").write_text(json.dumps(cfg))
    out = tmp_path / "out"
    r = run_cli("collect", "--sender", sender, "--data", tiny["data"], "--subject", "algebra",
                "--work-dir", tmp_path / "w", "--out", out, expect=2)
    assert_clean_error(r, "chat_template")
    assert nothing_written(out)


def test_collect_subject_without_tasks(tiny, tmp_path):
    out = tmp_path / "out"
    r = run_cli("collect", "--sender", tiny["sender"], "--data", tiny["data"], "--subject", "geometry",
                "--work-dir", tmp_path / "w", "--out", out, expect=2)
    assert_clean_error(r, "subject", "geometry")
    assert nothing_written(out)


def test_missing_local_benchmark_path(tmp_path):
    out = tmp_path / "out"
    r = run_cli("data", "--source", tmp_path / "nope", "--out", out, expect=2)
    assert_clean_error(r, "nope")
    assert nothing_written(out)


def test_unknown_generated_subject(tmp_path):
    out = tmp_path / "out"
    r = run_cli("data", "--subjects", "geometry", "--out", out, expect=2)
    assert_clean_error(r, "--subjects", "Geometry")
    assert nothing_written(out)


def test_benchmark_level_out_of_range(tmp_path):
    src = tmp_path / "math.jsonl"
    src.write_text('{"problem": "p", "solution": "\\\\boxed{1}", "type": "Algebra", "level": 9}\n')
    out = tmp_path / "out"
    r = run_cli("data", "--source", src, "--out", out, expect=2)
    assert_clean_error(r, "math.jsonl: row 1", "level")
    assert nothing_written(out)


def test_receiver_checkpoint_missing_adapter(tiny, tmp_path):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny["receiver_ckpt"], ckpt)
    (ckpt / "adapter.safetensors").unlink()
    out = tmp_path / "o.parquet"
    r = run_cli("evaluate", "--receiver", ckpt, "--conversations", tiny["convert"] / "test.jsonl",
                "--latents", tiny["latents"], "--variant", "interlat", "--work-dir", tmp_path / "w", "--out", out,
                expect=2)
    assert_clean_error(r, "adapter.safetensors")
    assert nothing_written(out)


def test_empty_seed_list(tiny, tmp_path):
    out = tmp_path / "o.parquet"
    r = run_cli("evaluate", "--receiver", tiny["receiver_ckpt"], "--conversations", tiny["convert"] / "test.jsonl",
                "--variant", "text", "--seeds", "", "--work-dir", tmp_path / "w", "--out", out, expect=2)
    assert "seed" in r.output
    assert nothing_written(out)


def test_manifest_lists_a_missing_part(tiny, tmp_path):
    lat = copy_latents(tiny, tmp_path)
    first_part(lat).unlink()
    out = tmp_path / "out"
    r = convert(tiny, lat, out)
    assert_clean_error(r, "part-")
    assert nothing_written(out)


def test_more_generated_problems_than_exist(tmp_path):
    r = run_cli("data", "--n-train", 5000, "--subjects", "algebra", "--out", tmp_path / "d", expect=2)
    assert 'field "n_train": Algebra: 5000 + 60 problems asked' in r.output and not (tmp_path / "d").exists()
