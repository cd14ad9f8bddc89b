"""Wildcard constraints, input functions, targets and the shell-option helpers of all rule files.

No rules here (the linter flags rules and functions mixed in one file). The config is loaded
and checked by config.smk; the experiment design (variants, receivers) is `interlat.variants`.
"""

import re
import shlex

from interlat.launch import container_of, gpus_per_node, torchrun
from interlat.variants import COMPRESSED, RECEIVERS, receivers_of, variants_for
from interlat.variants import parse as parse_variant


wildcard_constraints:
    run=re.escape(RUN),
    benchmark="|".join(config["benchmarks"]),
    subject="[a-z_]+",
    model="tokenizer|sender|receiver|llama",
    receiver="|".join(RECEIVERS),
    variant=r"[A-Za-z0-9_.]+",
    replicate=r"\d+",


def repeat_option(flag, values):
    """`flag value` for each value (a single string counts as one; empty values are skipped),
    each value shell-quoted: `repeat_option("--data", input.data)`."""
    values = [values] if isinstance(values, str) else values
    return " ".join(
        f"{flag} {shlex.quote(str(v))}" for v in values if v not in (None, "")
    )


def bool_flag(name, value):
    """`--name` if value else `--no-name` (click's boolean flag pairs)."""
    return f"--{name}" if value else f"--no-{name}"


def get_container():
    """The image every rule runs in (config key `container`, pinned by digest or a local .sif);
    none when the key is empty (the default until `make image` has built one)."""
    image = config["container"]
    if not image and uses_apptainer():
        raise WorkflowError(
            "config container: empty, so --sdm apptainer has no image: build the CPU image with "
            "`make image` and add the --config container=... it prints (or name a published image)"
        )
    return image or None


def get_subjects(wildcards):
    """A benchmark's shard sets: MATH subjects or ALFWorld task types."""
    if wildcards.benchmark == "alfworld":
        return config["data"]["alfworld"]["task_types"]
    return config["data"][wildcards.benchmark]["subjects"]


def get_alfworld_task_types(wildcards):
    return ",".join(config["data"]["alfworld"]["task_types"])


def tokenizer_dir(vocab):
    """The tokenizer folder of a vocabulary: the toy one (trained on the data) or a family's."""
    name = "tokenizer" if vocab == "toy" else f"tokenizer_{vocab}"
    return f"results/{RUN}/models/{name}"


def tokenizer_vocab(name):
    """The vocabulary of a tokenizer folder name (inverse of tokenizer_dir)."""
    return name.removeprefix("tokenizer_") if name != "tokenizer" else "toy"


def get_tokenizer_input(wildcards):
    """The toy tokenizer is trained on every benchmark's data; a family's needs nothing."""
    if tokenizer_vocab(wildcards.tokenizer) == "toy":
        return {"data": get_data_dirs()}
    return {}


def get_data_dirs(wildcards=None):
    """Every benchmark's data folder (tokenizer corpus, sender pretraining pairs)."""
    return expand(
        "results/{run}/data/{benchmark}", run=RUN, benchmark=config["benchmarks"]
    )


def get_latents(wildcards):
    """All subjects' shard folders of a benchmark."""
    return expand(
        "results/{run}/latents/{benchmark}/sender/{subject}",
        run=RUN,
        benchmark=wildcards.benchmark,
        subject=get_subjects(wildcards),
    )


def get_receivers(benchmark):
    """Receivers the variants evaluated on `benchmark` need (always the interlat receiver)."""
    return receivers_of(variants_for(config, benchmark))


def hub_snapshot(kind, repo_id, revision):
    """The shared download folder of a pinned repository (rule `download`)."""
    return f"resources/hub/{kind}/{repo_id}/{revision}"


def get_data_input(wildcards):
    """hendrycks MATH at a pinned revision: its shared download (else nothing)."""
    section = config["data"][wildcards.benchmark]
    if section["source"] != "hf" or not section["revision"]:
        return {}
    return {
        "snapshot": hub_snapshot("datasets", section["dataset_id"], section["revision"])
    }


def get_dataset_id(wildcards, input):
    """The downloaded copy when pinned (datasets reads the folder offline), else the hub id."""
    return input.get("snapshot", config["data"][wildcards.benchmark]["dataset_id"])


