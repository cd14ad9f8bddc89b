"""docs/config.md is generated from the config schema and kept current (interlat docs config)."""

import copy

from click.testing import CliRunner

from interlat.cli import main
from interlat.config import schema
from interlat.schema_docs import render
from tests.helpers import REPO


def test_docs_config_md_is_current():
    committed = (REPO / "docs/config.md").read_text()
    assert committed == render(), "docs/config.md is stale: run `interlat docs config --out docs/config.md`"


def test_every_leaf_key_of_the_schema_has_a_row():
    text = render()
    assert "| `train.lr` | number | `0.001` | > 0 |" in text
    assert "| `models.sender.hidden_size` | integer |" in text  # through $ref into $defs.model
    assert "| `compress.latency.repeats` |" in text
    for section in schema()["properties"]:
        assert f"`{section}" in text


def test_render_follows_a_schema_change():
    changed = copy.deepcopy(schema())
    changed["properties"]["seeds"]["description"] = "Changed | with a pipe."
    text = render(changed)
    assert text != render()
    assert "Changed \\| with a pipe." in text


def test_cli_writes_the_file(tmp_path):
    out = tmp_path / "config.md"
    result = CliRunner().invoke(main, ["docs", "config", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == render()
    stdout = CliRunner().invoke(main, ["docs", "config"])
    assert stdout.output == render()
