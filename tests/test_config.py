"""Every config file validates against the schema; schema defaults equal the dataclass defaults."""

from dataclasses import fields
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from interlat.train.trainer import TrainConfig
from tests.helpers import REPO

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
CONFIGS = [p for d in ("", "paper", "shape") for p in sorted((REPO / "config" / d).glob("*.yaml"))]


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
        ({"seeds": [0, 0]}, "non-unique"),
        ({"evaluate": {"variants": ["text", "text"]}}, "non-unique"),
        ({"run": ".."}, "does not match"),
    ],
)
def test_schema_rejects_bad_values(bad, field):
    from snakemake.exceptions import WorkflowError

    cfg = merged(REPO / "config/config.yaml")
    for k, v in bad.items():
        cfg[k] = {**cfg.get(k, {}), **v} if isinstance(v, dict) and isinstance(cfg.get(k), dict) else v
    with pytest.raises(WorkflowError, match=field):
        validate(cfg, str(SCHEMA))


# ---------------------------------------------------------------------------- one source of defaults
#: Config keys where config/config.yaml deliberately differs from the schema default (each
#: has a comment in config.yaml saying why). Anything else that disagrees fails the test.
CONFIG_DIFFERS = {
    "models.sender.id", "models.receiver.id", "models.llama.id",  # each model's own name in the shards
    "models.sender.pretrain_steps",  # only the sender is pretrained; receivers keep random init (schema 0)
    "models.receiver.seed", "models.llama.seed",  # initialisations other than the sender's
    "models.llama.arch", "models.llama.hidden_size", "models.llama.intermediate_size",  # the cross-family model
    "train.alfworld.steps", "train.alfworld.batch_size", "train.alfworld.lr",  # schema null = train.<key>
    "evaluate.variants",  # the default run adds three perturbation variants to the six core ones
    "evaluate.alfworld.variants",  # the default's ALFWorld episodes: the four variants Table 1 compares
    "compress.benchmarks",  # the default's Table 3 on MATH only (its ALFWorld receivers win nothing)
    "compress.k_list",  # the default trains K=8 only; the schema keeps [16, 8]
    "data.math.n_compress",  # the default's student gets its own problems; the paper's data has none (schema 0)
}
#: Command -> config sections whose leaf keys, spelled as options, must read the schema.
COMMAND_SECTIONS = {
    "data": ["data.math", "data.alfworld"], "models": ["models.sender"], "collect": ["collect"],
    "convert": ["convert"], "train": ["train"], "compress": ["compress"], "latency": ["compress.latency"],
    "evaluate": ["evaluate", "evaluate.alfworld"],
}
#: Options named like a key of their command's section that are deliberately not that key.
NOT_CONFIG = {
    ("compress", "student"),  # compress.student names a model; --student is its folder
}


def leaves(node: dict, schema: dict, path: str = ""):
    """(dotted key, property) of every leaf of the schema, `$ref`s followed."""
    for key, prop in node.get("properties", {}).items():
        if "$ref" in prop:
            prop = {**schema["$defs"][prop["$ref"].rsplit("/", 1)[-1]], **prop}
        dotted = f"{path}.{key}" if path else key
        if prop.get("type") == "object" and "properties" in prop:
            yield from leaves(prop, schema, dotted)
        else:
            yield dotted, prop


def config_value(cfg: dict, key: str):
    node = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return KeyError
        node = node[part]
    return node


def cli_options():
    """(command, option) of every `interlat` command option, with its declared config key (or None)."""
    import re

    from interlat.cli import main

    for name, cmd in main.commands.items():
        for p in cmd.params:
            m = re.search(r"\(config: ([\w.]+)\)", getattr(p, "help", "") or "")
            yield name, p, m.group(1) if m else None


def test_schema_defaults_equal_config_yaml_except_the_allow_list():
    schema = yaml.safe_load(SCHEMA.read_text())
    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    bad = [f"{k}: schema {p['default']!r}, config.yaml {config_value(cfg, k)!r}"
           for k, p in leaves(schema, schema)
           if config_value(cfg, k) is not KeyError and config_value(cfg, k) != p["default"] and k not in CONFIG_DIFFERS]
    assert not bad, bad
    stale = [k for k in CONFIG_DIFFERS if config_value(cfg, k) == dict(leaves(schema, schema))[k]["default"]]
    assert not stale, f"allow-listed but equal now: {stale}"


def test_cli_defaults_are_the_schema_defaults():
    from interlat.config import schema_default

    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    checked = 0
    for cmd, p, key in cli_options():
        if key is None:
            continue
        want = schema_default(key)
        want = ",".join(map(str, want)) if isinstance(want, list) else want
        assert p.default == want, f"interlat {cmd} {p.opts[0]}: default {p.default!r}, schema {key} {want!r}"
        in_cfg = config_value(cfg, key)
        if in_cfg is not KeyError and key not in CONFIG_DIFFERS:
            in_cfg = ",".join(map(str, in_cfg)) if isinstance(in_cfg, list) else in_cfg
            assert p.default == in_cfg, f"interlat {cmd} {p.opts[0]}: default {p.default!r}, config.yaml {in_cfg!r}"
        checked += 1
    assert checked >= 60


def test_every_option_named_like_a_config_key_reads_the_schema():
    from interlat.config import schema_property

    missing = []
    for cmd, p, key in cli_options():
        for section in COMMAND_SECTIONS.get(cmd, []):
            name = p.name
            try:
                schema_property(f"{section}.{name}")
            except KeyError:
                continue
            if key is None and (cmd, name) not in NOT_CONFIG:
                missing.append(f"interlat {cmd} {p.opts[0]} ({section}.{name})")
    assert not missing, missing