def get_model_input(wildcards):
    """Tiny models need the tokenizer (and the sender its pretraining data); hub models their
    shared download (resources/hub/models/<hf_id>/<revision>)."""
    spec = config["models"][wildcards.model]
    if spec["hf_id"]:
        return {"snapshot": hub_snapshot("models", spec["hf_id"], spec["revision"])}
    inputs = {"tokenizer": tokenizer_dir(spec["vocab"])}
    if spec["pretrain_steps"] > 0:
        inputs["data"] = get_data_dirs()
    return inputs


def get_receiver_base(receiver):
    """The model a receiver starts from: its own family's, or config `train.receiver_base`."""
    return RECEIVERS[receiver][1] or config["train"]["receiver_base"]


def get_train_input(wildcards):
    mode = RECEIVERS[wildcards.receiver][0]
    base = get_receiver_base(wildcards.receiver)
    inputs = {
        "base": f"results/{RUN}/models/{base}",
        "conversations": f"results/{RUN}/convert/{wildcards.benchmark}",
    }
    if mode == "interlat":
        inputs["latents"] = get_latents(wildcards)
    return inputs


def get_train_mode(wildcards):
    return RECEIVERS[wildcards.receiver][0]


def chain_priority(wildcards):
    """10 for jobs on Table 3's chain (the compressed benchmarks' messages, interlat receiver,
    students, latency), else 0: on 2 cores they otherwise wait behind evaluations for a free
    core (docs/benchmarks.md P5)."""
    benchmark = wildcards.get("benchmark")
    if benchmark is not None and benchmark not in config["compress"]["benchmarks"]:
        return 0
    return 0 if wildcards.get("receiver", "interlat") != "interlat" else 10


def get_train_param(name):
    """train.<name>, or train.alfworld.<name> for ALFWorld receivers when set."""

    def f(wildcards):
        own = config["train"].get(wildcards.benchmark, {}).get(name)
        return config["train"][name] if own is None else own

    return f


def uses_apptainer():
    return any(
        m.name == "APPTAINER" for m in workflow.deployment_settings.deployment_method
    )


def train_nodes():
    """Nodes a train job spans: the profile's `set-resources: train: nodes` (default 1)."""
    train = workflow.resource_settings.overwrite_resources.get("train")
    nodes = train.get("nodes").value if train is not None else None
    return int(nodes or 1)


def get_train_container(wildcards):
    """The image, except for a multi-node job: its srun runs on the host and enters the image
    on every node (interlat.launch)."""
    return container_of(train_nodes(), get_container())


def get_launcher(wildcards, resources):
    """torchrun for multi-process engines (process count from the rule's resources); DeepSpeed
    always runs under torchrun (without its environment it looks for MPI). Several nodes
    (resources nodes, per-node gres gpu:G): srun starts one torchrun agent per node, which meet
    by c10d rendezvous on the allocation's first node (interlat.launch)."""
    nodes = int(resources.get("nodes", 1) or 1)
    nproc = max(gpus_per_node(resources), int(config["train"]["nproc"]))
    engine = config["train"]["engine"]
    if engine == "single" or (engine == "ddp" and nproc <= 1 and nodes <= 1):
        return ""
    image = get_container() if nodes > 1 and uses_apptainer() else None
    args = workflow.deployment_settings.apptainer_args if image else ""
    return torchrun(nodes=nodes, nproc_per_node=nproc, image=image, apptainer_args=args)


def get_compress_launcher(wildcards, resources):
    """torchrun over the job's GPUs (at least one process) for the DeepSpeed student."""
    if config["compress"]["engine"] != "deepspeed":
        return ""
    nproc = max(int(resources.get("gpu", 0)), 1)
    return f"torchrun --standalone --nproc_per_node={nproc} --no-python"


def get_eval_input(wildcards):
    """Receiver, conversations and messages (ALFWorld also the games)."""
    variant = parse_variant(wildcards.variant)
    inputs = {
        "receiver": f"{replicate_dir('train', wildcards)}/{variant.receiver}",
        "conversations": f"results/{RUN}/convert/{wildcards.benchmark}",
        "latents": get_latents(wildcards),
    }
    if wildcards.benchmark == "alfworld":
        inputs["games"] = f"results/{RUN}/data/alfworld"
    if variant.kind == COMPRESSED:
        inputs["student"] = f"{replicate_dir('compress', wildcards)}/K{variant.k}"
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


