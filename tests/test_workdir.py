"""interlat.workdir: the one resumable-state mechanism (stamp of settings + input contents, chunks)."""

import json
import logging
import os

import polars as pl
import pytest

from interlat.workdir import (
    STAMP,
    chunk_path,
    content_digest,
    finish,
    merge_chunks,
    open_state,
    run_chunks,
)


def test_digest_follows_contents_not_names_sizes_or_times(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"weights-1")
    b.write_bytes(b"weights-1")
    assert content_digest(a) == content_digest(b)
    st = a.stat()
    a.write_bytes(b"weights-2")  # same size, same mtime: still another digest
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert content_digest(a) != content_digest(b)
    assert content_digest(tmp_path / "nope") == "missing" and content_digest(None) == "none"
    assert content_digest([a, b]) != content_digest([b, a])


def test_folder_digest_covers_relative_paths_and_bytes_but_not_hidden_files(tmp_path):
    d = tmp_path / "model"
    (d / "sub").mkdir(parents=True)
    (d / "config.json").write_text("{}")
    (d / "sub" / "w.bin").write_bytes(b"x")
    first = content_digest(d)
    (d / ".w.bin.tmp").write_bytes(b"half-written")
    assert content_digest(d) == first
    (d / "sub" / "w.bin").rename(d / "w.bin")  # same bytes, another place
    assert content_digest(d) != first


def test_open_state_keeps_like_state_and_discards_other_settings_or_inputs(tmp_path, caplog):
    work, weights = tmp_path / "work", tmp_path / "w.bin"
    weights.write_bytes(b"old")
    assert not open_state(work, {"lr": 0.001, "seed": 0}, {"model": weights})  # a fresh folder: nothing logged
    assert not caplog.records
    (work / "state").mkdir()
    (work / "seed0-000000.parquet").write_bytes(b"done")
    assert open_state(work, {"seed": 0, "lr": 0.001}, {"model": weights})  # key order does not matter
    assert (work / "state").is_dir() and (work / "seed0-000000.parquet").exists()
    with caplog.at_level(logging.WARNING, logger="interlat.workdir"):
        assert not open_state(work, {"lr": 0.02, "seed": 0}, {"model": weights})
    assert sorted(p.name for p in work.iterdir()) == [STAMP]
    assert [r.getMessage() for r in caplog.records] == [
        f"discarding stale state in {work}: settings/inputs changed (lr)"
    ]
    assert json.loads((work / STAMP).read_text())["settings"] == {"lr": 0.02, "seed": 0}
    caplog.clear()
    (work / "state").mkdir()
    weights.write_bytes(b"new")  # a retrained model under the same name
    with caplog.at_level(logging.WARNING, logger="interlat.workdir"):
        assert not open_state(work, {"lr": 0.02, "seed": 0}, {"model": weights})
    assert not (work / "state").exists()
    assert caplog.records[0].getMessage().endswith("(inputs.model)")


def test_a_folder_without_a_stamp_is_stale(tmp_path, caplog):
    (tmp_path / "settings.json").write_text("{}")  # a work folder of an older version
    (tmp_path / "part-r00-00000.parquet").write_bytes(b"x")
    with caplog.at_level(logging.WARNING, logger="interlat.workdir"):
        open_state(tmp_path, {"seed": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == [STAMP]
    assert "(no stamp)" in caplog.records[0].getMessage()


def test_finish_removes_the_state(tmp_path):
    open_state(tmp_path / "w", {"a": 1})
    finish(tmp_path / "w")
    assert not (tmp_path / "w").exists()
    finish(tmp_path / "w")  # nothing there: no error


def test_run_chunks_runs_only_missing_chunks_and_merges_sorted(tmp_path):
    pl.DataFrame({"task_id": ["b", "a"], "seed": [1, 1]}).write_parquet(chunk_path(tmp_path, 1, 0))
    ran = []

    def run_chunk(seed, start):
        ran.append((seed, start))
        return pl.DataFrame({"task_id": [f"t{start}"], "seed": [seed]})

    out = tmp_path / "out" / "x.parquet"
    df = run_chunks(tmp_path, [(0, 0), (0, 2), (1, 0)], run_chunk, out)
    assert ran == [(0, 0), (0, 2)]
    assert df.rows() == [("t0", 0), ("t2", 0), ("a", 1), ("b", 1)]
    assert chunk_path(tmp_path, 0, 2).name == "seed0-000002.parquet"
    assert pl.read_parquet(out).equals(df) and [p.name for p in out.parent.iterdir()] == ["x.parquet"]
    assert merge_chunks(tmp_path, [(1, 0)], out).height == 2


def test_a_failing_chunk_leaves_no_file(tmp_path):
    def boom(seed, start):
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        run_chunks(tmp_path, [(0, 0)], boom, tmp_path / "x.parquet")
    assert list(tmp_path.iterdir()) == []


def test_sigterm_stops_after_the_running_chunk_and_the_rerun_finishes(tmp_path):
    """SIGTERM during chunk 2 of 4: that chunk is kept, `Stopped` (exit 143, one line) and no
    output; the default SIGTERM action is back afterwards; the rerun runs chunks 3 and 4 only."""
    import signal

    from interlat.runtime import Stopped

    chunks, ran = [(0, 0), (0, 2), (0, 4), (0, 6)], []

    def run_chunk(seed, start):
        ran.append(start)
        if start == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # as SLURM's time limit would
        return pl.DataFrame({"task_id": [f"t{start}"], "seed": [seed]})

    out = tmp_path / "x.parquet"
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Stopped) as e:
        run_chunks(tmp_path, chunks, run_chunk, out)
    assert e.value.exit_code == 143
    assert e.value.format_message() == f"caught SIGTERM: state saved at chunk 2 of 4 in {tmp_path}; rerun to resume"
    assert signal.getsignal(signal.SIGTERM) is before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed0-000000.parquet", "seed0-000002.parquet"]
    ran.clear()
    df = run_chunks(tmp_path, chunks, lambda s, i: run_chunk(s, i) if i != 2 else None, out)
    assert ran == [4, 6] and df["task_id"].to_list() == ["t0", "t2", "t4", "t6"]
