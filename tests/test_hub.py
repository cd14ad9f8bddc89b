"""Downloads the cluster way (interlat/hub.py): a shared cache keyed by repository and commit,
filled once from a Hugging Face cache folder the tests make (the Hub itself is unreachable
here), linked into each run; placeholders refused; network policy per command and per rule."""

import json
import os
from pathlib import Path

import pytest
import torch
import yaml

from interlat.hub import MARKER, PLACEHOLDER
from tests.helpers import assert_clean_error, copy_repo, nothing_written, run_cli, smk, tiny_lm

SHA = "0123456789abcdef0123456789abcdef01234567"


def hf_cache(root: Path, repo_id: str = "org/tiny-lm", revision: str = SHA) -> Path:
    """A Hugging Face cache folder ($HF_HOME/hub layout: blobs, refs, snapshots of symlinks)
    holding a real tiny model, a chat template in chat_template.jinja and files the pipeline
    does not need (README.md, a *.bin copy of the weights)."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    staging = root / "staging"
    tiny_lm(vocab_size=64).save_pretrained(staging, safe_serialization=True)
    (staging / "chat_template.jinja").write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    (staging / "README.md").write_text("# tiny\n")
    (staging / "pytorch_model.bin").write_bytes(b"not needed")
    (repo / "blobs").mkdir(parents=True)
    snap = repo / "snapshots" / revision
    snap.mkdir(parents=True)
    for i, f in enumerate(sorted(staging.iterdir())):
        os.replace(f, repo / "blobs" / f"blob{i}")
        os.symlink(f"../../blobs/blob{i}", snap / f.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    staging.rmdir()
    return root


def test_download_is_keyed_by_repo_and_revision_filtered_and_reused(tmp_path):
    source = hf_cache(tmp_path / "hfcache")
    out = tmp_path / "resources/hub/models/org/tiny-lm" / SHA
    run_cli("download", "--repo-id", "org/tiny-lm", "--revision", SHA, "--source", source, "--out", out)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([MARKER, "chat_template.jinja", "config.json", "generation_config.json", "model.safetensors"])
    assert not any(p.is_symlink() for p in out.iterdir())  # real files, not links into someone's cache
    marker = json.loads((out / MARKER).read_text())
    assert (marker["repo_id"], marker["revision"], marker["repo_type"]) == ("org/tiny-lm", SHA, "model")
    assert not (out.parent / f"{SHA}.partial").exists()
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    result = run_cli("download", "--repo-id", "org/tiny-lm", "--revision", SHA, "--source", source, "--out", out)
    assert "already in" in result.output
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


@pytest.mark.parametrize(
    "revision, needle",
    [(PLACEHOLDER, "is a placeholder"), ("main", "expected the 40-hex commit"), (SHA[:12], "expected the 40-hex commit")],
)
def test_unpinned_revisions_are_refused_before_any_download(tmp_path, revision, needle):
    out = tmp_path / "resources/hub/models/org/tiny-lm" / revision
    result = run_cli("download", "--repo-id", "org/tiny-lm", "--revision", revision, "--source", tmp_path,
                     "--out", out, expect=2)
    assert_clean_error(result, "--revision", needle)
    assert nothing_written(out)


def test_missing_snapshot_in_the_source_is_one_line(tmp_path):
    source = hf_cache(tmp_path / "hfcache")
    other = "f" * 40
    out = tmp_path / "out"
    result = run_cli("download", "--repo-id", "org/tiny-lm", "--revision", other, "--source", source,
                     "--out", out, expect=2)
    assert_clean_error(result, f"models--org--tiny-lm/snapshots/{other}", "not in this Hugging Face cache folder")
    assert nothing_written(out)


def test_models_links_the_shared_copy_and_it_loads(tmp_path):
    from transformers import AutoModelForCausalLM

    source = hf_cache(tmp_path / "hfcache")
    snap = tmp_path / "resources/hub/models/org/tiny-lm" / SHA
    run_cli("download", "--repo-id", "org/tiny-lm", "--revision", SHA, "--source", source, "--out", snap)
    out = tmp_path / "results/run/models/receiver"
    run_cli("models", "--snapshot", snap, "--out", out)
    links = sorted(out.iterdir())
    assert links and all(p.is_symlink() and not os.path.isabs(os.readlink(p)) for p in links)
    assert {p.resolve() for p in links} == {p.resolve() for p in snap.iterdir() if p.name != MARKER}
    loaded = AutoModelForCausalLM.from_pretrained(out)
    for (name, a), b in zip(loaded.state_dict().items(), tiny_lm(vocab_size=64).state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_models_refuses_a_folder_that_is_not_a_finished_download(tmp_path):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    out = tmp_path / "out"
    assert_clean_error(run_cli("models", "--snapshot", tmp_path / "half", "--out", out, expect=2), MARKER)
    assert nothing_written(out)


@pytest.mark.parametrize("command, online", [("download", "0"), ("data", "0"), ("models", "1"), ("collect", "1"),
                                             ("train", "1"), ("evaluate", "1"), ("tables", "1")])
def test_network_policy_per_command(monkeypatch, command, online):
    """Download commands online, compute commands offline, whatever the environment says."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0" if online == "1" else "1")  # the opposite; restored afterwards
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0" if online == "1" else "1")
    run_cli(command, "--help")
    assert (os.environ["HF_HUB_OFFLINE"], os.environ["HF_DATASETS_OFFLINE"]) == (online, online)