def get_max_steps(wildcards):
    """ALFWorld episodes' step cap (no value for MATH)."""
    if wildcards.benchmark != "alfworld":
        return []
    return [config["evaluate"]["alfworld"]["max_steps"]]


def get_seeds(wildcards=None):
    return ",".join(str(s) for s in config["seeds"])


def replicate_dir(stage, wildcards, replicate=None):
    """results/<run>/<stage>/<benchmark>/replicate<r>: a training replicate's folder of a stage."""
    r = wildcards.replicate if replicate is None else replicate
    return f"results/{RUN}/{stage}/{wildcards.benchmark}/replicate{r}"


def get_replicate_seed(section):
    """<section>.seed + r: replicate r's training seed (receivers: train, students: compress)."""

    def f(wildcards):
        return int(config[section]["seed"]) + int(wildcards.replicate)

    return f


def get_evaluations(wildcards):
    return [
        path
        for benchmark in config["benchmarks"]
        for path in expand(
            "results/{run}/evaluate/{benchmark}/replicate{replicate}/{variant}.parquet",
            run=RUN,
            benchmark=benchmark,
            replicate=config["replicates"],
            variant=variants_for(config, benchmark),
        )
    ]


def get_train_logs(wildcards):
    return [
        path
        for benchmark in config["benchmarks"]
        for path in expand(
            "results/{run}/train/{benchmark}/replicate{replicate}/{receiver}.csv",
            run=RUN,
            benchmark=benchmark,
            replicate=config["replicates"],
            receiver=get_receivers(benchmark),
        )
    ]


def get_final_outputs():
    return [f"results/{RUN}/tables"]


# Compression (docs/method.md section 4): students, Table 3's evaluations and latencies.
def get_compress_benchmarks():
    """Benchmarks with a Table 3 (compress.benchmarks; the paper's is ALFWorld)."""
    return [b for b in config["benchmarks"] if b in config["compress"]["benchmarks"]]


def get_compress_variants():
    """Table 3: the full message, one student per K (compress.k_list), the untrained baselines."""
    section = config["compress"]
    variants = [f"compressed_{k}" for k in section["k_list"]] + section["baselines"]
    return ["interlat", *variants] if variants else []


def get_compress_input(wildcards):
    """The teacher (interlat receiver), the student's initial LM (a model folder, or the teacher's
    own LM with compress.student: teacher), conversations, full messages."""
    teacher = f"{replicate_dir('train', wildcards)}/interlat"
    start = config["compress"]["student"]
    return {
        "teacher": teacher,
        "student": teacher if start == "teacher" else f"results/{RUN}/models/{start}",
        "conversations": f"results/{RUN}/convert/{wildcards.benchmark}",
        "latents": get_latents(wildcards),
    }


def get_compress_conversations(wildcards, input):
    """`--conversations` for the student: train.jsonl, and compress.jsonl when the benchmark has
    problems for the student alone (data.<benchmark>.n_compress)."""
    names = ["train.jsonl"]
    if config["data"][wildcards.benchmark].get("n_compress", 0):
        names.append("compress.jsonl")
    return repeat_option(
        "--conversations", [f"{input.conversations}/{name}" for name in names]
    )


def get_compress_evaluations(wildcards):
    return expand(
        "results/{run}/evaluate/{benchmark}/replicate{replicate}/{variant}.parquet",
        run=RUN,
        benchmark=get_compress_benchmarks(),
        replicate=config["replicates"],
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
    """Timed on the first replicate's receiver and students (speed does not depend on the seed)."""
    first = config["replicates"][0]
    inputs = {
        "sender": f"results/{RUN}/models/sender",
        "receiver": f"{replicate_dir('train', wildcards, first)}/interlat",
        "conversations": f"results/{RUN}/convert/{wildcards.benchmark}",
        "latents": get_latents(wildcards),
    }
    if wildcards.message != "full":
        inputs["student"] = (
            f"{replicate_dir('compress', wildcards, first)}/{wildcards.message}"
        )
    return inputs


def get_latency_variants(wildcards):
    """The untrained baselines are timed with the full message; students in their own job."""
    baselines = config["compress"]["baselines"]
    if wildcards.message != "full" or not baselines:
        return []
    return [",".join(baselines)]
