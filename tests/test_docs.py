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
