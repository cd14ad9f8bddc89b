"""Latent collection: the sender's plans and last-layer states, one shard set per subject.

REQUIRED INPUTS: results/<run>/models/sender/, results/<run>/data/<benchmark>/
OUTPUTS: results/<run>/latents/<benchmark>/sender/<subject>/ (Parquet parts + manifest.json)
Resumable parts in progress: work/<run>/collect/<benchmark>/<subject>/
"""


rule collect:
    input:
        sender="results/{run}/models/sender",
        data="results/{run}/data/{benchmark}",
    output:
        directory("results/{run}/latents/{benchmark}/sender/{subject}"),
    log:
        "logs/{run}/collect/{benchmark}/{subject}.log",
    benchmark:
        "benchmarks/{run}/collect/{benchmark}/{subject}.tsv"
    priority: chain_priority
    conda:
        "../envs/interlat.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        work="work/{run}/collect/{benchmark}/{subject}",
        sender_id=lookup(dpath="models/sender/id", within=config),
        batch_size=lookup(dpath="collect/batch_size", within=config),
        temperature=lookup(dpath="collect/temperature/{benchmark}", within=config),
        top_p=lookup(dpath="collect/top_p", within=config),
        top_k=lookup(dpath="collect/top_k", within=config),
        max_new_tokens=lookup(dpath="collect/max_new_tokens", within=config),
        dtype=lookup(dpath="collect/dtype", within=config),
        seed=lookup(dpath="collect/seed", within=config),
    shell:
        r"""
        interlat --threads {threads} collect \
            --sender {input.sender:q} \
            --sender-id {params.sender_id:q} \
            --data {input.data:q} \
            --benchmark {wildcards.benchmark} \
            --subject {wildcards.subject} \
            --batch-size {params.batch_size} \
            --temperature {params.temperature} \
            --top-p {params.top_p} \
            --top-k {params.top_k} \
            --max-new-tokens {params.max_new_tokens} \
            --dtype {params.dtype} \
            --seed {params.seed} \
            --work-dir {params.work:q} \
            --out {output:q} \
            >{log:q} 2>&1
        """
