"""The CPU image: a real podman build over a debootstrap base, a real docker-archive, and
the test-config pipeline run with `--use-apptainer` through the stand-in apptainer.

What is real and what is stood in (docs/cluster.md, "What the tests exercise"):
podman builds containers/Dockerfile (TORCH_BUILD=cpu) for real and runs every job in that image;
only the `apptainer` executable Snakemake calls is a stand-in (tests/cluster/apptainer)
that maps `pull`/`exec` onto the podman image and records, from inside each job's
container, the marker /opt/interlat/IMAGE.
"""

import json
import subprocess
import tarfile
import tomllib

import pytest

from tests.cluster import images, pipeline
from tests.cluster.images import PODMAN_RUN, ImageUnavailable

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]  # image builds and cluster start-up are long

VERSION = tomllib.loads((images.REPO / "pyproject.toml").read_text())["project"]["version"]


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> images.Image:
    try:
        images.check_available()
    except ImageUnavailable as exc:
        pytest.skip(str(exc))
    return images.ensure_cpu_image(tmp_path_factory.mktemp("image-build"))


def in_image(image, *argv: str) -> subprocess.CompletedProcess:
    """Run a command in the image with no network, as the stand-in does for jobs."""
    return subprocess.run(
        [*PODMAN_RUN, image.tag, *argv], capture_output=True, text=True, timeout=300
    )


def test_marker_names_image_and_version(image):
    assert image.marker == f"interlat-cpu {VERSION}"


def test_cli_runs_offline_in_image(image):
    out = in_image(image, "interlat", "--help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Usage: interlat"), out.stdout
    for command in ("collect", "train", "evaluate", "tables"):
        assert f"  {command} " in out.stdout


def test_image_environment(image):
    script = (
        "set -e; "
        'test "$(command -v interlat)" = /opt/venv/bin/interlat; '
        # no global offline switch: interlat sets it per command (interlat/hub.py)
        'test -z "${HF_HUB_OFFLINE+set}"; '
        "python -c \"import torch; assert torch.__version__ == '2.13.0+cpu', torch.__version__\"; "
        # ALFWORLD_DATA must be writable: importing alfworld creates it.
        'python -c "import alfworld" && test -d "$ALFWORLD_DATA" && test -w "$ALFWORLD_DATA"; '
        # The local torch wheel was bind-mounted, never copied into a layer.
        "test -z \"$(find / -xdev -name 'torch-*.whl' 2>/dev/null)\"; "
        "echo ok"
    )
    out = in_image(image, "sh", "-c", script)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stdout + out.stderr


def test_compute_commands_are_offline_in_image(image):
    """A compute command runs offline even where the environment says online."""
    script = "import os, sys; from interlat.cli import main; sys.argv = ['interlat', 'tables', '--help']\n" \
        "try:\n    main()\nexcept SystemExit:\n    print(os.environ['HF_HUB_OFFLINE'], os.environ['HF_DATASETS_OFFLINE'])"
    out = subprocess.run(
        [*PODMAN_RUN, "-e", "HF_HUB_OFFLINE=0", image.tag, "python", "-c", script],
        capture_output=True,
        text=True,
    )
    assert out.stdout.split()[-2:] == ["1", "1"], out.stdout + out.stderr


def test_docker_archive_is_valid(image, tmp_path):
    archive = tmp_path / "interlat-cpu.tar"
    subprocess.run(
        ["podman", "save", "--format", "docker-archive", "-o", str(archive), image.tag],
        check=True,
        capture_output=True,
    )
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        assert "manifest.json" in names
        (manifest,) = json.load(tar.extractfile("manifest.json"))
        assert image.tag in manifest["RepoTags"]
        assert manifest["Config"].removesuffix(".json").removeprefix("sha256:") == image.image_id
        missing = [layer for layer in manifest["Layers"] if layer not in names]
        assert not missing, missing
        config = json.load(tar.extractfile(manifest["Config"]))
    env = config["config"]["Env"]
    assert not any(e.startswith("HF_HUB_OFFLINE=") for e in env)
    assert any(e.startswith("PATH=/opt/venv/bin:") for e in env)
    print(
        f"\n{archive.name}: {archive.stat().st_size / 1e9:.2f} GB, {len(manifest['Layers'])} layers"
    )


@pytest.mark.skipif(
    pipeline.workflow_missing() is not None, reason=str(pipeline.workflow_missing())
)
def test_pipeline_jobs_run_in_image(image, tmp_path_factory):
    """Every job of the test-config pipeline ran inside the image, with no network."""
    run = pipeline.local_container_run(image, tmp_path_factory).check()
    records = images.exec_log(run.workdir)
    logs = pipeline.job_logs(run.workdir)
    assert logs, "no rule logs written"
    assert len(records) == len(logs), (len(records), len(logs))
    for log in logs:
        matching = [r for r in records if log in r["command"]]
        assert len(matching) == 1, (log, matching)
        (record,) = matching
        assert record["marker"] == image.marker, record
        assert record["image_id"] == image.image_id, record
        assert record["rc"] == 0, record
    assert (run.workdir / "results/test/tables").is_dir()
    print(f"\nlocal --use-apptainer run: {len(records)} jobs in {run.seconds} s")
