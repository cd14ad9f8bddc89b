"""Evaluation: one job per message variant, every configured seed.

MATH: answers graded symbolically. ALFWorld: episodes in the text environment, the receiver
generating once per step for all unfinished episodes.

REQUIRED INPUTS: results/<run>/train/<benchmark>/replicate<r>/<receiver>/, results/<run>/convert/<benchmark>/,
    results/<run>/latents/<benchmark>/sender/<subject>/, ALFWorld: results/<run>/data/alfworld/,
    compressed_<K>: results/<run>/compress/<benchmark>/replicate<r>/K<K>/
OUTPUTS: results/<run>/evaluate/<benchmark>/replicate<r>/<variant>.parquet (per-example or
    per-episode records; column train_seed names the replicate)
Resumable chunks: work/<run>/evaluate/<benchmark>/replicate<r>/<variant>/
"""


rule evaluate:
    input:
        unpack(get_eval_input),
    output:
        "results/{run}/evaluate/{benchmark}/replicate{replicate}/{variant}.parquet",
    log:
        "logs/{run}/evaluate/{benchmark}/replicate{replicate}/{variant}.log",
    benchmark:
        "benchmarks/{run}/evaluate/{benchmark}/replicate{replicate}/{variant}.tsv"
    conda:
        "../envs/alfworld.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        latents=lambda wildcards, input: repeat_option("--latents", input.latents),
        student=lambda wildcards, input: repeat_option(
            "--student", input.get("student", [])
        ),
        work="work/{run}/evaluate/{benchmark}/replicate{replicate}/{variant}",
        games=lambda wildcards, input: repeat_option("--games", input.get("games", [])),
        max_steps=lambda wildcards: repeat_option(
            "--max-steps", get_max_steps(wildcards)
        ),
        seeds=get_seeds,
        temperature=get_eval_param("temperature"),
        max_new_tokens=get_eval_param("max_new_tokens"),
        batch_size=lookup(dpath="evaluate/batch_size", within=config),
    shell:
        r"""
        interlat --threads {threads} evaluate \
            --benchmark {wildcards.benchmark} \
            --receiver {input.receiver:q} \
            --conversations {input.conversations:q}/test.jsonl \
            {params.latents} \
            {params.student} \
            {params.games} \
            {params.max_steps} \
            --variant {wildcards.variant} \
            --seeds {params.seeds} \
            --temperature {params.temperature} \
            --max-new-tokens {params.max_new_tokens} \
            --batch-size {params.batch_size} \
            --work-dir {params.work:q} \
            --out {output:q} \
            >{log:q} 2>&1
        """
