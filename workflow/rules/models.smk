"""Models: the embedded tokenizer, tiny Qwen2/LLaMA models (the sender pretrained), or downloads.

REQUIRED INPUTS: results/<run>/data/<benchmark>/, every benchmark (tokenizer corpus, sender
    pretraining pairs); downloads: config models.<model>.{hf_id,revision}, hub_source
OUTPUTS: results/<run>/models/tokenizer/ (toy; tokenizer_<vocab>/ for a real family's),
    results/<run>/models/{sender,receiver,llama}/,
    resources/hub/{models,datasets}/<repo_id>/<revision>/ (downloads, shared by every run)

`download` and `models` run on the submitting host (localrules): a download needs the internet,
which compute nodes often lack, and `models` of a downloaded model only links the shared copy.
"""


localrules:
    download,
    models,


rule download:
    output:
        directory("resources/hub/{kind}/{repo_id}/{revision}"),
    log:
        "logs/download/{kind}/{repo_id}/{revision}.log",
    benchmark:
        "benchmarks/download/{kind}/{repo_id}/{revision}.tsv"
    wildcard_constraints:
        kind="models|datasets",
        revision="[^/]+",
    conda:
        "../envs/interlat.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=240,
    params:
        repo_type=lambda wildcards: wildcards.kind.removesuffix("s"),
        source=lookup(dpath="hub_source", within=config),
    shell:
        r"""
        interlat download \
            --repo-id {wildcards.repo_id:q} \
            --revision {wildcards.revision:q} \
            --repo-type {params.repo_type} \
            --source {params.source:q} \
            --out {output:q} \
            >{log:q} 2>&1
        """


rule tokenizer:
    input:
        unpack(get_tokenizer_input),
    output:
        directory("results/{run}/models/{tokenizer}"),
    log:
        "logs/{run}/models/{tokenizer}.log",
    benchmark:
        "benchmarks/{run}/models/{tokenizer}.tsv"
    wildcard_constraints:
        tokenizer="tokenizer|tokenizer_qwen2\.5|tokenizer_llama3\.1",
    conda:
        "../envs/interlat.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        data=lambda wildcards, input: repeat_option("--data", input.get("data", [])),
        vocab=lambda wildcards: tokenizer_vocab(wildcards.tokenizer),
    shell:
        r"""
        interlat tokenizer \
            {params.data} \
            --vocab {params.vocab} \
            --out {output:q} \
            >{log:q} 2>&1
        """


rule models:
    input:
        unpack(get_model_input),
    output:
        directory("results/{run}/models/{model}"),
    log:
        "logs/{run}/models/{model}.log",
    benchmark:
        "benchmarks/{run}/models/{model}.tsv"
    wildcard_constraints:
        model="sender|receiver|llama",
    # The sender's pretraining is the one job on the critical path with nothing beside it
    # (everything else waits for the sender): two threads cut it from ~3.2 to ~2 minutes.
    conda:
        "../envs/interlat.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        snapshot=lambda wildcards, input: repeat_option(
            "--snapshot", input.get("snapshot", [])
        ),
        tokenizer=lambda wildcards, input: repeat_option(
            "--tokenizer", input.get("tokenizer", [])
        ),
        pretrain_data=lambda wildcards, input: repeat_option(
            "--pretrain-data", input.get("data", [])
        ),
        arch=lookup(dpath="models/{model}/arch", within=config),
        hidden_size=lookup(dpath="models/{model}/hidden_size", within=config),
        layers=lookup(dpath="models/{model}/layers", within=config),
        heads=lookup(dpath="models/{model}/heads", within=config),
        kv_heads=lookup(dpath="models/{model}/kv_heads", within=config),
        intermediate_size=lookup(
            dpath="models/{model}/intermediate_size", within=config
        ),
        max_positions=lookup(dpath="models/{model}/max_positions", within=config),
        pretrain_steps=lookup(dpath="models/{model}/pretrain_steps", within=config),
        batch_size=lookup(dpath="models/{model}/batch_size", within=config),
        lr=lookup(dpath="models/{model}/lr", within=config),
        seed=lookup(dpath="models/{model}/seed", within=config),
        shape=lambda wildcards: repeat_option(
            "--shape", config["models"][wildcards.model].get("shape", "")
        ),
        width_divisor=lookup(dpath="models/{model}/width_divisor", within=config),
    shell:
        r"""
        interlat --threads {threads} models \
            {params.snapshot} \
            {params.tokenizer} \
            {params.pretrain_data} \
            --arch {params.arch} \
            --hidden-size {params.hidden_size} \
            --layers {params.layers} \
            --heads {params.heads} \
            --kv-heads {params.kv_heads} \
            --intermediate-size {params.intermediate_size} \
            --max-positions {params.max_positions} \
            --pretrain-steps {params.pretrain_steps} \
            --batch-size {params.batch_size} \
            --lr {params.lr} \
            --seed {params.seed} \
            {params.shape} \
            --width-divisor {params.width_divisor} \
            --out {output:q} \
            >{log:q} 2>&1
        """
