"""Conversion: join messages with ground truth by task_id into conversations (polars).

REQUIRED INPUTS: results/<run>/latents/<benchmark>/sender/<subject>/ (all subjects),
    results/<run>/data/<benchmark>/
OUTPUTS: results/<run>/convert/<benchmark>/{train,test}.jsonl, rejects.csv
    (MATH: one solution turn; ALFWorld: the expert's Thought/Action and Observation turns)
"""


rule convert:
    input:
        latents=get_latents,
        data="results/{run}/data/{benchmark}",
    output:
        directory("results/{run}/convert/{benchmark}"),
    log:
        "logs/{run}/convert/{benchmark}.log",
    benchmark:
        "benchmarks/{run}/convert/{benchmark}.tsv"
    priority: chain_priority
    conda:
        "../envs/interlat.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        latents=lambda wildcards, input: repeat_option("--latents", input.latents),
        strict=bool_flag("strict", config["convert"]["strict"]),
    shell:
        r"""
        interlat convert \
            {params.latents} \
            --data {input.data:q} \
            --benchmark {wildcards.benchmark} \
            {params.strict} \
            --out {output:q} \
            >{log:q} 2>&1
        """
