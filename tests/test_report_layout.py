"""The report: a category per stage, a caption and labels per file, the run config and versions."""

import html as html_module
import json
import re
from types import SimpleNamespace

import jinja2
import pytest
import yaml

from interlat import report_layout
from tests.helpers import REPO, copy_repo, finished_workflow, smk

CAPTION = (REPO / "workflow/report/tables.rst").read_text()
#: the per-file captions of the training logs and latency tables (rules train and latency)
TRAIN_CAPTION = (REPO / "workflow/report/train.rst").read_text()
LATENCY_CAPTION = (REPO / "workflow/report/latency.rst").read_text()


def written_stems() -> set[str]:
    """Every file stem interlat/tables.py writes into the tables folder."""
    return set(re.findall(r'tmp / "(\w+)\.(?:csv|md|png)"', (REPO / "interlat/tables.py").read_text()))


def caption(name: str) -> str:
    wildcards = SimpleNamespace(name=name, ext="csv")
    return jinja2.Environment().from_string(CAPTION).render(snakemake=SimpleNamespace(wildcards=wildcards)).strip()


def test_every_table_and_figure_has_a_stage_a_caption_and_labels():
    stems = written_stems()
    assert {"table2_math", "table1_alfworld", "table3_compression", "training"} <= stems
    captions = set()
    for stem in stems:
        assert stem in report_layout.FILES, f"{stem}: no place in interlat/report_layout.py FILES"
        text = caption(stem)
        assert "interlat tables" in text and text != caption("no_such_file"), stem
        captions.add(text)
        wc = SimpleNamespace(name=stem, ext="png")
        assert report_layout.category(wc) in report_layout.STAGES.values()
        assert report_layout.labels(wc) == {"file": stem, "shows": report_layout.FILES[stem][2], "kind": "figure"}
    assert len(captions) == len(stems)  # one caption per file, not one shared
    stages = {report_layout.category(SimpleNamespace(name=s, ext="csv")) for s in stems}
    assert stages == {"2. Training", "3. Compression", "4. Evaluation"}


def test_unknown_files_still_render():
    wc = SimpleNamespace(name="new_table", ext="csv")
    assert report_layout.category(wc) == "4. Evaluation" and report_layout.subcategory(wc) == "other"
    assert caption("new_table") == "``new_table``: written by ``interlat tables``."


@pytest.mark.slow
def test_report_shows_versions_and_the_run_config(tmp_path):
    work = copy_repo(tmp_path)
    target = ("--keep-going", "results/test/versions.yml")  # a flag ends --configfile's file list
    smk(work, *target)
    smk(work, *target, "--report", "results/report.html")
    html = (work / "results/report.html").read_text(errors="replace")
    assert "5. Run" in html and "software versions" in html
    config = yaml.safe_load((work / "results/test/run_config.yaml").read_text())
    text = html_module.unescape(re.sub(r"<[^>]*>", "", html.replace('\\"', '"')))  # the highlighted JSON as text
    assert f'"n_train": {config["data"]["math"]["n_train"]}' in text and '"k_list": [' in text


# ---------------------------------------------------------------- training logs and latency tables
def render(template: str, wildcards: dict, params: dict, config: dict | None = None) -> str:
    """A caption as `snakemake --report` renders it (the same Jinja settings), as plain text."""
    from docutils.core import publish_parts

    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    snakemake = SimpleNamespace(wildcards=SimpleNamespace(**wildcards), params=SimpleNamespace(**params),
                                config=config or {"compress": {"baselines": ["first_8"]}, "replicates": [0]})
    body = publish_parts(env.from_string(template).render(snakemake=snakemake), writer="html")["body"]
    return as_text(body)


def as_text(html: str) -> str:
    return " ".join(html_module.unescape(re.sub(r"<[^>]*>", "", html)).split())


TRAIN_PARAMS = {"mode": "interlat", "contrast": "--contrast", "curriculum": "ramp_to_pure", "steps": 30, "epochs": 0,
                "batch_size": 8, "gradient_accumulation": 1, "lr": 0.001, "engine": "single", "seed": 0,
                "margin": 0.69, "warmup_ratio": 0.03}
LATENCY_PARAMS = {"tasks": 1, "repeats": 1, "warmup": 0, "action_tokens": 48}


