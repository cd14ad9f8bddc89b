"""Software versions of the run (nf-core versions.yml style), shown in the report.

REQUIRED INPUTS: none (the environment the job runs in)
OUTPUTS: results/<run>/versions.yml
"""


rule versions:
    output:
        report(
            "results/{run}/versions.yml",
            caption="../report/versions.rst",
            category="5. Run",
            labels={"file": "software versions"},
        ),
    log:
        "logs/{run}/versions.log",
    benchmark:
        "benchmarks/{run}/versions.tsv"
    conda:
        "../envs/interlat.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        r"""
        interlat versions \
            --out {output:q} \
            >{log:q} 2>&1
        """
