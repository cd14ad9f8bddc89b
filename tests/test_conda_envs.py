"""workflow/envs/*.yaml: one conda environment per rule group, every rule names one, and every
pin equals requirements.lock's (interlat/envs.py generates them: `make envs`)."""

import re

import yaml
from packaging.utils import canonicalize_name

from interlat.envs import GROUPS, read_lock, render_all
from tests.helpers import REPO

ENVS = REPO / "workflow" / "envs"


def rules_and_envs() -> dict[str, str]:
    """rule name -> the env file its `conda:` names (None when it has none), from the .smk text."""
    found = {}
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"^(?=rule )", smk.read_text(), flags=re.M)[1:]:
            name = re.match(r"rule (\w+):", block)[1]
            conda = re.search(r"^    conda:\n\s+\"([^\"]+)\"", block, flags=re.M)
            found[name] = conda[1] if conda else None
    return found


def test_env_files_are_current():
    expected = render_all()
    assert sorted(p.name for p in ENVS.glob("*.yaml")) == sorted(expected)
    for name, text in expected.items():
        assert (ENVS / name).read_text() == text, f"workflow/envs/{name} is stale: run `make envs`"


def test_every_pin_is_the_locks():
    lock = read_lock((REPO / "requirements.lock").read_text())
    for path in ENVS.glob("*.yaml"):
        env = yaml.safe_load(path.read_text())
        assert env["channels"][-1] == "nodefaults" and "pip" in env["dependencies"]
        pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
        assert pip[-1] == "-e ../.." and pip[0] == "torch==2.13.0"
        for line in pip[1:-1]:
            name, version = line.split("==")
            assert lock[canonicalize_name(name)]["line"].split("==")[1] == version, (path.name, line)


def test_every_rule_names_its_group_env():
    rules = rules_and_envs()
    assert len(rules) >= 12
    group_of = {rule: group for group, (_, members) in GROUPS.items() for rule in members}
    for rule, env in rules.items():
        assert env is not None, f"rule {rule}: no conda: directive"
        assert rule in group_of, f"rule {rule}: in no group of interlat/envs.py GROUPS"
        assert env == f"../envs/{group_of[rule]}.yaml", (rule, env)


def test_groups_carry_their_extras():
    texts = render_all()
    assert "alfworld==" in texts["alfworld.yaml"] and "alfworld==" not in texts["interlat.yaml"]
    assert "deepspeed==" in texts["deepspeed.yaml"] and "deepspeed==" not in texts["alfworld.yaml"]
    assert not any("snakemake" in t.split("dependencies:")[1] for t in texts.values())  # the runner, not a job's need
