"""`bluegate-gateway decode` and `scan` as a user runs them: subprocess, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXP28 = "captures/exp28-calibration-pixel4-to-android-anechoic"


def gateway(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
        check=False,
    )


def test_decode_prints_one_object_per_payload():
    run = gateway(
        "decode",
        "0201020FFFB522B9A665D754FE65E665D76A450303564E",
        "02 01 1a 03 03 6f fd 17 16 6f fd" + " 11" * 16 + " 01 02 03 04",
        "0201060AFF4C0010050B1C8A6F27",
    )
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert lines[0] == {
        "format": "bluezone",
        "key": "bluezone:b9a665d754fe65e665d76a45",
        "os": "android",
    }
    assert lines[1]["key"] == "gaen:" + "11" * 16
    assert lines[1]["aem"] == "01020304"
    assert lines[2]["format"] == "unknown"
    assert lines[2]["key"] is None
    assert lines[2]["ad"]["manufacturer_data"] == {"004c": "10050b1c8a6f27"}
    assert run.stderr == ""


def test_decode_not_hex_exits_2_with_one_line():
    run = gateway("decode", "020106", "02zz06")
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1
    assert "payload 2" in run.stderr
    assert "'02zz06'" in run.stderr
    assert "not hex" in run.stderr
    odd = gateway("decode", "02010")
    assert odd.returncode == 2
    assert "odd number" in odd.stderr


def test_scan_a_real_capture_and_record_it(shared_data, tmp_path):
    capture = shared_data / EXP28 / "24.btsnoop"
    out = tmp_path / "trace.jsonl"
    run = gateway("scan", "--source", f"btsnoop:{capture}", "--out", str(out))
    assert run.returncode == 0, run.stderr
    sightings = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(sightings) == 118
    for s in sightings:
        assert s["format"] == "gaen"
        assert s["key"].startswith("gaen:")
        assert {"t", "addr", "rssi", "aem"} <= set(s)
    keys = {s["key"] for s in sightings}
    assert "gaen:5f871adf18477501a1d9b02927fa4026" in keys  # phone 23's ephid
    summary = json.loads(run.stderr.strip().removeprefix("summary: "))
    assert summary["decoded"] == {
        "unknown": 116,
        "malformed": 0,
        "gaen": 118,
        "total": 234,
    }
    assert summary["recorded"] == 234
    # the recording replays to the same sightings
    again = gateway("scan", "--source", f"jsonl:{out}")
    assert again.returncode == 0, again.stderr
    assert again.stdout == run.stdout
    # --all also prints what was not recognised; --duration cuts by source time
    every = gateway("scan", "--source", f"jsonl:{out}", "--all", "--duration", "60")
    objs = [json.loads(line) for line in every.stdout.splitlines()]
    assert {o["format"] for o in objs} == {"gaen", "unknown"}
    assert max(o["t"] for o in objs) - min(o["t"] for o in objs) <= 60


def test_scan_damaged_capture_exits_1_naming_file_and_offset(shared_data, tmp_path):
    raw = (shared_data / EXP28 / "24.btsnoop").read_bytes()
    cut = tmp_path / "cut.btsnoop"
    cut.write_bytes(raw[: len(raw) // 2])
    run = gateway("scan", "--source", f"btsnoop:{cut}")
    assert run.returncode == 1
    assert run.stdout  # the reports before the damage were printed
    errors = [
        line for line in run.stderr.splitlines() if not line.startswith("summary: ")
    ]
    assert len(errors) == 1
    assert str(cut) in errors[0]
    assert "byte offset" in errors[0]


def test_scan_usage_errors(tmp_path):
    run = gateway("scan", "--source", "usb:0")
    assert run.returncode == 2
    assert "unknown source 'usb:0'" in run.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"t": 1, "addr": "nope", "rssi": -1, "data": ""}\n')
    run = gateway("scan", "--source", f"jsonl:{bad}")
    assert run.returncode == 2
    assert f"{bad}:1: field 'addr'" in run.stderr
    missing = gateway("scan", "--source", f"btsnoop:{tmp_path / 'none'}")
    assert missing.returncode == 2
    assert "cannot open" in missing.stderr


def test_decode_ad_digest_and_malformed_flag():
    run = gateway(
        "decode", "--ad", "0303AAFE0D16AAFE30E34549445F74657374", "0201060303AAFE99"
    )
    assert run.returncode == 0, run.stderr
    eid, broken = (json.loads(line) for line in run.stdout.splitlines())
    assert eid["key"] == "eddystone-eid:4549445f74657374"
    assert eid["ad"]["service_data"] == {"feaa": "30e34549445f74657374"}
    assert broken == {
        "format": "unknown",
        "key": None,
        "malformed": True,
        "ad": {
            "flags": 6,
            "uuid16": ["feaa"],
            "types": ["01", "03"],
            "malformed": True,
        },
    }


def test_scan_stopped_by_sigterm_keeps_its_trace_and_summary(tmp_path):
    """`timeout 60 bluegate-gateway scan --out ...` must leave a whole trace behind."""
    import signal
    import time

    fifo = tmp_path / "live.jsonl"
    os.mkfifo(fifo)
    out = tmp_path / "trace.jsonl"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway",
            "scan",
            "--source",
            f"jsonl:{fifo}",
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )
    line = {
        "t": 1.5,
        "addr": "5E:12:34:56:78:9A",
        "rssi": -60,
        "data": "0201020FFFB522" + "ab" * 12 + "0303564E",
    }
    with open(fifo, "w") as writer:  # opens once the scan has opened its end
        for _ in range(3):
            writer.write(json.dumps(line) + "\n")
        writer.flush()
        time.sleep(1.0)  # the scan reads the three lines, then waits for more
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130, stderr
    assert "summary: " in stderr
    recorded = [json.loads(x) for x in out.read_text().splitlines()]
    assert all(r["addr"] == "5E:12:34:56:78:9A" for r in recorded)
    assert len(recorded) == len(stdout.splitlines()) == 3


def test_decode_reads_payloads_from_stdin():
    run = gateway(
        "decode", "-", stdin="020106\n\n0201020FFFB522" + "cd" * 12 + "0303564E\n"
    )
    assert run.returncode == 0, run.stderr
    keys = [json.loads(line)["key"] for line in run.stdout.splitlines()]
    assert keys == [None, "bluezone:" + "cd" * 12]
    bad = gateway("decode", "-", stdin="020106\nxyz\n")
    assert bad.returncode == 2
    assert "stdin line 2 ('xyz') is not hex" in bad.stderr
