"""The edge pipeline on REAL captures: phones' own HCI logs (DP-3T bt-measurements).

In exp28 two Pixel 4 phones lay back to back in an anechoic chamber; each one's
btsnoop log holds the other's Exposure Notification advertisements, and each phone's
`.ephids` file lists the RPI||AEM values it really sent. Replaying a log must account
for every sighting and yield presence stays whose keys are exactly the RPIs heard,
the other phone's among them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.decoders import DecodeStats, sighting_from_report
from gateway.sources import open_source

REPO = Path(__file__).resolve().parent.parent
EXP28 = "captures/exp28-calibration-pixel4-to-android-anechoic"


def ephid_keys(path: Path) -> set[str]:
    keys = set()
    for line in path.read_text().split():
        raw = bytes.fromhex(line.replace(":", ""))
        keys.add("gaen:" + raw[:16].hex())
    return keys


@pytest.mark.parametrize(("receiver", "sender"), [("23", "24"), ("24", "23")])
def test_replay_of_a_real_phone_log(
    shared_data: Path, tmp_path: Path, receiver: str, sender: str
) -> None:
    capture = shared_data / EXP28 / f"{receiver}.btsnoop"
    sent = ephid_keys(shared_data / EXP28 / f"{sender}.ephids")
    # Independent count of the GAEN sightings in the log, through the decoders alone.
    stats = DecodeStats()
    heard = [
        s
        for r in open_source(f"btsnoop:{capture}")
        if (s := sighting_from_report(r, stats)) and s.format == "gaen"
    ]
    assert heard
    cfg = tmp_path / "unit.yaml"
    cfg.write_text(
        f"site: lab\ngateway: phone-{receiver}\nzone: {{name: chamber, kind: shift_room}}\n"
        f"outbox: {{path: {tmp_path / 'outbox.sqlite'}}}\n"
    )
    out = tmp_path / "records.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "replay",
            "--source",
            f"btsnoop:{capture}",
            "--config",
            str(cfg),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    presence = [r for r in records if r["kind"] == "presence"]
    assert presence
    keys = {k for r in presence for k in r["keys"]}
    assert keys == {s.key for s in heard}
    # The other phone's listed RPIs are among them (the .ephids files list the IDs of
    # the measured session; the log also holds a few from before and after it).
    assert len(keys & sent) >= 2
    assert sum(r["n"] for r in presence) == len(heard)  # every sighting accounted for
    for r in presence:
        assert r["start"] <= r["end"]
        assert r["rssi_min"] <= r["rssi_median"] <= r["rssi_max"]
        # band seconds are rounded to milliseconds
        assert abs(sum(r["band_s"].values()) - (r["end"] - r["start"])) < 0.01
    # A phone scans ~4 s every ~4 minutes (protocols.md 2.1), so its log is a series
    # of short bursts: far apart, they are separate stays, never merged across a gap.
    starts = sorted(r["start"] for r in presence)
    assert len(starts) == len(set(starts))
