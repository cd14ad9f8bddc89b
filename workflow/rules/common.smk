"""Config validation, wildcard constraints and the get_* helpers shared by all rule files.

No rules here (the linter flags rules and functions mixed in one file).
"""

import re
from pathlib import Path

import yaml
from snakemake.utils import validate


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
        for kind, parse in (("integer", int), ("number", float)):
            if kind in types:
                try:
                    return parse(value)
                except ValueError:
                    pass
    return value


with open(Path(workflow.basedir) / "schemas" / "config.schema.yaml") as f:
    config.update(numbers_from_cli(dict(config), yaml.safe_load(f)))
validate(config, schema="../schemas/config.schema.yaml")

RUN = config["run"]

#: variants that need their own receiver; every other variant uses the interlat receiver
RECEIVER_OF_VARIANT = {
    "cot_full": "cot_full",
    "no_cot": "no_cot",
    "cross_family": "cross_family",
}
#: receiver -> (training mode, base model)
#: same-family receivers start from config `train.receiver_base` (the pretrained sender by
#: default, as in the paper where sender and receiver share one base LM)
RECEIVERS = {
    "interlat": ("interlat", config["train"]["receiver_base"]),
    "cot_full": ("text", config["train"]["receiver_base"]),
    "no_cot": ("none", config["train"]["receiver_base"]),
    "cross_family": ("interlat", "llama"),
}


wildcard_constraints:
    run=re.escape(RUN),
    benchmark="|".join(config["benchmarks"]),
    subject="[a-z_]+",
    model="tokenizer|sender|receiver|llama",
    receiver="|".join(RECEIVERS),
    variant=r"[A-Za-z0-9_.]+",


def get_container():
    """The image every rule runs in (config key `container`, pinned by digest)."""
    return config["container"]


def get_subjects(wildcards):
    """A benchmark's shard sets: MATH subjects or ALFWorld task types."""
    if wildcards.benchmark == "alfworld":
        return config["data"]["alfworld"]["task_types"]
    return config["data"][wildcards.benchmark]["subjects"]


def get_alfworld_task_types(wildcards):
    return ",".join(config["data"]["alfworld"]["task_types"])


def get_data_dirs(wildcards=None):
    """Every benchmark's data folder (tokenizer corpus, sender pretraining pairs)."""
    return expand(
        "results/{run}/data/{benchmark}", run=RUN, benchmark=config["benchmarks"]
    )


def get_data_options(wildcards, input):
    return " ".join(f"--data {p}" for p in input.data)


def get_latents(wildcards):
    """All subjects' shard folders of a benchmark."""
    return expand(
        "results/{run}/latents/{benchmark}/sender/{subject}",
        run=RUN,
        benchmark=wildcards.benchmark,
        subject=get_subjects(wildcards),
    )


def get_receivers():
    """Receivers the configured variants need (always the interlat receiver)."""
    return sorted(
        {"interlat"}
        | {
            RECEIVER_OF_VARIANT.get(v, "interlat")
            for v in config["evaluate"]["variants"]
        }
    )


def get_models():
    return sorted({"sender"} | {RECEIVERS[r][1] for r in get_receivers()})


def get_model_input(wildcards):
    """Tiny models need the tokenizer (and the sender its pretraining data); downloads nothing."""
    spec = config["models"][wildcards.model]
    if spec["hf_id"]:
        return {}
    inputs = {"tokenizer": f"results/{RUN}/models/tokenizer"}
    if spec["pretrain_steps"] > 0:
        inputs["data"] = get_data_dirs()
    return inputs


def get_model_param(name):
    """A function returning models.<wildcard model>.<name> (one value per rule param)."""

    def f(wildcards):
        return config["models"][wildcards.model][name]

    return f


def get_pretrain_data_option(wildcards, input):
    if "data" not in input.keys():
        return ""
    return " ".join(f"--pretrain-data {p}" for p in input.data)


def get_tokenizer_option(wildcards, input):
    return f"--tokenizer {input.tokenizer}" if "tokenizer" in input.keys() else ""


def get_hf_option(wildcards):
    hf = config["models"][wildcards.model]["hf_id"]
    return f"--hf-id {hf}" if hf else ""


def get_train_input(wildcards):
    mode, base = RECEIVERS[wildcards.receiver]
    inputs = {
        "base": f"results/{RUN}/models/{base}",
        "conversations": f"results/{RUN}/convert/{wildcards.benchmark}",
    }
    if mode == "interlat":
        inputs["latents"] = get_latents(wildcards)
    return inputs


def get_train_mode(wildcards):
    return RECEIVERS[wildcards.receiver][0]


def get_train_param(name):
    """train.<name>, or train.alfworld.<name> for ALFWorld receivers when set."""

    def f(wildcards):
        own = config["train"].get(wildcards.benchmark, {}).get(name)
        return config["train"][name] if own is None else own

    return f


def get_latents_options(wildcards, input):
    return " ".join(f"--latents {p}" for p in input.get("latents", []))


