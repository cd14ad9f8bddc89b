"""One source of defaults: the config schema (workflow/schemas/config.schema.yaml).

CLI options that correspond to a config key read their default, and their range or
choices, from the schema, so a stage run by hand reproduces the pipeline's defaults.
Keys are dotted paths (`train.lr`, `models.sender.max_positions`); `$ref`s are followed.
PyYAML only (no torch): `interlat --help` stays fast.
"""

from functools import cache
from pathlib import Path

import click

#: `interlat/config.schema.yaml` links to `workflow/schemas/config.schema.yaml` in the repository
#: and is a copy of it in an installed package (package data), e.g. inside the images.
SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")


@cache
def schema() -> dict:
    """The parsed config schema (loaded once)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(SCHEMA_PATH) as f:
        return yaml.load(f, Loader=loader)


def schema_property(key: str) -> dict:
    """The schema node of a dotted config key, e.g. `schema_property("train.lr")`."""
    root = schema()
    node = root
    for part in key.split("."):
        if "$ref" in node:
            node = root["$defs"][node["$ref"].rsplit("/", 1)[-1]]
        try:
            node = node["properties"][part]
        except KeyError:
            raise KeyError(f"{key}: not a config key of {SCHEMA_PATH.name}") from None
    return node


def schema_default(key: str):
    """The schema's default of a dotted config key, e.g. `schema_default("train.lr")` -> 0.001."""
    prop = schema_property(key)
    if "default" in prop:
        return prop["default"]
    raise KeyError(f"{key}: no default in {SCHEMA_PATH.name}")


def schema_type(key: str) -> click.ParamType | type:
    """The click type of a config key: Choice for enums, Int/FloatRange for bounded numbers."""
    prop = schema_property(key)
    if prop.get("type") == "array":
        return str  # comma-joined on the command line
    if "enum" in prop:
        return click.Choice([str(v) for v in prop["enum"]])
    kinds = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
    kind = next(k for k in kinds if k != "null")
    if kind not in ("integer", "number"):
        return {"string": str, "boolean": bool}.get(kind, str)
    lo = prop.get("minimum", prop.get("exclusiveMinimum"))
    hi = prop.get("maximum", prop.get("exclusiveMaximum"))
    bounds = dict(min_open="exclusiveMinimum" in prop, max_open="exclusiveMaximum" in prop)
    if kind == "integer":
        if lo is None and hi is None:
            return int
        # IntRange's open bounds: shift them to closed ones.
        return click.IntRange(None if lo is None else lo + bounds["min_open"],
                              None if hi is None else hi - bounds["max_open"])
    if lo is None and hi is None:
        return float
    return click.FloatRange(lo, hi, **bounds)


def config_option(*names: str, key: str, **kw):
    """click.option whose default, type and range come from the schema's `key`.

    `default`/`type` given here win (e.g. a comma-joined list for a list-valued key);
    `help` gets the config key appended so `--help` says where the pipeline sets it.
    """
    default = kw.pop("default", schema_default(key))
    if isinstance(default, list):
        default = ",".join(str(v) for v in default)
    if "type" not in kw and not any("/" in n for n in names) and kw.get("is_flag") is not True:
        kw["type"] = schema_type(key)
    kw["help"] = f"{kw.get('help', '')} (config: {key})".strip()
    return click.option(*names, default=default, show_default=True, **kw)
