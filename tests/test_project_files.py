"""The files users and catalogs expect at the top: LICENSE, CITATION.cff, CHANGELOG, catalog YAML."""

import tomllib

import yaml

from tests.helpers import REPO


def pyproject():
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_license_file_matches_pyproject():
    assert pyproject()["license"]["text"] == "MIT"
    assert (REPO / "LICENSE").read_text().startswith("MIT License")


def test_citation_names_the_paper_and_this_version():
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    assert cff["version"] == pyproject()["version"]
    paper = cff["preferred-citation"]
    assert paper["title"] == "Enabling Agents to Communicate Entirely in Latent Space"
    assert "arXiv:2511.09149" in [i["value"] for i in paper["identifiers"]]
    assert all("family-names" in a for a in paper["authors"])


def test_changelog_lists_this_version():
    assert f"## [{pyproject()['version']}]" in (REPO / "CHANGELOG.md").read_text()


def test_workflow_catalog_file():
    spec = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    assert set(spec) <= {"mandatory-flags", "software-stack-deployment", "report"}
    assert set(spec["software-stack-deployment"]) <= {"conda", "singularity", "singularity+conda"}
    assert spec["report"] is True