def test_training_log_and_latency_captions_name_every_column_the_code_writes():
    """The captions list the columns of the CSVs as interlat/train and interlat/evaluate/latency.py
    write them: a new column without a word in its caption fails here."""
    from interlat.evaluate.latency import COLUMNS
    from interlat.train.trainer import LOG_FIELDS

    for receiver, mode in (("interlat", "interlat"), ("cot_full", "text"), ("no_cot", "none")):
        text = render(TRAIN_CAPTION, {"benchmark": "math", "replicate": "1", "receiver": receiver},
                      {**TRAIN_PARAMS, "mode": mode})
        assert text.startswith(f"Training log of the {receiver} receiver on MATH, replicate 1"), text
        assert f"mode {mode}" in text and "interlat train" in text and "{{" not in text
        for column in LOG_FIELDS:
            assert f"{column}:" in text or f"{column}," in text, (receiver, column)
    for benchmark, message in (("math", "full"), ("alfworld", "K8")):
        text = render(LATENCY_CAPTION, {"benchmark": benchmark, "message": message}, LATENCY_PARAMS)
        assert "interlat latency" in text and "{{" not in text
        assert ("first_8" in text) == (message == "full") and ("compressed_8" in text) == (message == "K8")
        assert ("first action" in text) == (benchmark == "alfworld"), text
        for column in COLUMNS:
            assert f"{column}:" in text or f"{column}," in text, (message, column)


def test_training_logs_and_latency_tables_have_a_stage_a_benchmark_and_labels():
    wc = SimpleNamespace(benchmark="alfworld", replicate="1", receiver="cot_full")
    assert report_layout.benchmark_subcategory(wc) == "ALFWorld"
    assert report_layout.train_labels(wc) == {"variant": "cot_full", "replicate": "1", "benchmark": "ALFWorld",
                                              "kind": "training log (CSV)"}
    # no other label repeats the replicate: with two replicates the report toggles between them
    other = report_layout.train_labels(SimpleNamespace(benchmark="alfworld", replicate="0", receiver="cot_full"))
    assert {k for k in other if other[k] != report_layout.train_labels(wc)[k]} == {"replicate"}
    labels = report_layout.latency_labels(SimpleNamespace(benchmark="math", message="K16"))
    assert labels["message"] == "K16" and labels["benchmark"] == "MATH" and "compressed_16" in labels["shows"]
    table = report_layout.labels(SimpleNamespace(name="table3_compression", ext="csv"))
    assert list(labels)[:3] == list(table)  # the same first columns as the tables beside it


def report_data(html: str, name: str) -> dict:
    """The JSON the Snakemake report's JavaScript app is built from (`var results = {...};`)."""
    match = re.search(rf'<script id="{name}">\s*var {name} = (.*?);\s*</script>', html, re.DOTALL)
    assert match, f"no `var {name}` in the report"
    return json.loads(match.group(1))


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.timeout(2400)
def test_report_shows_training_logs_and_latency_tables(tmp_path_factory):
    """On the session's one pipeline run (tests/helpers.finished_workflow, shared with
    test_workflow.py): every training log under "2. Training" and every latency table under
    "3. Compression", in its benchmark's subcategory, with its labels and its own caption."""
    work = finished_workflow(tmp_path_factory)
    smk(work, "--report", "results/report_layout.html")
    html = (work / "results/report_layout.html").read_text(errors="replace")
    categories, results = report_data(html, "categories"), report_data(html, "results")
    run = work / "results/test"
    logs = sorted(str(f.relative_to(work)) for f in run.glob("train/*/replicate*/*.csv"))
    latencies = sorted(str(f.relative_to(work)) for f in run.glob("latency/*/*.csv"))
    assert len(logs) == 6 and len(latencies) == 4  # 3 receivers, full + K8; MATH and ALFWorld
    for stage, files in (("2. Training", logs), ("3. Compression", latencies)):
        for subcategory, name in (("MATH", "math"), ("ALFWorld", "alfworld")):
            mine = [f for f in files if f.split("/")[3] == name]
            listed = [f for f in categories[stage][subcategory] if f in files]
            assert sorted(listed) == mine, (stage, subcategory, categories[stage])
    for path in logs:
        _, _, _, benchmark, replicate, csv = path.split("/")
        wc = SimpleNamespace(benchmark=benchmark, replicate=replicate.removeprefix("replicate"),
                             receiver=csv.removesuffix(".csv"))
        entry = results[path]
        assert entry["labels"] == report_layout.train_labels(wc) and entry["job_properties"]["rule"] == "train"
        text = as_text(entry["caption"])
        assert text.startswith(f"Training log of the {wc.receiver} receiver on "
                               f"{report_layout.benchmark_subcategory(wc)}, replicate {wc.replicate}"), text
        assert "tokens_per_s" in text and "{{" not in text
    for path in latencies:
        _, _, _, benchmark, csv = path.split("/")
        wc = SimpleNamespace(benchmark=benchmark, message=csv.removesuffix(".csv"))
        entry = results[path]
        assert entry["labels"] == report_layout.latency_labels(wc) and entry["job_properties"]["rule"] == "latency"
        text = as_text(entry["caption"])
        assert text.startswith(f"Communication latency on {report_layout.benchmark_subcategory(wc)}"), text
        assert ("compressed_8" in text) == (wc.message == "K8") and "speedup_total" in text
    assert categories["2. Training"]["receivers"] == ["results/test/tables/training.png"]