def write_config(work: Path, **override) -> None:
    config = yaml.safe_load((work / "config/test.yaml").read_text())
    config.update(override)
    (work / "config/test.yaml").write_text(yaml.safe_dump(config))


@pytest.mark.slow
def test_workflow_downloads_once_for_every_run_on_the_submitting_host(tmp_path):
    """Two run names, one download: `download` and `models` are local jobs, the second run
    reuses resources/hub/ and only links it; every job's env says offline except download's."""
    work = copy_repo(tmp_path / "repo")
    source = hf_cache(tmp_path / "hfcache")
    models = {"receiver": {"hf_id": "org/tiny-lm", "revision": SHA}, "sender": {"pretrain_steps": 200}}
    write_config(work, hub_source=str(source), models=models)
    first = smk(work, "-p", "results/test/models/receiver")
    text = first.stdout + first.stderr
    assert "localrule download:" in text and "localrule models:" in text
    snap = work / "resources/hub/models/org/tiny-lm" / SHA
    assert (snap / "chat_template.jinja").is_file() and (snap / "model.safetensors").is_file()
    mtime = (snap / "model.safetensors").stat().st_mtime_ns
    write_config(work, run="second")
    second = smk(work, "-p", "results/second/models/receiver")
    text = second.stdout + second.stderr
    assert "localrule models:" in text and "rule download:" not in text
    assert (snap / "model.safetensors").stat().st_mtime_ns == mtime
    linked = work / "results/second/models/receiver/model.safetensors"
    assert linked.is_symlink() and linked.resolve() == (snap / "model.safetensors").resolve()


@pytest.mark.slow
def test_workflow_refuses_a_placeholder_revision_before_any_job(tmp_path):
    work = copy_repo(tmp_path / "repo")
    write_config(work, models={"receiver": {"hf_id": "org/tiny-lm", "revision": PLACEHOLDER}})
    dry = smk(work, "-n", "results/test/models/receiver")  # a dry run still shows the plan
    assert "download" in dry.stdout + dry.stderr
    out = smk(work, "-p", "results/test/models/receiver", check=False)
    assert out.returncode != 0
    assert f"config models.receiver.revision: {PLACEHOLDER!r} is a placeholder" in out.stdout + out.stderr
    assert not (work / "resources").exists() and not (work / "results/test/models").exists()
