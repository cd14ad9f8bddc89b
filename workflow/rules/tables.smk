"""Tables and figures: the paper's layouts with bootstrap intervals, for `snakemake --report`.

REQUIRED INPUTS: results/<run>/evaluate/<benchmark>/<variant>.parquet,
    results/<run>/train/<benchmark>/<receiver>.csv, Table 3: results/<run>/latency/<benchmark>/*.csv
OUTPUTS: results/<run>/tables/ (MATH: table2_math.{csv,md}, math_subjects.csv, accuracy.png;
    ALFWorld: table1_alfworld.{csv,md}, alfworld_task_types.csv, alfworld_success.png; training.png;
    compression: table3_compression.{csv,md}, compression.png)
"""

from interlat import report_layout


rule tables:
    input:
        evaluations=get_evaluations,
        train_logs=get_train_logs,
        compress_evaluations=get_compress_evaluations,
        latency=get_latency_tables,
    output:
        report(
            directory("results/{run}/tables"),
            patterns=["{name}.{ext}"],
            caption="../report/tables.rst",
            category=report_layout.category,
            subcategory=report_layout.subcategory,
            labels=report_layout.labels,
        ),
    log:
        "logs/{run}/tables.log",
    benchmark:
        "benchmarks/{run}/tables.tsv"
    conda:
        "../envs/interlat.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        evaluations=lambda wildcards, input: repeat_option(
            "--evaluations", input.evaluations
        ),
        train_logs=lambda wildcards, input: repeat_option(
            "--train-logs", input.train_logs
        ),
        compress_evaluations=lambda wildcards, input: repeat_option(
            "--compress-evaluations", input.compress_evaluations
        ),
        latency=lambda wildcards, input: repeat_option("--latency", input.latency),
    shell:
        r"""
        interlat tables \
            {params.evaluations} \
            {params.train_logs} \
            {params.compress_evaluations} \
            {params.latency} \
            --out {output:q} \
            >{log:q} 2>&1
        """
