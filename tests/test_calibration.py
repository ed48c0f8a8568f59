"""The band defaults and docs/proximity.md are what the real data gives."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from gateway import bands
from gateway.config import BandsConfig

REPO = Path(__file__).resolve().parent.parent


def load_tool():
    spec = importlib.util.spec_from_file_location(
        "calibrate_bands", REPO / "tools" / "calibrate_bands.py"
    )
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["calibrate_bands"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_doc_and_defaults_are_reproduced_from_real_data(shared_data):
    tool = load_tool()
    cal = tool.calibrate(shared_data / "rssi")
    assert (cal.immediate_dbm, cal.near_dbm) == (
        bands.DEFAULT_IMMEDIATE_DBM,
        bands.DEFAULT_NEAR_DBM,
    )
    cfg = BandsConfig()
    assert (cfg.immediate_dbm, cfg.near_dbm) == (cal.immediate_dbm, cal.near_dbm)
    assert (REPO / "docs" / "proximity.md").read_text() == cal.markdown
    # Sanity of the scoring itself on the Pi sets: better than chance, far from perfect.
    nist = cal.rows["NIST Pi 3 -> Pi 3 (line of sight)"]
    assert 0.5 < nist.macro_f1 < 0.9
    assert sum(nist.support) > 17_000


def test_scoring_counts_by_hand():
    tool = load_tool()
    S = tool.Sample
    ds = [S(-40, 0), S(-55, 0), S(-55, 1), S(-70, 2)]
    sc = tool.score_hist(tool.histogram(ds), -49, -65)
    # predicted: imm, near, near, far
    assert sc.precision == (1.0, 0.5, 1.0)
    assert sc.recall == (0.5, 1.0, 1.0)
