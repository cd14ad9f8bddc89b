"""The CUDA image: the same recipe as the CPU image (containers/Dockerfile, TORCH_BUILD=cuda),
really built here with podman over the same debootstrap base, and run with no network.

There is no GPU here, so this checks the build and the Python layer, not CUDA itself:
torch from PyPI is the CUDA build (`torch.version.cuda` set) and every heavy module
imports; `torch.cuda.is_available()` is False without a GPU and a driver. The image is
several GB (the nvidia-* wheels), so it is deleted at the end; its apt + venv layers
are the CPU image's (podman's layer cache), and the pip downloads stay in the build's
cache mount, out of the layers.
"""

import subprocess
import time
import tomllib

import pytest

from tests.cluster import images
from tests.cluster.images import PODMAN_RUN, ImageUnavailable

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

VERSION = tomllib.loads((images.REPO / "pyproject.toml").read_text())["project"]["version"]

IMPORTS = (
    "import torch, transformers, deepspeed, polars, alfworld; "
    "assert torch.version.cuda; "
    "print(torch.__version__, torch.version.cuda, torch.cuda.is_available())"
)


def in_image(tag: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([*PODMAN_RUN, tag, *argv], capture_output=True, text=True, timeout=600)


def test_cuda_image_builds_from_the_recipe_and_imports_offline(tmp_path):
    try:
        images.check_available()
    except ImageUnavailable as exc:
        pytest.skip(str(exc))
    tag = f"localhost/interlat-cuda:ctx-{images.context_hash()}"
    start = time.monotonic()
    try:
        build_seconds = images.build_image("cuda", tag, tmp_path / "build.log")
        size = images.image_size(tag)

        # One recipe: where the CPU image of these sources exists (tests/test_containers.py
        # ran first), the CUDA image shares its base and apt + venv layers, not copies.
        cpu = images.layers(f"{images.IMAGE_REPO}:ctx-{images.context_hash()}")
        if cpu is not None:
            assert images.layers(tag)[:2] == cpu[:2], (
                "apt + venv layers not shared with the CPU image"
            )

        marker = in_image(tag, "cat", "/opt/interlat/IMAGE")
        assert marker.stdout.strip() == f"interlat-cuda {VERSION}", marker.stdout + marker.stderr

        # The downloads went to the cache mount: no torch or CUDA wheel and no pip cache in any
        # layer (Debian's own /usr/share/python-wheels, pip and setuptools for venv, stay).
        leftovers = in_image(
            tag, "sh", "-c",
            "find / -xdev \\( -name 'torch-*.whl' -o -name 'nvidia*.whl' \\) 2>/dev/null; "
            "find /root/.cache/pip -type f 2>/dev/null; true",
        )  # fmt: skip
        assert leftovers.returncode == 0 and not leftovers.stdout.strip(), leftovers.stdout

        out = in_image(tag, "python", "-c", IMPORTS)
        assert out.returncode == 0, out.stdout + out.stderr
        torch_version, cuda, available = out.stdout.split()[-3:]
        assert torch_version.startswith("2.13.0") and "+cpu" not in torch_version, out.stdout
        assert cuda and cuda != "None", out.stdout
        assert available in ("True", "False"), out.stdout

        cli = in_image(tag, "interlat", "--help")
        assert cli.returncode == 0, cli.stderr
        assert cli.stdout.startswith("Usage: interlat"), cli.stdout
    finally:
        images.remove_image(tag)
    print(
        f"\n{tag}: built in {build_seconds} s, {size / 1e9:.2f} GB; imports: {out.stdout.strip()}; "
        f"test {time.monotonic() - start:.0f} s"
    )
