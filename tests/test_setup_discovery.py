"""The Makefile's Python discovery: it takes the first of python3.11, python3.12, python3 on PATH
whose version is 3.11 or 3.12 (3.13 is refused: textworld fails there, docs/setup.md), and `make
prereqs` says what to install when none is, or when `make PYTHON=...` names one out of range.

Each case puts fake interpreters on PATH: small scripts, run by this test's Python, that pretend
to be a given version (they set sys.version_info and platform.python_version, then run the `-c`
code the Makefile passes, or answer -V); names that should be missing exit 127 like a missing
command. No install happens (docs/setup.md has the real set-ups, timed per version).
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers import REPO

NAMES = ("python3.11", "python3.12", "python3.13", "python3")
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")

FAKE = """#!{python}
import platform
import sys
sys.version_info = ({major}, {minor}, 0, "final", 0)
platform.python_version = lambda: "{major}.{minor}.0"
if sys.argv[1:2] == ["-V"]:
    print("Python {major}.{minor}.0")
elif sys.argv[1:2] == ["-c"]:
    exec(sys.argv[2])
else:
    sys.exit(2)
"""


def fake_path(tmp_path: Path, versions: dict[str, str]) -> Path:
    """A folder with one script per name in NAMES: a fake interpreter where `versions` names its
    version (name -> "3.12"), else a stand-in for a missing command."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in NAMES:
        script = folder / name
        if name in versions:
            major, minor = versions[name].split(".")
            script.write_text(FAKE.format(python=sys.executable, major=major, minor=minor))
        else:
            script.write_text("#!/bin/sh\nexit 127\n")
        script.chmod(0o755)
    return folder


def make(tmp_path: Path, versions: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    tmp_path = Path(tempfile.mkdtemp(dir=tmp_path))  # a case may call make more than once
    folder = fake_path(tmp_path, versions)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "MAKEFLAGS", "MFLAGS")}
    env["PATH"] = f"{folder}:/usr/bin:/bin"
    work = tmp_path / "work"  # not the repo: its .venv/bin must not come first on PATH
    work.mkdir()
    return subprocess.run(["make", "-s", "-f", str(REPO / "Makefile"), *args], cwd=work, env=env,
                          capture_output=True, text=True, timeout=60)


def discovered(tmp_path: Path, versions: dict[str, str]) -> str:
    result = make(tmp_path, versions, "--eval=print-python: ; @echo '[$(PYTHON)]'", "print-python")
    assert result.returncode == 0, result.stderr
    found = result.stdout.strip().removeprefix("[").removesuffix("]")
    return Path(found).name if found else ""


@pytest.mark.parametrize("minor", [10, 11, 12, 13, 14])
def test_python3_alone_is_taken_only_in_range(tmp_path, minor):
    expected = "python3" if minor in (11, 12) else ""
    assert discovered(tmp_path, {"python3": f"3.{minor}"}) == expected


@pytest.mark.parametrize("name", ["python3.11", "python3.12"])
def test_a_versioned_name_is_found_before_an_out_of_range_python3(tmp_path, name):
    assert discovered(tmp_path, {name: name.removeprefix("python"), "python3": "3.13"}) == name


def test_python3_13_is_not_looked_for(tmp_path):
    assert discovered(tmp_path, {"python3.13": "3.13", "python3": "3.10"}) == ""


def test_the_first_in_order_wins_and_a_wrong_version_behind_a_name_is_skipped(tmp_path):
    assert discovered(tmp_path, {"python3.11": "3.11", "python3.12": "3.12", "python3": "3.12"}) \
        == "python3.11"
    # a python3.12 that is really 3.13 (a stale link) is passed over for python3 3.11
    assert discovered(tmp_path, {"python3.12": "3.13", "python3": "3.11"}) == "python3"


@pytest.mark.parametrize("versions", [{}, {"python3": "3.10"}, {"python3": "3.13"}, {"python3": "3.14"}],
                         ids=["none", "3.10", "3.13", "3.14"])
def test_prereqs_says_what_to_install_when_no_python_fits(tmp_path, versions):
    result = make(tmp_path, versions, "prereqs")
    assert result.returncode != 0
    assert "no Python 3.11 or 3.12 on PATH" in result.stdout
    if versions:
        assert f"(python3 is {versions['python3']}.0)" in result.stdout
    assert "apt-get install python3 python3-venv python3-dev" in result.stdout
    assert "make PYTHON=/path/to/python3.12" in result.stdout


@pytest.mark.parametrize("minor", [10, 13])
def test_prereqs_refuses_a_named_python_out_of_range(tmp_path, minor):
    folder = fake_path(Path(tempfile.mkdtemp(dir=tmp_path)), {"python3": f"3.{minor}"})
    result = make(tmp_path, {}, f"PYTHON={folder / 'python3'}", "prereqs")
    assert result.returncode != 0
    assert f"(Python 3.{minor}.0) is not Python 3.11 or 3.12" in result.stdout


def test_a_named_python_is_used_as_given(tmp_path):
    result = make(tmp_path, {"python3": "3.10"}, "PYTHON=/opt/py/bin/python3.12",
                  "--eval=print-python: ; @echo '[$(PYTHON)]'", "print-python")
    assert result.stdout.strip() == "[/opt/py/bin/python3.12]"
