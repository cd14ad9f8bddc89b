"""Benchmarks: generated MATH-format problems or hendrycks MATH; ALFWorld games (generated or official).

REQUIRED INPUTS: none (config `data.<benchmark>`); MATH source hf with a pinned revision:
    resources/hub/datasets/<dataset_id>/<revision>/ (rule `download`)
OUTPUTS: results/<run>/data/math/{train,test,compress}.jsonl (compress: data.math.n_compress),
    results/<run>/data/alfworld/{train,test}.jsonl + json_2.1.1/ (the games, official layout)

Both rules run on the submitting host (localrules): they download (hendrycks MATH, the ALFWorld
release), and compute nodes often have no internet.
"""


localrules:
    data,
    data_alfworld,


rule data:
    input:
        unpack(get_data_input),
    output:
        directory("results/{run}/data/{benchmark}"),
    log:
        "logs/{run}/data/{benchmark}.log",
    benchmark:
        "benchmarks/{run}/data/{benchmark}.tsv"
    wildcard_constraints:
        benchmark="math",
    conda:
        "../envs/alfworld.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        source=lookup(dpath="data/{benchmark}/source", within=config),
        dataset_id=get_dataset_id,
        subjects=lambda wildcards: ",".join(get_subjects(wildcards)),
        n_train=lookup(dpath="data/{benchmark}/n_train", within=config),
        n_test=lookup(dpath="data/{benchmark}/n_test", within=config),
        n_compress=lookup(dpath="data/{benchmark}/n_compress", within=config),
        max_test=lookup(dpath="data/{benchmark}/max_test", within=config),
        seed=lookup(dpath="data/{benchmark}/seed", within=config),
    shell:
        r"""
        interlat data \
            --benchmark {wildcards.benchmark} \
            --source {params.source:q} \
            --dataset-id {params.dataset_id:q} \
            --subjects {params.subjects:q} \
            --n-train {params.n_train} \
            --n-test {params.n_test} \
            --n-compress {params.n_compress} \
            --max-test {params.max_test} \
            --seed {params.seed} \
            --out {output:q} \
            >{log:q} 2>&1
        """


rule data_alfworld:
    output:
        directory("results/{run}/data/alfworld"),
    log:
        "logs/{run}/data/alfworld.log",
    benchmark:
        "benchmarks/{run}/data/alfworld.tsv"
    conda:
        "../envs/alfworld.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        source=lookup(dpath="data/alfworld/source", within=config),
        alfworld_data=lookup(dpath="data/alfworld/alfworld_data", within=config),
        task_types=get_alfworld_task_types,
        n_train=lookup(dpath="data/alfworld/n_train", within=config),
        n_valid_seen=lookup(dpath="data/alfworld/n_valid_seen", within=config),
        n_valid_unseen=lookup(dpath="data/alfworld/n_valid_unseen", within=config),
        max_train=lookup(dpath="data/alfworld/max_train", within=config),
        max_test=lookup(dpath="data/alfworld/max_test", within=config),
        max_steps=lookup(dpath="data/alfworld/max_steps", within=config),
        expert=lookup(dpath="data/alfworld/expert", within=config),
        renamed_copies=lookup(dpath="data/alfworld/renamed_copies", within=config),
        seed=lookup(dpath="data/alfworld/seed", within=config),
    shell:
        r"""
        interlat data \
            --benchmark alfworld \
            --source {params.source:q} \
            --alfworld-data {params.alfworld_data:q} \
            --task-types {params.task_types:q} \
            --n-train {params.n_train} \
            --n-valid-seen {params.n_valid_seen} \
            --n-valid-unseen {params.n_valid_unseen} \
            --max-train {params.max_train} \
            --max-test {params.max_test} \
            --max-steps {params.max_steps} \
            --expert {params.expert} \
            --renamed-copies {params.renamed_copies} \
            --seed {params.seed} \
            --workers {threads} \
            --out {output:q} \
            >{log:q} 2>&1
        """
