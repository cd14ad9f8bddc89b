"""Receiver training: interlat (latents), cot_full (plan text), no_cot (no plan), cross_family.

REQUIRED INPUTS: results/<run>/models/{receiver,llama}/, results/<run>/convert/<benchmark>/,
    results/<run>/latents/<benchmark>/sender/<subject>/
OUTPUTS: results/<run>/train/<benchmark>/replicate<r>/<receiver>/ (checkpoint), <receiver>.csv
    (loss log); replicate r trains with seed train.seed + r
Resumable training state: work/<run>/train/<benchmark>/replicate<r>/<receiver>/
Report: each <receiver>.csv under "2. Training" / <benchmark> (interlat/report_layout.py;
    caption workflow/report/train.rst)
"""

from interlat import report_layout


rule train:
    input:
        unpack(get_train_input),
    output:
        ckpt=directory(
            "results/{run}/train/{benchmark}/replicate{replicate}/{receiver}"
        ),
        log_csv=report(
            "results/{run}/train/{benchmark}/replicate{replicate}/{receiver}.csv",
            caption="../report/train.rst",
            category=report_layout.STAGES["training"],
            subcategory=report_layout.benchmark_subcategory,
            labels=report_layout.train_labels,
        ),
    log:
        "logs/{run}/train/{benchmark}/replicate{replicate}/{receiver}.log",
    benchmark:
        "benchmarks/{run}/train/{benchmark}/replicate{replicate}/{receiver}.tsv"
    priority: chain_priority
    conda:
        "../envs/deepspeed.yaml"
    # one node: the image; several: none (the launcher enters it on every node)
    container:
        get_train_container
    threads: 1
    resources:
        mem_mb=8000,
        runtime=600,
    params:
        launcher=get_launcher,
        mode=get_train_mode,
        latents=lambda wildcards, input: repeat_option(
            "--latents", input.get("latents", [])
        ),
        work="work/{run}/train/{benchmark}/replicate{replicate}/{receiver}",
        steps=get_train_param("steps"),
        epochs=lookup(dpath="train/epochs", within=config),
        batch_size=get_train_param("batch_size"),
        gradient_accumulation=lookup(dpath="train/gradient_accumulation", within=config),
        lr=get_train_param("lr"),
        warmup_ratio=lookup(dpath="train/warmup_ratio", within=config),
        weight_decay=lookup(dpath="train/weight_decay", within=config),
        max_grad_norm=lookup(dpath="train/max_grad_norm", within=config),
        prepended_length=lookup(dpath="train/prepended_length", within=config),
        margin=lookup(dpath="train/margin", within=config),
        contrast=bool_flag("contrast", config["train"]["contrast"]),
        curriculum=lookup(dpath="train/curriculum", within=config),
        ramp_start=lookup(dpath="train/ramp_start", within=config),
        engine=lookup(dpath="train/engine", within=config),
        deepspeed_config=lookup(dpath="train/deepspeed_config", within=config),
        checkpointing=bool_flag(
            "gradient-checkpointing", config["train"]["gradient_checkpointing"]
        ),
        checkpoint_every=lookup(dpath="train/checkpoint_every", within=config),
        seed=get_replicate_seed("train"),
    shell:
        r"""
        {params.launcher} interlat --threads {threads} train \
            --base {input.base:q} \
            --conversations {input.conversations:q}/train.jsonl \
            {params.latents} \
            --mode {params.mode} \
            --steps {params.steps} \
            --epochs {params.epochs} \
            --batch-size {params.batch_size} \
            --gradient-accumulation {params.gradient_accumulation} \
            --lr {params.lr} \
            --warmup-ratio {params.warmup_ratio} \
            --weight-decay {params.weight_decay} \
            --max-grad-norm {params.max_grad_norm} \
            --prepended-length {params.prepended_length} \
            --margin {params.margin} \
            {params.contrast} \
            --curriculum {params.curriculum} \
            --ramp-start {params.ramp_start} \
            --engine {params.engine} \
            --deepspeed-config {params.deepspeed_config:q} \
            {params.checkpointing} \
            --checkpoint-every {params.checkpoint_every} \
            --seed {params.seed} \
            --work-dir {params.work:q} \
            --log-csv {output.log_csv:q} \
            --out {output.ckpt:q} \
            >{log:q} 2>&1
        """
