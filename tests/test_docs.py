"""docs/reliability.md: at least 25 faults, and every test it names exists."""

import ast
import re

from tests.helpers import REPO


def functions_in(path):
    tree = ast.parse((REPO / path).read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}


def test_every_fault_row_names_tests_that_exist():
    text = (REPO / "docs/reliability.md").read_text()
    rows = [line for line in text.splitlines() if re.match(r"^\| \d+ \|", line)]
    assert len(rows) >= 25
    for row in rows:
        last_file = None
        refs = re.findall(r"`((?:tests/[\w/]+\.py)?(?:::\w+)?)(?:\[[^\]]*\])?`", row.split("|")[-2])
        assert refs, row
        for ref in refs:
            file, _, name = ref.partition("::")
            last_file = file or last_file
            assert last_file and (REPO / last_file).is_file(), (row, ref)
            if name:
                assert name in functions_in(last_file), (last_file, name)


def tracked_text_files():
    import subprocess

    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    for name in names:
        path = REPO / name
        if path.is_file() and path.suffix in {".py", ".md", ".smk", ".yaml", ".yml", ".toml", ".rst", ".json", ""}:
            try:
                yield name, path.read_text()
            except UnicodeDecodeError:
                continue


def method_sections() -> set[str]:
    text = (REPO / "docs/method.md").read_text()
    return set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", text, flags=re.MULTILINE))


def test_method_spec_has_the_six_sections_and_their_subsections():
    sections = method_sections()
    assert {"1", "2", "3", "4", "5", "6"} <= sections
    assert {"3.2", "3.3", "3.4", "4.4", "5.1"} <= sections  # adapter, insertion, curriculum, KL, variants


def test_every_method_citation_names_an_existing_section():
    sections = method_sections()
    cited = 0
    for name, text in tracked_text_files():
        for m in re.finditer(r"docs/method\.md,? sections? (\d+(?:\.\d+)?)(?:(?:-| and | or |, )(\d+(?:\.\d+)?))?", text):
            for number in filter(None, m.groups()):
                cited += 1
                assert number in sections, f"{name}: cites docs/method.md section {number}, which does not exist"
    assert cited >= 50  # the package cites the spec throughout


def test_nothing_points_outside_the_repository():
    outside = re.compile(r"\.\./shared|(?<![\w/.])METHOD\.md|/work/shared")
    for name, text in tracked_text_files():
        if name == "tests/test_docs.py":
            continue
        assert not outside.search(text), f"{name}: refers to a file outside the repository"


def test_the_suite_runs_under_a_per_test_timeout():
    """A hang fails fast: pytest-timeout is installed, and configured for every test."""
    import tomllib

    import pytest_timeout  # noqa: F401  (the plugin must be importable, i.e. installed by `make test`)

    options = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert 0 < int(options["timeout"]) <= 900
    assert options["timeout_method"] == "signal"


def test_no_module_over_400_lines():
    """Small modules with one job each: the package's longest module stays under 400 lines."""
    long = {str(p.relative_to(REPO)): n for p in (REPO / "interlat").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long
