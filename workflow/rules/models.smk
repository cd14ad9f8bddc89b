"""Models: the embedded tokenizer, tiny Qwen2/LLaMA models (the sender pretrained), or downloads.

REQUIRED INPUTS: results/<run>/data/<benchmark>/, every benchmark (tokenizer corpus, sender
    pretraining pairs)
OUTPUTS: results/<run>/models/tokenizer/, results/<run>/models/{sender,receiver,llama}/
"""


rule tokenizer:
    input:
        data=get_data_dirs(),
    output:
        directory("results/{run}/models/tokenizer"),
    log:
        "logs/{run}/models/tokenizer.log",
    benchmark:
        "benchmarks/{run}/models/tokenizer.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        data=get_data_options,
    shell:
        r"""
        interlat tokenizer \
            {params.data} \
            --out {output:q} \
            >{log:q} 2>&1
        """


rule models:
    input:
        unpack(get_model_input),
    output:
        directory("results/{run}/models/{model}"),
    log:
        "logs/{run}/models/{model}.log",
    benchmark:
        "benchmarks/{run}/models/{model}.tsv"
    wildcard_constraints:
        model="sender|receiver|llama",
    # The sender's pretraining is the one job on the critical path with nothing beside it
    # (everything else waits for the sender): two threads cut it from ~3.2 to ~2 minutes.
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        hf=get_hf_option,
        tokenizer=get_tokenizer_option,
        pretrain_data=get_pretrain_data_option,
        arch=get_model_param("arch"),
        hidden_size=get_model_param("hidden_size"),
        layers=get_model_param("layers"),
        heads=get_model_param("heads"),
        kv_heads=get_model_param("kv_heads"),
        intermediate_size=get_model_param("intermediate_size"),
        max_positions=get_model_param("max_positions"),
        pretrain_steps=get_model_param("pretrain_steps"),
        batch_size=get_model_param("batch_size"),
        lr=get_model_param("lr"),
        seed=get_model_param("seed"),
    shell:
        r"""
        interlat --threads {threads} models \
            {params.hf} \
            {params.tokenizer} \
            {params.pretrain_data} \
            --arch {params.arch} \
            --hidden-size {params.hidden_size} \
            --layers {params.layers} \
            --heads {params.heads} \
            --kv-heads {params.kv_heads} \
            --intermediate-size {params.intermediate_size} \
            --max-positions {params.max_positions} \
            --pretrain-steps {params.pretrain_steps} \
            --batch-size {params.batch_size} \
            --lr {params.lr} \
            --seed {params.seed} \
            --out {output:q} \
            >{log:q} 2>&1
        """
