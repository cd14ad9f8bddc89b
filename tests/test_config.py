"""Every config file validates against the schema; schema defaults equal the dataclass defaults."""

from dataclasses import fields
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from interlat.train.trainer import TrainConfig
from tests.helpers import REPO

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
CONFIGS = sorted((REPO / "config").glob("*.yaml")) + sorted((REPO / "config/paper").glob("*.yaml"))


def merged(path: Path) -> dict:
    base = yaml.safe_load((REPO / "config/config.yaml").read_text())
    override = yaml.safe_load(path.read_text()) or {}

    def deep(a, b):
        for k, v in b.items():
            a[k] = deep(a.get(k, {}), v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
        return a

    return deep(base, override)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_config_validates(path):
    validate(merged(path), str(SCHEMA))


def test_every_schema_property_has_type_description_and_default():
    schema = yaml.safe_load(SCHEMA.read_text())

    def walk(node, where):
        for key, prop in node.get("properties", {}).items():
            if "$ref" in prop:
                continue
            for field in ("type", "description", "default"):
                assert field in prop, f"{where}.{key}: no {field}"
            walk(prop, f"{where}.{key}")

    walk(schema, "config")
    walk(schema["$defs"]["model"], "models.<model>")


def test_schema_defaults_equal_dataclass_defaults():
    props = yaml.safe_load(SCHEMA.read_text())["properties"]["train"]["properties"]
    for f in fields(TrainConfig):
        if f.name in props:
            assert props[f.name]["default"] == f.default, f.name


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"unknown_key": 1}, "unknown_key"),
        ({"train": {"steps": "many"}}, "steps"),
        ({"seeds": []}, "seeds"),
        ({"train": {"lr": -1}}, "lr"),
        ({"evaluate": {"variants": ["telepathy"]}}, "telepathy"),
    ],
)
def test_schema_rejects_bad_values(bad, field):
    from snakemake.exceptions import WorkflowError

    cfg = merged(REPO / "config/config.yaml")
    for k, v in bad.items():
        cfg[k] = {**cfg.get(k, {}), **v} if isinstance(v, dict) and isinstance(cfg.get(k), dict) else v
    with pytest.raises(WorkflowError, match=field):
        validate(cfg, str(SCHEMA))
