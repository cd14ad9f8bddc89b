"""requirements.lock agrees with pyproject.toml, the Makefile and this environment.

The lock pins every transitive dependency but torch, with hashes, for Python 3.11-3.12 (uv pip
compile --universal). It disagrees with pyproject.toml when a requirement (any extra, any
supported Python) has no pin that satisfies it, or when a pin is no longer needed by anything;
`make lock` fixes both.
"""

import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.helpers import REPO

PYTHONS = ("3.11", "3.12")
CUDA_ONLY = re.compile(r"^(nvidia-|cuda-|triton$)")


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def lock_entries() -> dict[str, dict]:
    """name -> {version, marker, hashes, via} of each pin in requirements.lock."""
    entries, current = {}, None
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if m := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$", line):
            current = entries[canonicalize_name(m[1])] = {
                "version": Version(m[2]), "marker": Marker(m[3]) if m[3] else None, "hashes": [], "via": []}
        elif current and (h := re.match(r"^\s+--hash=sha256:([0-9a-f]{64})", line)):
            current["hashes"].append(h[1])
        elif current and (v := re.match(r"^\s+#\s+(?:via\s+)?([A-Za-z0-9][\w.-]*)", line)):
            current["via"].append(canonicalize_name(v[1]))
    return entries


def requirements() -> list[Requirement]:
    project = pyproject()
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra if not r.startswith(f"{project['name']}[")]
    return reqs


def environment(python: str) -> dict:
    return {"python_version": python, "python_full_version": f"{python}.0", "sys_platform": "linux",
            "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
            "platform_python_implementation": "CPython", "os_name": "posix", "extra": ""}


@pytest.mark.parametrize("python", PYTHONS)
def test_every_pyproject_requirement_has_a_satisfying_pin(python):
    lock = lock_entries()
    for req in requirements():
        name = canonicalize_name(req.name)
        if name == "torch":  # installed by `make torch` (CPU or CUDA build), outside the lock
            continue
        assert name in lock, f"{req}: not in requirements.lock (run `make lock`)"
        entry = lock[name]
        assert entry["marker"] is None or entry["marker"].evaluate(environment(python)), (req, python)
        assert req.specifier.contains(entry["version"], prereleases=True), \
            f"{req}: requirements.lock pins {entry['version']} (run `make lock`)"


def test_every_pin_has_hashes_and_is_needed():
    lock = lock_entries()
    assert len(lock) > 100
    direct = {canonicalize_name(r.name) for r in requirements()}
    for name, entry in lock.items():
        assert entry["hashes"], f"{name}: no --hash in requirements.lock"
        assert entry["via"], f"{name}: no `# via` annotation"
        assert name in direct or any(v in lock or v == "torch" for v in entry["via"]), \
            f"{name}: nothing in pyproject.toml needs it any more (run `make lock`)"


def test_torch_is_exact_outside_the_lock_and_no_cuda_package_is_locked():
    text = (REPO / "requirements.lock").read_text()
    assert "# The following packages were excluded from the output:\n# torch" in text
    assert "torch" not in lock_entries()
    assert not [n for n in lock_entries() if CUDA_ONLY.match(n)]
    torch_req = next(r for r in pyproject()["dependencies"] if r.startswith("torch"))
    makefile = (REPO / "Makefile").read_text()
    torch_version = re.search(r"^TORCH_VERSION := (\S+)$", makefile, re.M)[1]
    assert torch_req == f"torch=={torch_version}"


def test_python_range_agrees_with_the_makefile():
    spec = pyproject()["requires-python"]
    assert spec == f">={PYTHONS[0]},<3.{int(PYTHONS[-1].split('.')[1]) + 1}"
    lo, hi = re.search(r"PY_RANGE := \((\d+), (\d+)\) <= sys.version_info\[:2\] <= \((\d+), (\d+)\)",
                       (REPO / "Makefile").read_text()).groups()[1::2]
    assert f"3.{lo}" == PYTHONS[0] and f"3.{hi}" == PYTHONS[-1]


def test_this_environment_is_the_lock():
    """The tested environment is what the lock says (CI builds it from the lock)."""
    env = environment("{}.{}".format(*sys.version_info[:2]))
    wrong = []
    for name, entry in lock_entries().items():
        if entry["marker"] is not None and not entry["marker"].evaluate(env):
            continue
        try:
            installed = Version(version(name))
        except PackageNotFoundError:
            wrong.append(f"{name}: not installed, lock {entry['version']}")
            continue
        if installed != entry["version"]:
            wrong.append(f"{name}: installed {installed}, lock {entry['version']}")
    assert not wrong, "environment differs from requirements.lock (make):\n" + "\n".join(wrong)


def test_makefile_images_and_ci_install_the_lock():
    assert "--require-hashes --no-deps -r $(LOCK)" in (REPO / "Makefile").read_text()
    # One recipe for both images (containers/Dockerfile, TORCH_BUILD=cpu|cuda).
    assert sorted(p.name for p in (REPO / "containers").glob("Dockerfile*")) == ["Dockerfile"]
    text = (REPO / "containers" / "Dockerfile").read_text()
    assert "COPY requirements.lock" in text and "--require-hashes --no-deps -r /tmp/interlat/requirements.lock" in text
    assert "make test" in (REPO / ".ci/run").read_text()
