"""Central side of the beacon: the F0 export (format of protocols.md 1.6), proven by
Bluezone's own phone-side matching (checkContactF) over simulated phone logs; the
export of a past window after a rekey; the registry, export and zone check through
the real `bluegate-central beacon` CLI on a real SQLite store."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from beacon import bluezone, keystore
from central.beacon_check import (
    RegisteredBeacon,
    beacon_index,
    check_presence,
    radio_status,
)
from central.beacon_export import KeyPeriod, export_window, f0_payload, phone_matches
from central.records import batch_rows
from central.rules import PresenceRow
from central.store import open_store
from gateway.envelope import make_body
from tests.beacon.helpers import cli

D0 = dt.date(2026, 11, 1)  # the beacon's base key date
D2 = dt.date(2026, 11, 3)
D3 = dt.date(2026, 11, 4)
BASE = bytes(range(100, 132))


def at(day: dt.date, h: int, m: int = 0, s: int = 0) -> float:
    return bluezone.midnight_of(day) + h * 3600 + m * 60 + s


def beacon_id(keys: list[KeyPeriod], t: float, slots: int = 96) -> bytes:
    """What the beacon advertised at t: the key current then (keystore semantics)."""
    key = [
        k for k in keys if k.valid_from <= t and (k.valid_to is None or t < k.valid_to)
    ][-1]
    day = bluezone.date_of(t)
    return bluezone.ids_for_day(key.daily_key(day), slots)[bluezone.slot_of(t, slots)]


def phone_log(keys: list[KeyPeriod], t0: float, t1: float, step_s: float = 20.0):
    """trace_info rows (blid_contact, timestamp ms) of a phone in the room [t0, t1)."""
    rows, t = [], t0
    while t < t1:
        rows.append((beacon_id(keys, t), int(t * 1000)))
        t += step_s
    return rows


def matched(payload: dict, log) -> bool:
    return any(phone_matches(entry, log) for entry in payload["data"])


def test_export_layout_is_protocols_1_6() -> None:
    keys = [KeyPeriod(BASE, D0)]
    payload = f0_payload(export_window(keys, at(D2, 8), at(D3, 12), 96))
    # The exact push document: {"data":[{"daily_key","time_start","time_end","max"}]}
    text = json.dumps(payload, separators=(",", ":"))
    assert re.fullmatch(
        r'\{"data":\[\{"daily_key":"[0-9a-f]{64}","time_start":\d+,"time_end":\d+,'
        r'"max":96\}\]\}',
        text,
    )
    (entry,) = payload["data"]
    # One entry covers both days; it starts at the first day's UTC midnight with
    # that day's key (SHA-256 applied twice to the base key, design.md).
    assert entry["daily_key"] == bluezone.daily_key_from_base(BASE, 2).hex()
    assert entry["time_start"] == bluezone.midnight_of(D2)
    assert entry["time_end"] == at(D3, 12) - 1
    assert isinstance(entry["time_start"], int)
    assert isinstance(entry["time_end"], int)


def test_phones_that_were_there_match_and_others_do_not() -> None:
    keys = [KeyPeriod(BASE, D0)]
    other_room = [KeyPeriod(bytes(32), D0)]
    payload = f0_payload(export_window(keys, at(D2, 8), at(D3, 12), 96))
    there_day1 = phone_log(keys, at(D2, 8, 10), at(D2, 9))
    there_day2 = phone_log(keys, at(D3, 10), at(D3, 10, 30))  # the chain's next day
    assert matched(payload, there_day1)
    assert matched(payload, there_day2)
    assert len(phone_matches(payload["data"][0], there_day1 + there_day2)) == len(
        there_day1
    ) + len(there_day2)
    day1 = D2 - dt.timedelta(1)
    assert not matched(payload, phone_log(keys, at(day1, 9), at(day1, 11)))
    assert not matched(payload, phone_log(keys, at(D3, 12, 1), at(D3, 14)))
    assert not matched(payload, phone_log(other_room, at(D2, 8), at(D3, 12)))
    # A recorded ID replayed hours later is logged outside its slot: no match.
    replayed = [(rid, ts + 3 * 3600 * 1000) for rid, ts in there_day1]
    assert not matched(payload, replayed)
    # The format cannot start mid-day: the same day's earlier hours also match
    # (the documented over-match, told to ops on every export).
    assert matched(payload, phone_log(keys, at(D2, 6), at(D2, 6, 30)))


def test_time_start_must_be_the_key_midnight() -> None:
    """Why the export never puts the window start in time_start: a phone would
    number the slots from there and match nothing."""
    keys = [KeyPeriod(BASE, D0)]
    log = phone_log(keys, at(D2, 8, 10), at(D2, 9))
    (entry,) = f0_payload(export_window(keys, at(D2, 8), at(D2, 10), 96))["data"]
    assert phone_matches(entry, log)
    shifted = dict(entry, time_start=int(at(D2, 8)))
    assert not phone_matches(shifted, log)


def test_export_edges() -> None:
    keys = [KeyPeriod(BASE, D0)]
    (entry,) = export_window(keys, at(D2, 8), at(D2, 8, 0, 1), 96)
    assert entry.time_end == entry.time_start + 8 * 3600  # the slot at 08:00 is tested
    with pytest.raises(ValueError):
        export_window(keys, at(D2, 9), at(D2, 8), 96)
    # Before the key existed there is nothing to export.
    assert export_window(keys, at(D0, 0) - 86400, at(D0, 0), 96) == []
    # 144 slots a day (Bluezone v2) also round-trips through the phone's loop.
    log = phone_log(keys, at(D2, 8), at(D2, 8, 30))
    wrong = f0_payload(export_window(keys, at(D2, 7), at(D2, 9), 144))
    assert not matched(wrong, log)  # the phone must use the beacon's own max
    slots144 = phone_log_slots(keys, at(D2, 8), at(D2, 8, 30), 144)
    assert matched(wrong, slots144)


def phone_log_slots(keys, t0, t1, slots):
    rows, t = [], t0
    while t < t1:
        rows.append((beacon_id(keys, t, slots), int(t * 1000)))
        t += 30
    return rows


def test_rekey_after_disclosure_export_uses_archived_key(tmp_path: Path) -> None:
    key_file = tmp_path / "beacon-key.json"
    keystore.enroll(key_file, D0)
    # D3 10:07: a case is reported, ops export, the beacon is rekeyed.
    archived, new = keystore.rekey(key_file, at(D3, 10, 7), 96, reason="export")
    history = [
        KeyPeriod(k.base_key, k.created, k.retired)
        for k in keystore.load_history(key_file)
    ]
    assert [k.valid_to for k in history] == [at(D3, 10, 15), None]
    before = phone_log(history, at(D2, 8), at(D2, 9))
    around = phone_log(history, at(D3, 9, 50), at(D3, 10, 40))
    after = phone_log(history, at(D3, 11), at(D3, 12))
    assert {r for r, _ in around[:5]}.isdisjoint({r for r, _ in after})
    # A past window before the rekey: one entry, from the archived key.
    past = f0_payload(export_window(history, at(D2, 8), at(D2, 9), 96))
    (entry,) = past["data"]
    assert entry["daily_key"] == archived.daily_key(D2).hex()
    assert matched(past, before)
    assert not matched(past, after)
    # A window across the rekey: one entry per key, both halves match.
    across = f0_payload(export_window(history, at(D3, 9), at(D3, 12), 96))
    assert [e["daily_key"] for e in across["data"]] == [
        archived.daily_key(D3).hex(),
        new.daily_key(D3).hex(),
    ]
    assert matched(across, around)
    assert matched(across, after)
    # The old chain (what the first export disclosed) predicts no new ID.
    only_old = f0_payload(
        export_window(history[:1], at(D3, 9), at(D3 + dt.timedelta(5), 0), 96)
    )
    assert not matched(only_old, after)


def row(key, start, end, *, gateway="gw-room", zone="room-a", site="mine-a", keys=None):
    return PresenceRow(
        gateway, 1, 0, site, zone, "shift_room", key, tuple(keys or [key]), start, end
    )


def test_zone_check_and_radio_status() -> None:
    keys = (KeyPeriod(BASE, D0),)
    beacons = [
        RegisteredBeacon("room-a-beacon", "mine-a", "room-a", keys),
        RegisteredBeacon(
            "room-b-beacon", "mine-a", "room-b", (KeyPeriod(bytes(32), D0),)
        ),
    ]
    index = beacon_index(beacons, at(D2, 0), at(D2, 12))
    assert len(index) == 2 * 48
    k1 = "bluezone:" + beacon_id(list(keys), at(D2, 8, 5)).hex()
    k2 = "bluezone:" + beacon_id(list(keys), at(D2, 8, 20)).hex()
    records = [
        row(k1, at(D2, 8, 1), at(D2, 8, 29), keys=[k1, k2]),  # own zone, chained
        row(k2, at(D2, 8, 16), at(D2, 8, 20), gateway="gw-b", zone="room-b"),  # wrong
        row(k1, at(D2, 11), at(D2, 11, 5), gateway="gw-c", zone="room-a"),  # replayed
        row("bluezone:" + "00" * 12, at(D2, 8), at(D2, 9)),  # a person's phone
    ]
    heard = check_presence(index, records, clock_tolerance_s=120)
    assert [(h.gateway, h.key, h.wrong_zone, h.out_of_slot) for h in heard] == [
        ("gw-room", k1, False, False),
        ("gw-room", k2, False, False),
        ("gw-b", k2, True, False),
        ("gw-c", k1, False, True),
    ]
    status = radio_status(
        heard, {"gw-room": "room-a", "gw-b": "room-b", "gw-c": "room-a"}
    )
    assert status["gw-room"]["own_beacon_heard"] is True
    assert status["gw-b"]["own_beacon_heard"] is False
    assert status["gw-b"]["foreign"] == ["room-a-beacon"]
    assert status["gw-c"]["own_beacon_heard"] is False


def central_cfg(tmp_path: Path) -> Path:
    cfg = tmp_path / "central.yaml"
    cfg.write_text(
        f"storage: sqlite:///{tmp_path}/central.sqlite\n"
        "mqtt: {host: 127.0.0.1, port: 1883}\nhttp: {port: 0}\n"
    )
    return cfg


def test_central_cli_register_list_export_check(tmp_path: Path) -> None:
    key_file = tmp_path / "beacon-key.json"
    keystore.enroll(key_file, D0)
    archived, new = keystore.rekey(key_file, at(D3, 10, 7), 96)
    cfg = central_cfg(tmp_path)
    res = cli(
        "central",
        "beacon",
        "register",
        "--config",
        str(cfg),
        "--beacon",
        "room-a-beacon",
        "--zone",
        "room-a",
        "--key-file",
        str(key_file),
        "--site",
        "mine-a",
    )
    assert res.returncode == 0, res.stderr
    assert "1 retired key" in res.stdout
    res = cli(
        "central", "beacon", "list", "--config", str(cfg), "--all", "--format", "json"
    )
    assert res.returncode == 0, res.stderr
    listed = json.loads(res.stdout)
    assert [r["key"] for r in listed] == [new.fingerprint, archived.fingerprint]
    for secret in (new.base_key.hex(), archived.base_key.hex()):
        assert secret not in res.stdout
    # Export from the registry == export straight from the key file (+ archive).
    window = ["--from", "2026-11-04T09:00:00Z", "--to", "2026-11-04T12:00:00Z"]
    res = cli(
        "central",
        "beacon",
        "export",
        "--config",
        str(cfg),
        "--beacon",
        "room-a-beacon",
        *window,
    )
    assert res.returncode == 0, res.stderr
    from_store = json.loads(res.stdout)
    assert "rekey" in res.stderr
    res = cli("central", "beacon", "export", "--key-file", str(key_file), *window)
    assert json.loads(res.stdout) == from_store
    assert [e["daily_key"] for e in from_store["data"]] == [
        archived.daily_key(D3).hex(),
        new.daily_key(D3).hex(),
    ]
    res = cli(
        "central", "beacon", "export", "--config", str(cfg), "--beacon", "nope", *window
    )
    assert res.returncode == 2
    # Zone check over ingested presence records.
    history = [
        KeyPeriod(k.base_key, k.created, k.retired)
        for k in keystore.load_history(key_file)
    ]
    k_old = "bluezone:" + beacon_id(history, at(D3, 9, 5)).hex()
    k_new = "bluezone:" + beacon_id(history, at(D3, 11, 5)).hex()
    store = open_store(f"sqlite:///{tmp_path}/central.sqlite")
    try:
        for gw, zone, key, t0, t1 in (
            ("gw-room", "room-a", k_old, at(D3, 9, 1), at(D3, 9, 14)),
            ("gw-room", "room-a", k_new, at(D3, 11, 1), at(D3, 11, 14)),
            ("gw-b", "room-b", k_new, at(D3, 11, 2), at(D3, 11, 3)),
        ):
            rec = {
                "kind": "presence",
                "seq": 0,
                "zone": zone,
                "zone_kind": "shift_room",
                "key": key,
                "keys": [key],
                "start": t0,
                "end": t1,
                "band_s": {"immediate": 0.0, "near": t1 - t0, "far": 0.0},
            }
            body = make_body(
                site="mine-a", gateway=gw, boot=int(t0), records=[rec], sent=t0
            )
            store.ingest(batch_rows(body, t0), received=t0, signed=False)
    finally:
        store.close()
    res = cli("central", "beacon", "check", "--config", str(cfg), *window)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert len(out["heard"]) == 3
    assert [(h["gateway"], h["beacon"]) for h in out["wrong_zone"]] == [
        ("gw-b", "room-a-beacon")
    ]
    assert out["gateways"]["gw-room"]["own_beacon_heard"] is True
    assert out["out_of_slot"] == []
