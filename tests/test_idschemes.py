"""Bluezone and Exposure Notification key schedules against the official/real vectors."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from beacon import bluezone, gaen


def _bluezone_vectors(data: Path) -> tuple[bytes, dict[int, str], bytes]:
    text = (data / "vectors" / "bluezone_test_vectors.txt").read_text()
    daily = bytes.fromhex(
        re.search(r"DAILY_KEY\(2020-08-08[^)]*\) ([0-9A-F]{64})", text).group(1)
    )
    nxt = bytes.fromhex(
        re.search(r"DAILY_KEY\(2020-08-09\) = .* ([0-9A-F]{64})", text).group(1)
    )
    rows = {
        int(m.group(1)): m.group(2).lower()
        for m in re.finditer(r"^\s*(\d+)\s+2020-08-08T\S+\s+([0-9A-F]{24})", text, re.M)
    }
    return daily, rows, nxt


def test_bluezone_ids_match_real_capture(shared_data: Path) -> None:
    daily, rows, nxt = _bluezone_vectors(shared_data)
    ids = bluezone.ids_for_day(daily)
    assert len(rows) == 96
    assert {i: ids[i].hex() for i in rows} == rows
    # Slots 23 and 24 are IDs a real phone logged as its own (protocols.md 1.5).
    assert ids[23].hex() == "b9a665d754fe65e665d76a45"
    assert ids[24].hex() == "3aa8dfc0a15682b27216fc31"
    assert bluezone.next_daily_key(daily) == nxt


def test_bluezone_slot_arithmetic() -> None:
    t = 1596866160.0  # 2020-08-08T05:56:00Z, inside slot 23
    assert bluezone.slot_of(t) == 23
    assert bluezone.slot_start(t) == 1596865500.0
    assert bluezone.slot_of(1596866400.0) == 24  # the boundary belongs to the next slot
    assert bluezone.date_of(t) == dt.date(2020, 8, 8)


def test_bluezone_window_crosses_midnight(shared_data: Path) -> None:
    daily, rows, nxt = _bluezone_vectors(shared_data)
    start = 1596844800 + 86400 - 1800  # 23:30 on the key's day
    got = list(bluezone.ids_in_window(daily, dt.date(2020, 8, 8), start, start + 3600))
    assert [g.id.hex() for g in got[:2]] == [rows[94], rows[95]]
    assert [g.id for g in got[2:]] == bluezone.ids_for_day(nxt)[:2]
    assert got[2].start == 1596844800 + 86400


def test_bluezone_daily_key_chain() -> None:
    base = bytes(range(32))
    assert bluezone.daily_key_from_base(base, 0) == base
    assert bluezone.daily_key_from_base(base, 2) == bluezone.sha256(
        bluezone.sha256(base)
    )


def test_gaen_all_official_vectors(shared_data: Path) -> None:
    vec = json.loads(
        (shared_data / "vectors" / "gaen_crypto_test_vectors_v1.2.json").read_text()
    )
    tek = bytes.fromhex(vec["tek"])
    assert gaen.rpik(tek).hex() == vec["rpik"]
    assert gaen.aemk(tek).hex() == vec["aemk"]
    assert (
        gaen.interval_number(vec["key_generation_unix_seconds"])
        == vec["en_interval_number"]
    )
    rows = gaen.schedule(
        tek, vec["en_interval_number"], 144, bytes.fromhex(vec["ble_metadata"])
    )
    assert len(vec["advertised"]) == 144
    for (interval, rpi, aem), expected in zip(rows, vec["advertised"], strict=True):
        assert interval == expected["en_interval_number"]
        assert rpi.hex() == expected["rpi"]
        assert aem.hex() == expected["aem"]
    # CTR is its own inverse: decrypting the AEM gives the metadata back.
    assert gaen.aem(gaen.aemk(tek), rows[5][1], rows[5][2]).hex() == vec["ble_metadata"]
