"""`bluegate-gateway replay` end to end on a jsonl trace (own gateway's lines only)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
T0 = 1_596_866_400.0
GAEN = "02011a03036ffd17166ffd" + "01" * 16 + "00" * 4


def write_cfg(tmp: Path) -> Path:
    cfg = tmp / "unit.yaml"
    cfg.write_text(
        "site: s\ngateway: bus-07\nzone: {name: bus-07, kind: shift_room}\n"
        f"outbox: {{path: {tmp / 'outbox.sqlite'}}}\nidentity: {{dir: {tmp / 'keys'}}}\n"
    )
    return cfg


def test_replay_out_takes_own_lines(tmp_path):
    pytest.importorskip("gateway.sources")
    trace = tmp_path / "t.jsonl"
    lines = []
    for i in range(60):
        for gw in ("bus-07", "bus-08"):
            lines.append(
                json.dumps(
                    {
                        "t": T0 + i * 2,
                        "addr": "5E:12:34:56:78:9A",
                        "addr_type": "random",
                        "rssi": -60,
                        "data": GAEN,
                        "scan_rsp": False,
                        "gateway": gw,
                    }
                )
            )
    trace.write_text("\n".join(lines) + "\n")
    out = tmp_path / "records.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "replay",
            "--source",
            f"jsonl:{trace}",
            "--config",
            str(write_cfg(tmp_path)),
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    pres = [r for r in recs if r["kind"] == "presence"]
    assert len(pres) == 1
    assert pres[0]["n"] == 60
    assert pres[0]["gateway"] == "bus-07"


def test_replay_rejects_live_source(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "replay",
            "--source",
            "bluepy:hci0",
            "--config",
            str(write_cfg(tmp_path)),
            "--out",
            "-",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "recorded source" in proc.stderr
