"""Conda environments per rule group (workflow/envs/*.yaml), generated from requirements.lock.

`snakemake --sdm conda` builds one environment per file; every rule names one with `conda:`.
Each file pins Python, torch and the whole dependency closure of its group (the core
dependencies plus the group's extras of pyproject.toml) at the versions of requirements.lock,
then installs the package itself from the repository (`-e ../..`, relative to workflow/envs/,
which is where conda runs pip). `make envs` (`python -m interlat.envs`) rewrites them after
`make lock`; tests/test_conda_envs.py fails when they are stale.
"""

import re
import sys
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYTHON = "3.11"

#: group -> (extras of pyproject.toml, rules that run in it)
GROUPS = {
    "interlat": ((), ("download", "tokenizer", "models", "collect", "convert", "latency", "tables", "versions")),
    "alfworld": (("alfworld",), ("data", "data_alfworld", "evaluate")),
    "deepspeed": (("deepspeed",), ("train", "compress")),
}

ENVIRONMENT = {"python_version": PYTHON, "python_full_version": f"{PYTHON}.0", "sys_platform": "linux",
               "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
               "platform_python_implementation": "CPython", "os_name": "posix", "extra": ""}


def read_lock(text: str) -> dict[str, dict]:
    """name -> {"line": "name==version", "marker": Marker | None, "via": [parents]} of a uv lock."""
    entries, current = {}, None
    for line in text.splitlines():
        if m := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$", line):
            current = entries[canonicalize_name(m[1])] = {
                "line": f"{m[1]}=={m[2]}", "marker": Marker(m[3]) if m[3] else None, "via": []}
        elif current and (v := re.match(r"^\s+#\s+(?:via\s+)?([A-Za-z0-9][\w.-]*)", line)):
            current["via"].append(canonicalize_name(v[1]))
    return entries


def closure(roots: set[str], lock: dict[str, dict]) -> list[str]:
    """The roots and everything the lock says they pull in (through its `# via` parents)."""
    children: dict[str, set[str]] = {}
    for name, entry in lock.items():
        for parent in entry["via"]:
            children.setdefault(parent, set()).add(name)
    seen, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += children.get(name, ())
    return sorted(n for n in seen if n in lock and (lock[n]["marker"] is None or lock[n]["marker"].evaluate(ENVIRONMENT)))


def environment_file(group: str, project: dict, lock: dict[str, dict]) -> str:
    """The YAML text of workflow/envs/<group>.yaml."""
    extras, rules = GROUPS[group]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        reqs += [Requirement(r) for r in project["optional-dependencies"][extra]]
    torch = next(str(r) for r in reqs if canonicalize_name(r.name) == "torch")
    names = closure({canonicalize_name(r.name) for r in reqs} | {"torch"}, lock)
    pins = [torch] + [lock[n]["line"] for n in names]
    lines = [
        f"# Conda environment `{group}` for `snakemake --sdm conda`: rules {', '.join(rules)}.",
        "# Generated from requirements.lock by `make envs` (python -m interlat.envs); do not edit.",
        "# torch from PyPI is the CUDA build on Linux (it also runs on CPUs).",
        "channels:",
        "  - conda-forge",
        "  - nodefaults",
        "dependencies:",
        f"  - python={PYTHON}",
        "  - pip",
        "  - pip:",
        *[f"      - {p}" for p in pins],
        "      - -e ../..",
        "",
    ]
    return "\n".join(lines)


def render_all(root: Path = ROOT) -> dict[str, str]:
    """{file name: text} of every group's environment file."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    lock = read_lock((root / "requirements.lock").read_text())
    return {f"{group}.yaml": environment_file(group, project, lock) for group in GROUPS}


def main(argv: list[str]) -> int:
    from interlat.atomic import write_text

    out = Path(argv[0]) if argv else ROOT / "workflow" / "envs"
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        write_text(out / name, text)
        print(f"{out / name}: {text.count('==')} pinned packages", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
