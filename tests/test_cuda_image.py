"""The CUDA image: the same recipe as the CPU image (containers/Dockerfile, TORCH_BUILD=cuda),
really built here with podman over the same debootstrap base, and run with no network.

There is no GPU here, so this checks the build and the Python layer, not CUDA itself:
torch from PyPI is the CUDA build (`torch.version.cuda` set) and every heavy module
imports; `torch.cuda.is_available()` is False without a GPU and a driver. The image is
several GB (the nvidia-* wheels), so it is deleted at the end. The recipe installs
requirements.lock before torch, so where the CPU image of the same sources was built
first (tests/test_containers.py sorts before this file), the CUDA build reuses the
base, apt + venv and lock layers from podman's layer cache, source builds included,
and only installs torch and the package: a few minutes, mostly the CUDA wheels' download
and install. The pip downloads stay in the build's cache mount, out of the layers.
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
        # ran first), the CUDA image shares its layers up to and including the
        # requirements.lock install (base, apt + venv, the lock), not copies: only torch and
        # the package differ.
        cpu_tag = f"{images.IMAGE_REPO}:ctx-{images.context_hash()}"
        cpu = images.layers(cpu_tag)
        shared = None
        if cpu is not None:
            shared = images.lock_layers(cpu_tag)
            assert images.lock_layers(tag) == shared, "the lock is not at the same step in both"
            cuda = images.layers(tag)
            assert cuda[:shared] == cpu[:shared], (
                f"base, apt + venv and requirements.lock layers (the first {shared}) "
                "not shared with the CPU image"
            )
            assert cuda[shared] != cpu[shared], "the torch layer should be variant-specific"

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
        f"\n{tag}: built in {build_seconds} s, {size / 1e9:.2f} GB; "
        f"layers shared with the CPU image: {shared if shared is not None else 'no CPU image'}; "
        f"imports: {out.stdout.strip().splitlines()[-1]}; test {time.monotonic() - start:.0f} s"
    )
