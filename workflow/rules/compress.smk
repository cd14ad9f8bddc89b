"""Compression: students that emit K latents (one job per K), and the latency of every message.

REQUIRED INPUTS: results/<run>/train/<benchmark>/replicate<r>/interlat/ (the teacher),
    results/<run>/models/<compress.student>/ (the student's initial LM, e.g. the sender),
    results/<run>/convert/<benchmark>/, results/<run>/latents/<benchmark>/sender/<subject>/
OUTPUTS: results/<run>/compress/<benchmark>/replicate<r>/K<K>/ (student checkpoint + log.csv;
    seed compress.seed + r),
    results/<run>/latency/<benchmark>/{full,K<K>}.csv (seconds per message and to the receiver's
    first token, ALFWorld: first action; `full` times the
    sender's full message and the untrained baselines, `K<K>` the full message and that student;
    both on the first replicate)
Resumable training state: work/<run>/compress/<benchmark>/replicate<r>/K<K>/
Report: each latency CSV under "3. Compression" / <benchmark> (interlat/report_layout.py;
    caption workflow/report/latency.rst)
"""

from interlat import report_layout


rule compress:
    input:
        unpack(get_compress_input),
    output:
        directory("results/{run}/compress/{benchmark}/replicate{replicate}/K{K}"),
    log:
        "logs/{run}/compress/{benchmark}/replicate{replicate}/K{K}.log",
    benchmark:
        "benchmarks/{run}/compress/{benchmark}/replicate{replicate}/K{K}.tsv"
    wildcard_constraints:
        K=r"\d+",
    priority: chain_priority
    conda:
        "../envs/deepspeed.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=600,
    params:
        latents=lambda wildcards, input: repeat_option("--latents", input.latents),
        conversations=get_compress_conversations,
        work="work/{run}/compress/{benchmark}/replicate{replicate}/K{K}",
        epochs=lookup(dpath="compress/epochs", within=config),
        max_steps=lookup(dpath="compress/max_steps", within=config),
        launcher=get_compress_launcher,
        batch_size=lookup(dpath="compress/batch_size", within=config),
        gradient_accumulation=lookup(
            dpath="compress/gradient_accumulation", within=config
        ),
        engine=lookup(dpath="compress/engine", within=config),
        deepspeed_config=lookup(dpath="compress/deepspeed_config", within=config),
        lr=lookup(dpath="compress/lr", within=config),
        warmup_ratio=lookup(dpath="compress/warmup_ratio", within=config),
        weight_decay=lookup(dpath="compress/weight_decay", within=config),
        max_grad_norm=lookup(dpath="compress/max_grad_norm", within=config),
        eval_fraction=lookup(dpath="compress/eval_fraction", within=config),
        eval_every=lookup(dpath="compress/eval_every", within=config),
        patience=lookup(dpath="compress/patience", within=config),
        select=lookup(dpath="compress/select", within=config),
        kl_weight=lookup(dpath="compress/kl_weight", within=config),
        align_weight=lookup(dpath="compress/align_weight", within=config),
        temperature=lookup(dpath="compress/temperature", within=config),
        checkpointing=bool_flag(
            "gradient-checkpointing", config["compress"]["gradient_checkpointing"]
        ),
        checkpoint_every=lookup(dpath="compress/checkpoint_every", within=config),
        cache_reference=bool_flag(
            "cache-reference", config["compress"]["cache_reference"]
        ),
        seed=get_replicate_seed("compress"),
    shell:
        r"""
        {params.launcher} interlat --threads {threads} compress \
            --teacher {input.teacher:q} \
            --student {input.student:q} \
            {params.conversations} \
            {params.latents} \
            --K {wildcards.K} \
            --epochs {params.epochs} \
            --max-steps {params.max_steps} \
            --batch-size {params.batch_size} \
            --gradient-accumulation {params.gradient_accumulation} \
            --engine {params.engine} \
            --deepspeed-config {params.deepspeed_config:q} \
            --lr {params.lr} \
            --warmup-ratio {params.warmup_ratio} \
            --weight-decay {params.weight_decay} \
            --max-grad-norm {params.max_grad_norm} \
            --eval-fraction {params.eval_fraction} \
            --eval-every {params.eval_every} \
            --patience {params.patience} \
            --select {params.select} \
            --kl-weight {params.kl_weight} \
            --align-weight {params.align_weight} \
            --temperature {params.temperature} \
            {params.checkpointing} \
            --checkpoint-every {params.checkpoint_every} \
            {params.cache_reference} \
            --seed {params.seed} \
            --work-dir {params.work:q} \
            --out {output:q} \
            >{log:q} 2>&1
        """


rule latency:
    input:
        unpack(get_latency_input),
    output:
        report(
            "results/{run}/latency/{benchmark}/{message}.csv",
            caption="../report/latency.rst",
            category=report_layout.STAGES["compression"],
            subcategory=report_layout.benchmark_subcategory,
            labels=report_layout.latency_labels,
        ),
    log:
        "logs/{run}/latency/{benchmark}/{message}.log",
    benchmark:
        "benchmarks/{run}/latency/{benchmark}/{message}.tsv"
    wildcard_constraints:
        message=r"full|K\d+",
    priority: chain_priority
    conda:
        "../envs/interlat.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        latents=lambda wildcards, input: repeat_option("--latents", input.latents),
        student=lambda wildcards, input: repeat_option(
            "--student", input.get("student", [])
        ),
        variants=lambda wildcards: repeat_option(
            "--variants", get_latency_variants(wildcards)
        ),
        tasks=lookup(dpath="compress/latency/tasks", within=config),
        action_tokens=lookup(dpath="evaluate/alfworld/max_new_tokens", within=config),
        repeats=lookup(dpath="compress/latency/repeats", within=config),
        warmup=lookup(dpath="compress/latency/warmup", within=config),
        seed=lookup(dpath="compress/seed", within=config),
    shell:
        r"""
        interlat --threads {threads} latency \
            --sender {input.sender:q} \
            --receiver {input.receiver:q} \
            {params.student} \
            --conversations {input.conversations:q}/test.jsonl \
            {params.latents} \
            {params.variants} \
            --tasks {params.tasks} \
            --action-tokens {params.action_tokens} \
            --repeats {params.repeats} \
            --warmup {params.warmup} \
            --seed {params.seed} \
            --out {output:q} \
            >{log:q} 2>&1
        """
