"""`bluegate-gateway replay` end to end on a jsonl trace (own gateway's lines only)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    assert "recorded or simulated source" in proc.stderr


def test_replay_of_a_simulated_site_reads_iphones_over_gatt(tmp_path):
    """`sim:` sources replay through the real GATT resolver, fed by the simulator."""
    cfg = tmp_path / "unit.yaml"
    cfg.write_text(
        "site: small-site\ngateway: shift-room\n"
        "zone: {name: shift-room, kind: shift_room}\n"
        f"outbox: {{path: {tmp_path / 'outbox.sqlite'}}}\n"
    )
    scenario = REPO / "gateway" / "sim" / "scenarios" / "small.yaml"
    out = tmp_path / "records.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "-v",
            "replay",
            "--source",
            f"sim:{scenario}",
            "--config",
            str(cfg),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    presence = [r for r in records if r["kind"] == "presence"]
    assert presence
    assert all(r["gateway"] == "shift-room" for r in records)
    # Without GATT reads every iPhone sighting would be rejected as needs_gatt
    # (about a quarter of this site's reports); with them only the sightings heard
    # while a read is pending are.
    stats_line = [line for line in proc.stderr.splitlines() if "replay:" in line][-1]
    assert "'needs_gatt'" in stats_line
    rejected = int(stats_line.split("'needs_gatt': ")[1].split("}")[0])
    reports = int(stats_line.split("'reports': ")[1].split(",")[0])
    assert rejected < 0.02 * reports
    assert any(r["key"].startswith("bluezone:") for r in presence)
