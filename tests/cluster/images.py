"""Build, or reuse, the CPU image for the slow tests, and put the stand-in apptainer on PATH.

The image is built by containers/build.sh over a local debootstrap base (no registry
is reachable on CI hosts) and tagged `localhost/interlat-cpu:ctx-<hash>`, where the
hash covers everything that goes into it: the Dockerfile, build.sh, pyproject.toml, requirements.lock
and the interlat package. A matching tag is reused as is; after a code change the
rebuild reruns only the last layers (podman's layer cache keeps the dependencies).
`build_image` builds either variant of the one recipe over that same base (the CUDA
image's test uses it, and `remove_image` afterwards).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STANDIN = Path(__file__).resolve().parent / "apptainer"
IMAGE_REPO = "localhost/interlat-cpu"
PODMAN_RUN = [
    "podman", "run", "--rm", "--runtime", "runc", "--network", "none",
    "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768",
]  # fmt: skip


class ImageUnavailable(RuntimeError):
    """The image cannot be built here; the message says why."""


@dataclass(frozen=True)
class Image:
    tag: str
    image_id: str
    marker: str
    size_bytes: int
    build_seconds: float | None  # None: reused an existing image

    @property
    def uri(self) -> str:
        """What the workflow's `container` config takes (the stand-in maps it to podman)."""
        return f"docker://{IMAGE_REPO}@sha256:{self.image_id}"


def check_available() -> None:
    missing = [b for b in ("podman", "runc", "debootstrap") if shutil.which(b) is None]
    if missing:
        raise ImageUnavailable(f"not found: {', '.join(missing)} (run .ci/install-system-deps.sh)")
    if os.geteuid() != 0:
        raise ImageUnavailable("the image build (debootstrap, podman with runc) runs as root")


def context_files() -> list[Path]:
    files = [
        REPO / "containers" / "Dockerfile",
        REPO / "containers" / "build.sh",
        REPO / "pyproject.toml",
        REPO / "requirements.lock",
    ]
    files += sorted(
        p for p in (REPO / "interlat").rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    return files


def context_hash() -> str:
    h = hashlib.sha256()
    for path in context_files():
        h.update(str(path.relative_to(REPO)).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _inspect(ref: str) -> dict | None:
    out = subprocess.run(["podman", "image", "inspect", ref], capture_output=True, text=True)
    return json.loads(out.stdout)[0] if out.returncode == 0 else None


def _marker(ref: str) -> str:
    out = subprocess.run(
        [*PODMAN_RUN, ref, "cat", "/opt/interlat/IMAGE"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def ensure_cpu_image(log_dir: Path) -> Image:
    """The CPU image for the current sources: reused if its tag exists, else built."""
    check_available()
    tag = f"{IMAGE_REPO}:ctx-{context_hash()}"
    info = _inspect(tag)
    build_seconds = None
    if info is None:
        build_seconds = build_image("cpu", tag, Path(log_dir) / "build.log")
        info = _inspect(tag)
        _drop_stale_tags(keep=tag)
    return Image(
        tag=tag,
        image_id=info["Id"],
        marker=_marker(tag),
        size_bytes=int(info["Size"]),
        build_seconds=build_seconds,
    )


def build_image(variant: str, tag: str, log: Path, *podman_args: str) -> float:
    """Build `variant` (cpu or cuda) of containers/Dockerfile over the local debootstrap base
    (made once and shared by every build here) as `tag`; returns the build's seconds.

    `podman_args` go to `podman build` (e.g. "--target", "python")."""
    check_available()
    argv = [
        str(REPO / "containers" / "build.sh"),
        "--variant",
        variant,
        "--local-base",
        "--tag",
        tag,
    ]
    if podman_args:
        argv += ["--", *podman_args]
    start = time.monotonic()
    with open(log, "w") as fh:
        proc = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT)
    seconds = round(time.monotonic() - start, 1)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise AssertionError(f"containers/build.sh --variant {variant} failed ({log}):\n{tail}")
    return seconds


def image_size(tag: str) -> int:
    info = _inspect(tag)
    if info is None:
        raise AssertionError(f"no image {tag}")
    return int(info["Size"])


def layers(tag: str) -> list[str] | None:
    """The image's layer digests, base first (None: no such image)."""
    info = _inspect(tag)
    return None if info is None else list(info["RootFS"]["Layers"])


# The recipe's step that installs requirements.lock (its RUN line, as podman's history records it).
LOCK_STEP = "-r /tmp/interlat/requirements.lock"


def lock_layers(tag: str) -> int | None:
    """How many of the image's layers, base first, come up to and including the one that
    installs requirements.lock: the part of the recipe both variants share (None: no such
    image)."""
    info = _inspect(tag)
    if info is None:
        return None
    count = 0
    for step in info["History"]:
        if step.get("empty_layer", False):
            continue
        count += 1
        created_by = step.get("created_by", "")
        if LOCK_STEP in created_by and "COPY" not in created_by:
            return count
    raise AssertionError(f"{tag}: no layer installs requirements.lock ({LOCK_STEP})")


def remove_image(tag: str) -> None:
    """Untag and delete `tag`, with the layers no other image uses (the shared base, apt +
    venv and requirements.lock layers stay while the CPU image holds them)."""
    subprocess.run(["podman", "rmi", "--force", tag], capture_output=True)


def _drop_stale_tags(keep: str) -> None:
    """Untag the images of earlier source states (shared layers stay)."""
    out = subprocess.run(
        ["podman", "images", "--format", "{{.Repository}}:{{.Tag}}", IMAGE_REPO],
        capture_output=True,
        text=True,
    )
    for ref in out.stdout.split():
        if ref.startswith(f"{IMAGE_REPO}:ctx-") and ref != keep:
            subprocess.run(["podman", "rmi", ref], capture_output=True)


def standin_env(bin_dir: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment whose PATH finds the stand-in `apptainer` (only for tests)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    link = bin_dir / "apptainer"
    if not link.exists():
        link.symlink_to(STANDIN)
    env = dict(base if base is not None else os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def exec_log(workdir: Path) -> list[dict]:
    """The stand-in's per-call records in `workdir` (one JSON object per exec)."""
    path = Path(workdir) / ".apptainer-exec.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
