"""The default config names no image that does not exist; `make image` builds the one to name."""

import re

import pytest
import yaml

from tests.helpers import REPO, copy_repo, smk


def test_no_config_names_a_placeholder_image():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    assert schema["properties"]["container"]["default"] == ""
    assert yaml.safe_load((REPO / "config/config.yaml").read_text())["container"] == ""
    for path in [*(REPO / "config").rglob("*.yaml"), REPO / "workflow/schemas/config.schema.yaml"]:
        assert not re.search(r"sha256:0{64}", path.read_text()), f"{path}: placeholder digest"


def test_make_image_builds_saves_and_says_what_to_name():
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\nimage:\n")[1].split("\n\n")[0]
    assert "containers/build.sh --variant cpu" in recipe and "--save images/interlat-cpu.tar" in recipe
    assert "docker-archive://images/interlat-cpu.tar" in recipe and "--config container=" in recipe
    assert "images/" in (REPO / ".gitignore").read_text().split()


@pytest.mark.slow
def test_use_apptainer_without_an_image_stops_with_a_message(tmp_path):
    work = copy_repo(tmp_path)
    out = smk(work, "-n", "--sdm", "apptainer", check=False)
    assert out.returncode != 0
    assert "config container: empty" in out.stderr + out.stdout and "make image" in out.stderr + out.stdout
    assert smk(work, "-n").returncode == 0  # without apptainer the default runs on the host
