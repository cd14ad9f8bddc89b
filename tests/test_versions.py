"""Software versions per run (interlat versions -> results/<run>/versions.yml, in the report)."""

import hashlib
from importlib.metadata import version

import pytest
import torch
import yaml
from click.testing import CliRunner

from interlat.cli import main
from tests.helpers import REPO, copy_repo, planned_jobs, smk


def test_versions_yml_records_this_environment(tmp_path):
    out = tmp_path / "versions.yml"
    result = CliRunner().invoke(main, ["versions", "--out", str(out)])
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(out.read_text())
    key = doc["interlat"]
    assert key["interlat"] == version("interlat") and key["torch"] == torch.__version__
    assert key["torch_cuda"] == torch.version.cuda
    assert key["math-verify"] == version("math-verify") and key["sympy"] == version("sympy")
    assert key["requirements_lock_sha256"] == hashlib.sha256((REPO / "requirements.lock").read_bytes()).hexdigest()
    assert doc["packages"]["transformers"] == version("transformers") and len(doc["packages"]) > 100


@pytest.mark.slow
def test_every_run_writes_versions_yml_with_a_caption(tmp_path):
    work = copy_repo(tmp_path)
    jobs = planned_jobs(smk(work, "-n", "--until", "versions"))
    assert jobs == {"versions": 1}
    smk(work, "--until", "versions")
    doc = yaml.safe_load((work / "results/test/versions.yml").read_text())
    assert doc["interlat"]["torch"] == torch.__version__
    assert (work / "logs/test/versions.log").is_file() and (work / "benchmarks/test/versions.tsv").is_file()
    assert (REPO / "workflow/report/versions.rst").read_text().strip()
