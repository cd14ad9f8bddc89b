"""The report: a category per stage, a caption and labels per file, the run config and versions."""

import html as html_module
import re
from types import SimpleNamespace

import jinja2
import pytest
import yaml

from interlat import report_layout
from tests.helpers import REPO, copy_repo, smk

CAPTION = (REPO / "workflow/report/tables.rst").read_text()


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
