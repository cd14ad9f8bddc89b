"""Every paper config equals the paper's settings as docs/paper-settings.md tabulates them."""

import yaml

from tests.helpers import REPO


def test_paper_settings_table_matches_every_paper_config():
    """docs/paper-settings.md lists the paper's training settings; every paper config equals them."""
    from tests.test_config import merged

    rows = [ln.strip().strip("|").split("|") for ln in (REPO / "docs/paper-settings.md").read_text().splitlines()
            if ln.startswith("| `")]
    assert len(rows) >= 15
    configs = sorted((REPO / "config/paper").glob("*.yaml"))
    assert configs
    stems = {p.stem for p in configs}
    for path in configs:
        cfg = merged(path)
        for cells in rows:
            key, value = cells[0].strip().strip("`"), yaml.safe_load(cells[1].strip().strip("`"))
            got = cfg
            for part in key.split("."):
                got = got[part]
            if isinstance(value, dict) and set(value) <= stems:  # per-config values: {config stem: value}
                assert set(value) == stems, f"{key}: a value for every paper config"
                value = value[path.stem]
            assert got == value, f"{path.name}: {key} = {got!r}, the paper's is {value!r}"
