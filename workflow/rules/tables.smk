"""Tables and figures: the paper's layouts with bootstrap intervals, for `snakemake --report`.

REQUIRED INPUTS: results/<run>/evaluate/<benchmark>/<variant>.parquet,
    results/<run>/train/<benchmark>/<receiver>.csv
OUTPUTS: results/<run>/tables/ (table2_math.{csv,md}, math_subjects.csv, accuracy.png, training.png)
"""


rule tables:
    input:
        evaluations=get_evaluations,
        train_logs=get_train_logs,
    output:
        report(
            directory("results/{run}/tables"),
            patterns=["{name}.{ext}"],
            caption="../report/tables.rst",
            category="3. Evaluation",
        ),
    log:
        "logs/{run}/tables.log",
    benchmark:
        "benchmarks/{run}/tables.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        evaluations=lambda wildcards, input: " ".join(
            f"--evaluations {p}" for p in input.evaluations
        ),
        train_logs=lambda wildcards, input: " ".join(
            f"--train-logs {p}" for p in input.train_logs
        ),
    shell:
        r"""
        interlat tables \
            {params.evaluations} \
            {params.train_logs} \
            --out {output:q} \
            >{log:q} 2>&1
        """
