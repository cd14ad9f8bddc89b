"""Config: CLI numbers, schema validation, the checks the schema cannot express, run_config.yaml.

Included first: every other rule file reads the validated, defaulted `config` and `RUN`.
The experiment design (variants, receivers) comes from `interlat.variants`, not from here.
"""

import os
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from interlat.errors import InterlatError
from interlat.variants import BASELINE
from interlat.variants import parse as parse_variant


def numbers_from_cli(value, schema):
    """Numbers where the schema wants them: `--config seeds=[0,1,2]` reaches the workflow as
    strings (Snakemake parses list values with YAML's BaseLoader), so convert before validating.
    """
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    if isinstance(value, dict):
        props = schema.get("properties", {})
        return {k: numbers_from_cli(v, props.get(k, {})) for k, v in value.items()}
    if isinstance(value, list):
        return [numbers_from_cli(v, schema.get("items", {})) for v in value]
    if (
        isinstance(value, str)
        and "boolean" in types
        and value.lower() in ("true", "false")
    ):
        return value.lower() == "true"
    if isinstance(value, str):
        for kind, convert in (("integer", int), ("number", float)):
            if kind in types:
                try:
                    return convert(value)
                except ValueError:
                    pass
    return value


def check_config(config):
    """What the schema cannot say: variant names the registry (interlat.variants) knows, the
    baselines untrained ones, student-only MATH problems only from generated data, heads a
    multiple of KV heads. Raises a one-line WorkflowError.
    """
    named = [("evaluate.variants", v) for v in config["evaluate"]["variants"]]
    named += [
        ("evaluate.alfworld.variants", v)
        for v in config["evaluate"]["alfworld"].get("variants") or []
    ]
    named += [("compress.baselines", v) for v in config["compress"]["baselines"]]
    for key, name in named:
        try:
            variant = parse_variant(name)
        except InterlatError as e:
            raise WorkflowError(f"config {key}: {e.format_message()}") from None
        if key == "compress.baselines" and variant.kind != BASELINE:
            raise WorkflowError(
                f"config {key}: {name!r} is not an untrained baseline (truncated_<p>, first_<K>)"
            )
    math = config["data"]["math"]
    if math["n_compress"] and math["source"] != "generated":
        raise WorkflowError(
            f"config data.math.n_compress: {math['n_compress']}: only generated data has "
            f"problems for the student alone (source {math['source']!r}); set it to 0"
        )
    for model, spec in config["models"].items():
        if spec["heads"] % spec["kv_heads"]:
            raise WorkflowError(
                f"config models.{model}: heads {spec['heads']} is not a multiple of "
                f"kv_heads {spec['kv_heads']}"
            )


with open(Path(workflow.basedir) / "schemas" / "config.schema.yaml") as f:
    config.update(numbers_from_cli(dict(config), yaml.safe_load(f)))
validate(config, schema="../schemas/config.schema.yaml")
check_config(config)

RUN = config["run"]


def check_pins():
    """Refuse to run (dry runs and --lint still work) while a download is not pinned to a commit:
    config/paper/*.yaml carry the placeholder interlat.hub.PLACEHOLDER where none is known.
    """
    from interlat.hub import revision_problem

    pins = [(f"models.{m}.revision", s["hf_id"], s["revision"])
            for m, s in config["models"].items() if s["hf_id"]]  # fmt: skip
    math = config["data"]["math"]
    if "math" in config["benchmarks"] and math["source"] == "hf" and math["revision"]:
        pins.append(("data.math.revision", math["dataset_id"], math["revision"]))
    for key, repo_id, revision in pins:
        problem = revision_problem(repo_id, revision)
        if problem:
            raise WorkflowError(f"config {key}: {problem}")


def write_run_config():
    """The merged, defaulted config of this run (as Nextstrain's rules/config.smk does)."""
    path = f"results/{RUN}/run_config.yaml"
    text = yaml.safe_dump(dict(config), sort_keys=True)
    if os.path.exists(path) and open(path).read() == text:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


# Snakemake calls onstart handlers only when jobs really run: never in a dry run (-n),
# --lint, --list or a job's own (remote or subprocess) invocation.
onstart:
    check_pins()
    write_run_config()
