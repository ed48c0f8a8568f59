"""The contacts answer leaves out the site's registered beacons (store path)."""

from __future__ import annotations

from central import contacts
from central.beacon_check import beacon_index
from central.commands.beacon import registered
from central.records import batch_rows
from central.rules import Rule, Seed
from gateway.envelope import make_body

T0 = 1_596_844_800.0  # 2020-08-08T00:00:00Z


def test_a_registered_beacon_in_the_room_is_not_a_contact(store):
    store.add_beacon(
        "room-a-1", "mine-a", "room-a", base_key="11" * 32, created=T0 - 86400
    )
    index = beacon_index(registered(store), T0 + 3600, T0 + 7200)
    beacon_key = sorted(index)[0]
    slot = index[beacon_key]
    assert slot.zone == "room-a"
    a, b = slot.start, slot.end  # the 15 minutes this ID was on air

    def rec(seq, key, start, end):
        return {"kind": "presence", "seq": seq, "zone": "room-a",
                "zone_kind": "shift_room", "key": key, "keys": [key],
                "start": start, "end": end,
                "band_s": {"immediate": 0.0, "near": end - start, "far": 0.0}}  # fmt: skip

    records = [
        rec(0, "ibeacon:case:1:1", a - 600, b + 600),
        rec(1, beacon_key, a, b),
        rec(2, "ibeacon:w:1:2", a - 600, b),
    ]
    body = make_body(site="mine-a", gateway="gw-a", boot=1, records=records, sent=T0)
    store.ingest(batch_rows(body, T0), received=T0, signed=False)
    seed = Seed("device", "ibeacon:case:1:1")
    rule = Rule(min_minutes=10)
    got = contacts.contacts(store, seed, T0, T0 + 86400, rule)
    assert [c["key"] for c in got["contacts"]] == ["ibeacon:w:1:2"]
    # Without the registry (an explicit empty set) the beacon reads like a person.
    raw = contacts.contacts(store, seed, T0, T0 + 86400, rule, beacons=frozenset())
    assert sorted(c["key"] for c in raw["contacts"]) == sorted(
        ["ibeacon:w:1:2", beacon_key]
    )
