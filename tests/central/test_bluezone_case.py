"""Contacts of a case found through a disclosed Bluezone daily key (the real vectors)."""

from __future__ import annotations

import datetime as dt
import io
import json
import re

import pytest

from central import contacts
from central.records import batch_rows
from central.rules import Rule
from gateway.envelope import make_body

DAY = dt.date(2020, 8, 8)
T0 = 1_596_844_800.0  # 2020-08-08T00:00:00Z


def vectors(shared_data):
    text = (shared_data / "vectors" / "bluezone_test_vectors.txt").read_text()
    daily = re.search(r"DAILY_KEY\(2020-08-08[^)]*\)\s+([0-9A-F]{64})", text).group(1)
    ids = {
        int(m.group(1)): m.group(2).lower()
        for m in re.finditer(r"^\s*(\d+)\s+\S+Z\s+([0-9A-F]{24})", text, re.M)
    }
    return daily, ids


def hms(h, m, s=0):
    return T0 + h * 3600 + m * 60 + s


def ingest(store, records, gateway="gw-room"):
    for seq, r in enumerate(records):
        r.setdefault("seq", seq)
    body = make_body(site="mine-a", gateway=gateway, boot=1, records=records, sent=T0)
    store.ingest(batch_rows(body, T0), received=T0, signed=False)


def rec(key, start, end, keys=None):
    return {"kind": "presence", "zone": "room-a", "zone_kind": "shift_room", "key": key,
            "keys": keys or [key], "start": start, "end": end,
            "band_s": {"immediate": 0.0, "near": end - start, "far": 0.0}}  # fmt: skip


def test_slot_23_and_24_ids_are_found_by_the_daily_key(store, shared_data):
    daily, ids = vectors(shared_data)
    k23, k24 = "bluezone:" + ids[23], "bluezone:" + ids[24]
    ingest(store, [
        # The phone's observed IDs (05:56:31 onward), chained across the slot change.
        rec(k23, hms(5, 56, 31), hms(6, 14), keys=[k23, k24]),
        rec("ibeacon:w:1:1", hms(5, 40), hms(6, 30)),   # 17.5 min together: F1
        rec("ibeacon:w:1:2", hms(6, 5), hms(6, 30)),    # 9 min: not F1
        rec("bluezone:" + "00" * 12, hms(5, 0), hms(7, 0)),  # someone else's phone: F1
    ])  # fmt: skip
    seed = contacts.bluezone_seed(daily, DAY, T0, T0 + 86400, Rule())
    assert len(seed.slots) == 96
    assert (k23, hms(5, 45), hms(6, 0)) in seed.slots
    answer = contacts.contacts(store, seed, T0, T0 + 86400, Rule())
    got = {(c["key"], c["minutes"]) for c in answer["contacts"]}
    assert got == {("ibeacon:w:1:1", 17.48), ("bluezone:" + "00" * 12, 17.48)}
    assert answer["exposures"] == [{"zone": "room-a", "gateway": "gw-room",
                                    "from": "2020-08-08T05:56:31Z", "to": "2020-08-08T06:14:00Z"}]  # fmt: skip
    text = json.dumps(answer).lower()
    assert daily.lower() not in text  # the key never leaves
    assert answer["case"] == {
        **answer["case"],
        "by": "bluezone-daily-key",
        "key_date": "2020-08-08",
        "derived_ids": 96,
    }


@pytest.mark.parametrize(("error_s", "found"), [(0.0, False), (300.0, True)])
def test_gateway_clock_error_is_tolerated(store, shared_data, error_s, found):
    daily, ids = vectors(shared_data)
    k24 = "bluezone:" + ids[24]
    # The gateway's clock runs 5 minutes slow: slot 24 (06:00-06:15) was stamped 05:55-06:05.
    ingest(
        store,
        [
            rec(k24, hms(5, 40), hms(5, 58)),
            rec("ibeacon:w:1:1", hms(5, 30), hms(6, 30)),
        ],
    )
    rule = Rule(clock_error_s=error_s)
    seed = contacts.bluezone_seed(daily, DAY, hms(6, 0), hms(6, 15), rule)
    assert [s[0] for s in seed.slots] == [k24]
    answer = contacts.contacts(store, seed, hms(5, 0), hms(7, 0), rule)
    assert bool(answer["exposures"]) is found
    assert answer["case"]["rule"]["clock_error_s"] == error_s


def test_a_later_day_is_reached_through_the_hash_chain(store, shared_data):
    daily, _ids = vectors(shared_data)
    from beacon.bluezone import ids_for_day, next_daily_key

    next_day_id = (
        "bluezone:" + ids_for_day(next_daily_key(bytes.fromhex(daily)))[4].hex()
    )
    ingest(store, [rec(next_day_id, T0 + 86400 + 3600, T0 + 86400 + 4000)])
    seed = contacts.bluezone_seed(daily, DAY, T0, T0 + 2 * 86400, Rule())
    answer = contacts.contacts(store, seed, T0, T0 + 2 * 86400, Rule())
    assert [e["from"] for e in answer["exposures"]] == ["2020-08-09T01:00:00Z"]


def test_saved_extract_keeps_derived_ids_not_the_key(
    tmp_path, shared_data, capsys, monkeypatch
):
    from central.cli import main
    from central.store import open_store

    daily, ids = vectors(shared_data)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("storage: sqlite:c.sqlite\n")
    monkeypatch.setattr("sys.stdin", io.StringIO(daily + "\n"))
    code = main(["contacts", "--config", str(cfg), "--bluezone-daily-key", "-",
                 "--key-date", "2020-08-08", "--from", "2020-08-08T05:00:00Z",
                 "--to", "2020-08-08T07:00:00Z", "--save", "case-bz"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert daily.lower() not in out.lower()
    store = open_store(f"sqlite://{tmp_path}/c.sqlite")
    extract = store.get_case_extract(json.loads(out)["case"]["extract_id"])["answer"]
    slots = extract["case"]["derived_slots"]
    assert [
        "bluezone:" + ids[23],
        "2020-08-08T05:45:00Z",
        "2020-08-08T06:00:00Z",
    ] in slots
    assert len(slots) == 8
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("c.sqlite*"))
    assert daily.lower().encode() not in raw.lower()
    assert bytes.fromhex(daily) not in raw
