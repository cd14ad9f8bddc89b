"""Benchmarks: generated MATH-format problems, or hendrycks MATH (download or local copy).

REQUIRED INPUTS: none (config `data.<benchmark>`).
OUTPUTS: results/<run>/data/<benchmark>/{train,test}.jsonl
"""


rule data:
    output:
        directory("results/{run}/data/{benchmark}"),
    log:
        "logs/{run}/data/{benchmark}.log",
    benchmark:
        "benchmarks/{run}/data/{benchmark}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        source=lambda wildcards: config["data"][wildcards.benchmark]["source"],
        dataset_id=lambda wildcards: config["data"][wildcards.benchmark]["dataset_id"],
        subjects=lambda wildcards: ",".join(get_subjects(wildcards)),
        n_train=lambda wildcards: config["data"][wildcards.benchmark]["n_train"],
        n_test=lambda wildcards: config["data"][wildcards.benchmark]["n_test"],
        max_test=lambda wildcards: config["data"][wildcards.benchmark]["max_test"],
        seed=lambda wildcards: config["data"][wildcards.benchmark]["seed"],
    shell:
        r"""
        interlat data \
            --benchmark {wildcards.benchmark} \
            --source {params.source:q} \
            --dataset-id {params.dataset_id:q} \
            --subjects {params.subjects:q} \
            --n-train {params.n_train} \
            --n-test {params.n_test} \
            --max-test {params.max_test} \
            --seed {params.seed} \
            --out {output:q} \
            >{log:q} 2>&1
        """
