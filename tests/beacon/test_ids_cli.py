"""`bluegate-beacon ids` against every row of the shared vectors, through the real CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.beacon.helpers import cli


def _bluezone_rows(data: Path) -> tuple[str, list[tuple[int, str, str]]]:
    text = (data / "vectors" / "bluezone_test_vectors.txt").read_text()
    daily = re.search(r"DAILY_KEY\(2020-08-08[^)]*\) ([0-9A-F]{64})", text).group(1)
    rows = [
        (int(m.group(1)), m.group(2), m.group(3).lower())
        for m in re.finditer(
            r"^\s*(\d+)\s+(2020-08-08T\S+)\s+([0-9A-F]{24})", text, re.M
        )
    ]
    return daily, rows


def test_bluezone_every_row(shared_data: Path) -> None:
    daily, rows = _bluezone_rows(shared_data)
    assert len(rows) == 96
    res = cli(
        "beacon",
        "ids",
        "--scheme",
        "bluezone",
        "--daily-key",
        daily,
        "--date",
        "2020-08-08",
    )
    assert res.returncode == 0, res.stderr
    got = [line.split(" ") for line in res.stdout.splitlines()]
    assert [(int(s), iso, rid) for s, iso, rid in got] == rows


def test_bluezone_other_slot_counts() -> None:
    res = cli(
        "beacon",
        "ids",
        "--scheme",
        "bluezone",
        "--daily-key",
        "00" * 32,
        "--date",
        "2020-08-08",
        "--slots-per-day",
        "144",
    )
    lines = res.stdout.splitlines()
    assert len(lines) == 144
    assert lines[1].split()[1] == "2020-08-08T00:10:00Z"
    res = cli(
        "beacon",
        "ids",
        "--scheme",
        "bluezone",
        "--daily-key",
        "00" * 32,
        "--date",
        "2020-08-08",
        "--slots-per-day",
        "7",
    )
    # 86400000 ms / 7 is not whole: Bluezone's integer arithmetic, ms shown.
    assert res.stdout.splitlines()[1].split()[1] == "2020-08-08T03:25:42.857Z"


def test_gaen_every_row(shared_data: Path) -> None:
    vec = json.loads(
        (shared_data / "vectors" / "gaen_crypto_test_vectors_v1.2.json").read_text()
    )
    res = cli(
        "beacon",
        "ids",
        "--scheme",
        "gaen",
        "--tek",
        vec["tek"],
        "--interval",
        str(vec["en_interval_number"]),
        "--metadata",
        vec["ble_metadata"],
    )
    assert res.returncode == 0, res.stderr
    got = [line.split(" ") for line in res.stdout.splitlines()]
    want = [
        [str(r["en_interval_number"]), r["rpi"], r["aem"]] for r in vec["advertised"]
    ]
    assert got == want


def test_gaen_count_and_default_metadata(shared_data: Path) -> None:
    vec = json.loads(
        (shared_data / "vectors" / "gaen_crypto_test_vectors_v1.2.json").read_text()
    )
    res = cli(
        "beacon",
        "ids",
        "--scheme",
        "gaen",
        "--tek",
        vec["tek"],
        "--interval",
        str(vec["en_interval_number"] + 2),
        "--count",
        "3",
    )
    lines = [line.split() for line in res.stdout.splitlines()]
    assert [row[1] for row in lines] == [r["rpi"] for r in vec["advertised"][2:5]]
    # Same RPIs, other metadata (40000000), so other AEMs.
    assert lines[0][2] != vec["advertised"][2]["aem"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            ["--scheme", "bluezone", "--daily-key", "zz" * 32, "--date", "2020-08-08"],
            "not hex",
        ),
        (
            ["--scheme", "bluezone", "--daily-key", "00" * 31, "--date", "2020-08-08"],
            "32 bytes",
        ),
        (
            ["--scheme", "bluezone", "--daily-key", "00" * 32, "--date", "2020-13-01"],
            "--date",
        ),
        (["--scheme", "bluezone", "--daily-key", "00" * 32], "--date is required"),
        (["--scheme", "gaen", "--tek", "00" * 15, "--interval", "1"], "16 bytes"),
        (["--scheme", "gaen", "--tek", "00" * 16], "--interval is required"),
        (
            [
                "--scheme",
                "gaen",
                "--tek",
                "00" * 16,
                "--interval",
                "1",
                "--metadata",
                "00",
            ],
            "4 bytes",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(args: list[str], fragment: str) -> None:
    res = cli("beacon", "ids", *args)
    assert res.returncode == 2
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert fragment in lines[0], res.stderr
    assert "Traceback" not in res.stderr