def get_launcher(wildcards, resources):
    """torchrun for multi-process engines (process count from the rule's resources)."""
    nproc = max(int(resources.get("gpu", 0)), int(config["train"]["nproc"]))
    if config["train"]["engine"] == "single" or nproc <= 1:
        return ""
    return f"torchrun --standalone --nproc_per_node={nproc} --no-python"


def get_eval_input(wildcards):
    """Receiver, conversations and messages (ALFWorld also the games)."""
    receiver = RECEIVER_OF_VARIANT.get(wildcards.variant, "interlat")
    inputs = {
        "receiver": f"results/{RUN}/train/{wildcards.benchmark}/{receiver}",
        "conversations": f"results/{RUN}/convert/{wildcards.benchmark}",
        "latents": get_latents(wildcards),
    }
    if wildcards.benchmark == "alfworld":
        inputs["games"] = f"results/{RUN}/data/alfworld"
    if is_compressed(wildcards.variant):
        inputs["student"] = get_student_dir(wildcards)
    return inputs


def get_eval_param(name):
    """evaluate.<name> for MATH, evaluate.alfworld.<name> for ALFWorld."""

    def f(wildcards):
        section = config["evaluate"]
        return (
            section["alfworld"][name]
            if wildcards.benchmark == "alfworld"
            else section[name]
        )

    return f


def get_episode_options(wildcards, input):
    """ALFWorld episodes: the games folder and the step cap (nothing for MATH)."""
    if wildcards.benchmark != "alfworld":
        return ""
    steps = config["evaluate"]["alfworld"]["max_steps"]
    return f"--games {input.games} --max-steps {steps}"


def get_seeds(wildcards=None):
    return ",".join(str(s) for s in config["seeds"])


def get_evaluations(wildcards):
    return expand(
        "results/{run}/evaluate/{benchmark}/{variant}.parquet",
        run=RUN,
        benchmark=config["benchmarks"],
        variant=config["evaluate"]["variants"],
    )


def get_train_logs(wildcards):
    return expand(
        "results/{run}/train/{benchmark}/{receiver}.csv",
        run=RUN,
        benchmark=config["benchmarks"],
        receiver=get_receivers(),
    )


def get_final_outputs():
    return [f"results/{RUN}/tables"]


# Compression (docs/method.md section 4): students, Table 3's evaluations and latencies.
#: benchmarks whose evaluation takes a student's latents (the ALFWorld episode runner does not yet)
COMPRESS_BENCHMARKS = ("math",)


def is_compressed(variant):
    return re.fullmatch(r"compressed_\d+", variant) is not None


def get_compress_benchmarks():
    return [b for b in config["benchmarks"] if b in COMPRESS_BENCHMARKS]


def get_compress_variants():
    """Table 3: the full message, one student per K (compress.k_list), the untrained baselines."""
    section = config["compress"]
    variants = [f"compressed_{k}" for k in section["k_list"]] + section["baselines"]
    return ["interlat", *variants] if variants else []


def get_compress_input(wildcards):
    """The teacher (interlat receiver), the student's initial LM, conversations, full messages."""
    return {
        "teacher": f"results/{RUN}/train/{wildcards.benchmark}/interlat",
        "student": f"results/{RUN}/models/{config['compress']['student']}",
        "conversations": f"results/{RUN}/convert/{wildcards.benchmark}",
        "latents": get_latents(wildcards),
    }


def get_student_dir(wildcards):
    """The student of a compressed_<K> evaluation variant."""
    k = wildcards.variant.split("_")[1]
    return f"results/{RUN}/compress/{wildcards.benchmark}/K{k}"


def get_student_option(wildcards, input):
    return f"--student {input.student}" if "student" in input.keys() else ""


def get_compress_evaluations(wildcards):
    return expand(
        "results/{run}/evaluate/{benchmark}/{variant}.parquet",
        run=RUN,
        benchmark=get_compress_benchmarks(),
        variant=get_compress_variants(),
    )


def get_latency_tables(wildcards):
    """Per benchmark: the full message's file first, then one per K (a new K adds one job)."""
    if not get_compress_variants():
        return []
    return expand(
        "results/{run}/latency/{benchmark}/{message}.csv",
        run=RUN,
        benchmark=get_compress_benchmarks(),
        message=["full", *[f"K{k}" for k in config["compress"]["k_list"]]],
    )


def get_latency_input(wildcards):
    inputs = {
        "sender": f"results/{RUN}/models/sender",
        "receiver": f"results/{RUN}/train/{wildcards.benchmark}/interlat",
        "conversations": f"results/{RUN}/convert/{wildcards.benchmark}",
        "latents": get_latents(wildcards),
    }
    if wildcards.message != "full":
        inputs["student"] = (
            f"results/{RUN}/compress/{wildcards.benchmark}/{wildcards.message}"
        )
    return inputs


def get_latency_variants(wildcards):
    """The untrained baselines are timed with the full message; students in their own job."""
    baselines = config["compress"]["baselines"]
    if wildcards.message != "full" or not baselines:
        return ""
    return f"--variants {','.join(baselines)}"


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


write_run_config()
