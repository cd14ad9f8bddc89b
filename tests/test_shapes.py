"""Paper shapes: the whole DAG at the paper models' real vocabularies and architectures.

Each test runs `snakemake --configfile config/shape/<family>.yaml` in a copy of the repository
(random weights, a handful of tasks, short capped lengths) and checks the mechanics: the
control tokens at their real ids in the tokenizer every model folder carries, the models'
published architecture values, stored message ids inside the real vocabulary, and every
evaluation record and table produced. Accuracy is not checked (random weights).
"""

import json
import os
import subprocess
import time

import polars as pl
import pytest
import yaml

from interlat.shards import read_messages
from interlat.text.chat import end_of_turn_id
from interlat.text.tokenizer import load_tokenizer
from interlat.variants import EMPTY, KINDS, LATENT, RECEIVERS, TEXT, parse, variants_for
from tests.helpers import BIN, REPO, copy_repo

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # the first test of each family runs its whole DAG (~5 min on 2 idle cores)

# family -> (vocab rows of the sender's shape, {control token: its real id}, the end-of-turn token)
EXPECT = {
    "qwen2.5": (151_936, {"<|endoftext|>": 151_643, "<|im_start|>": 151_644, "<|im_end|>": 151_645}, "<|im_end|>"),
    "llama3.1": (128_256, {"<|begin_of_text|>": 128_000, "<|end_of_text|>": 128_001, "<|start_header_id|>": 128_006,
                           "<|end_header_id|>": 128_007, "<|eot_id|>": 128_009}, "<|eot_id|>"),
}  # fmt: skip
LLAMA_IDS = EXPECT["llama3.1"][1]


@pytest.fixture(scope="module", params=sorted(EXPECT))
def shape_run(request, tmp_path_factory):
    family = request.param
    work = copy_repo(tmp_path_factory.mktemp(f"shape-{family}"))
    cmd = [str(BIN / "snakemake"), "--cores", "2", "--configfile", f"config/shape/{family}.yaml"]
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    start = time.monotonic()
    out = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=env)
    seconds = time.monotonic() - start
    assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-6000:]}"
    cfg = yaml.safe_load((REPO / "config" / "shape" / f"{family}.yaml").read_text())
    print(f"shape {family}: {seconds:.0f} s")
    return family, work / "results" / cfg["run"], cfg


def test_tokenizers_carry_the_real_control_tokens_at_their_ids(shape_run):
    family, res, cfg = shape_run
    _, ids, eot = EXPECT[family]
    trained = res / "train" / "math" / "replicate0"
    student = res / "compress" / "math" / "replicate0" / f"K{cfg['compress']['k_list'][0]}"
    for folder in (res / "models" / "sender", trained / "interlat", student):
        tok = load_tokenizer(folder)
        assert {t: tok.convert_tokens_to_ids(t) for t in ids} == ids, folder
        assert end_of_turn_id(tok) == ids[eot] != tok.eos_token_id
    llama_folders = (res / "models" / "llama", trained / "cross_family") if family == "qwen2.5" else ()
    for folder in llama_folders:  # LLaMA-3.1's own tokenizer (the cross-family receiver)
        llama = load_tokenizer(folder)
        assert {t: llama.convert_tokens_to_ids(t) for t in LLAMA_IDS} == LLAMA_IDS and llama.pad_token is None


def test_models_have_the_paper_architecture(shape_run):
    family, res, cfg = shape_run
    rows, _, _ = EXPECT[family]
    sender = json.loads((res / "models" / "sender" / "config.json").read_text())
    assert sender["vocab_size"] == rows and sender["num_hidden_layers"] == cfg["models"]["sender"]["layers"]
    llama_folder = res / "models" / ("llama" if family == "qwen2.5" else "sender")
    llama = json.loads((llama_folder / "config.json").read_text())
    assert llama["model_type"] == "llama" and llama["vocab_size"] == 128_256
    assert llama["rope_parameters"]["rope_type"] == "llama3" and llama["pad_token_id"] is None
    if family == "qwen2.5":
        assert (sender["hidden_size"], sender["num_attention_heads"], sender["num_key_value_heads"]) == (896, 14, 2)
        assert sender["tie_word_embeddings"] and sender["rope_parameters"]["rope_theta"] == 1e6


def test_stored_message_ids_are_inside_the_real_vocabulary(shape_run):
    family, res, cfg = shape_run
    tok = load_tokenizer(res / "models" / "sender")
    n = 0
    for bench in ("math", "alfworld"):
        for m in read_messages(res / "latents" / bench):
            assert m.plan_token_ids and len(m.plan_token_ids) == m.H.shape[0]
            assert all(0 <= i < len(tok) for i in m.prompt_token_ids + m.plan_token_ids)
            assert len(m.plan_token_ids) <= cfg["collect"]["max_new_tokens"]
            n += 1
    assert n >= 2


def test_every_variant_and_table_is_produced(shape_run):
    family, res, cfg = shape_run
    variants = cfg["evaluate"]["variants"]
    extra = [f"compressed_{k}" for k in cfg["compress"]["k_list"]] + cfg["compress"]["baselines"]
    assert {parse(v).kind for v in variants + extra} == set(KINDS)  # every way a message travels
    if family == "qwen2.5":  # every receiver, LLaMA-3.1 beside Qwen included
        assert {parse(v).receiver for v in variants} == set(RECEIVERS)
    resolved = yaml.safe_load((res / "run_config.yaml").read_text())  # the default's ALFWorld list applies
    assert {parse(v).kind for v in variants_for(resolved, "alfworld")} >= {LATENT, TEXT, EMPTY}
    for bench in ("math", "alfworld"):
        for v in variants_for(resolved, bench):
            records = pl.read_parquet(res / "evaluate" / bench / "replicate0" / f"{v}.parquet")
            assert records.height > 0 and (records["variant"] == v).all(), (bench, v)
    for v in extra:
        assert parse(v).kind and (res / "evaluate" / "math" / "replicate0" / f"{v}.parquet").is_file()
    tables = res / "tables"
    for name in ("table1_alfworld", "table2_math", "table3_compression"):
        assert (tables / f"{name}.csv").stat().st_size > 0 and (tables / f"{name}.md").is_file()
    assert (res / "latency" / "math" / "full.csv").is_file()
