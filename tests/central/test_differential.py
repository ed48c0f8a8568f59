"""Differential: the store-backed contacts (SQLite and PostgreSQL) equal the pure
full-scan reference on generated encounter sets."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings

from central import contacts, rules
from central.records import batch_rows
from central.rules import Interval, PresenceRow, RefData, Rule, Seed, ZoneRef
from gateway.envelope import make_body

T0 = 1_600_000_200.0
ZONES = {"z0": ("shift_room", True), "z1": ("bus", True), "z2": ("yard", False),
         "z3": ("dormitory", True), "z4": ("dormitory", True)}  # fmt: skip
# gateway -> zone it reports itself in; g3 is moved by reference data at T0 + 3 h.
# g4 and g5 are two dormitory rooms side by side: the same keys at the same time in
# both (and in z0) exercise the strongest-zone attribution.
GATEWAYS = {"g0": "z0", "g1": "z0", "g2": "z2", "g3": "z1", "g4": "z3", "g5": "z4"}
# Registered beacon IDs (never people): k:6 is one.
BEACONS = frozenset({"k:6"})
KEYS = [f"k:{i}" for i in range(7)]

record = st.tuples(
    st.sampled_from([0, 0, 1, 2, 3, 3, 4, 5, 6]),  # key (the case's more often)
    st.sampled_from(sorted(GATEWAYS)),
    st.integers(0, 12),  # start in 30-minute steps (dense: six hours)...
    st.integers(0, 29),  # ...plus an offset in minutes
    st.integers(1, 240),  # duration minutes
    st.floats(0.0, 1.0),  # near fraction
    st.one_of(st.none(), st.integers(0, len(KEYS) - 1)),  # a chained second key
    st.one_of(st.none(), st.integers(-100, -40)),  # rssi_median (None: not reported)
)
scenario = st.fixed_dictionaries(
    {
        "records": st.lists(record, min_size=4, max_size=30),
        "seed": st.sampled_from(["device", "person"]),
        "min_minutes": st.sampled_from([5.0, 15.0]),
        "depth": st.sampled_from([1, 2]),
        "window": st.sampled_from([(0, 24), (2, 5), (-1, 48)]),
        "strongest_zone": st.booleans(),
        "beacons": st.booleans(),
    }
)


def ref_data() -> RefData:
    ref = RefData(zones={z: ZoneRef(z, k, e) for z, (k, e) in ZONES.items()})
    ref.gateway_zones["g3"] = [Interval(T0 - 100 * 3600, T0 + 3 * 3600, "z1"),
                               Interval(T0 + 3 * 3600, None, "z0")]  # fmt: skip
    ref.tags = {
        "k:0": [
            Interval(T0 - 3600, T0 + 4 * 3600, "P0"),
            Interval(T0 + 4 * 3600, None, "P1"),
        ],
        "k:1": [Interval(T0 - 3600, None, "P0")],
        "k:2": [Interval(T0 + 2 * 3600, None, "P2")],
    }
    return ref


def load_ref(store) -> None:
    with store.transaction():
        for z, (kind, enclosed) in ZONES.items():
            store.upsert_zone(z, "s", None, kind, enclosed, None)
        store.set_gateway_zone("g3", "z1", T0 - 100 * 3600, T0 + 3 * 3600)
        store.set_gateway_zone("g3", "z0", T0 + 3 * 3600, None)
        store.assign_tag("k:0", "P0", T0 - 3600, T0 + 4 * 3600)
        store.assign_tag("k:0", "P1", T0 + 4 * 3600, None)
        store.assign_tag("k:1", "P0", T0 - 3600, None)
        store.assign_tag("k:2", "P2", T0 + 2 * 3600, None)


def reset(store) -> None:
    with store.transaction():
        for table in ("batches", "presence", "presence_keys", "gateway_zones_seen",
                      "zones", "gateway_zones", "tag_assignments"):  # fmt: skip
            store._execute(f"DELETE FROM {table}")  # noqa: S608
        store._execute("UPDATE meta SET value = '0' WHERE name = 'max_presence_s'")
    store._max_presence_s = None


def build(records):
    dicts, rows = [], []
    for seq, (k, gw, slot, off, dur, near, extra, rssi) in enumerate(records):
        start = T0 + slot * 1800 + off * 60
        end = start + dur * 60
        keys = sorted({KEYS[k]} | ({KEYS[extra]} if extra is not None else set()))
        zone = GATEWAYS[gw]
        d = {"kind": "presence", "seq": seq, "zone": zone, "zone_kind": ZONES[zone][0],
             "key": KEYS[k], "keys": keys, "start": start, "end": end,
             "band_s": {"immediate": 0.0, "near": near * (end - start), "far": 0.0}}  # fmt: skip
        if rssi is not None:
            d["rssi_median"] = float(rssi)
        dicts.append((gw, d))
        rows.append(PresenceRow(gw, 1, seq, "s", zone, ZONES[zone][0], KEYS[k], tuple(keys),
                                start, end, 0.0, near * (end - start), 0.0,
                                None if rssi is None else float(rssi)))  # fmt: skip
    return dicts, rows


def strip(answer):
    return {k: v for k, v in answer.items() if k != "case"}


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(sc=scenario)
def test_store_answers_equal_the_reference(store, sc):
    reset(store)
    load_ref(store)
    dicts, rows = build(sc["records"])
    for gw in GATEWAYS:
        mine = [d for g, d in dicts if g == gw]
        if mine:
            body = make_body(site="s", gateway=gw, boot=1, records=mine, sent=T0)
            store.ingest(batch_rows(body, T0), received=T0, signed=False)
    rule = Rule(min_minutes=sc["min_minutes"], strongest_zone=sc["strongest_zone"])
    beacons = BEACONS if sc["beacons"] else frozenset()
    seed = Seed("device", "k:0") if sc["seed"] == "device" else Seed("person", "P0")
    a, b = sc["window"]
    t0, t1 = T0 + a * 3600, T0 + b * 3600
    expected = rules.reference_contacts(
        rows, ref_data(), seed, t0, t1, rule, depth=sc["depth"], beacon_keys=beacons
    )
    got = contacts.contacts(
        store, seed, t0, t1, rule, depth=sc["depth"], beacons=beacons
    )
    assert strip(got) == strip(expected)
    assert got["case"]["rule"]["min_minutes"] == sc["min_minutes"]
