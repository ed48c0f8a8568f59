"""The simulator's advertising, determinism, truth and the `sim:` source."""

from __future__ import annotations

import collections
import json
import math
from pathlib import Path

import pytest

from beacon import bluezone, gaen
from gateway import sources
from gateway.errors import ConfigError, UsageError
from gateway.sim.engine import (
    BLUEZONE_CYCLE_S,
    BLUEZONE_ON_S,
    IOS_SERVICE_UUID_LE,
    Simulator,
)
from gateway.sim.gatt import GattTable, SimGattReader
from gateway.sim.scenario import load_scenario
from gateway.sim.truth import TruthWriter, load_jsonl, load_pairs

ONE_PHONE = """
site: t
date: "2020-08-08"
start: "05:50"
hours: {hours}
seed: {seed}
receiver: {{report_interval_s: 0.5, packet_error: 0.0, scan_duty: 1.0}}
zones:
  - {{name: room, kind: shift_room, width: 6, length: 5}}
groups:
  - name: p
    count: 1
    devices: {{bluezone_android: {bza}, bluezone_ios: {bzi}, gaen: {en}, tag: 0.0,
               pocket: 0.0}}
    plan:
      - {{zones: [room], start: "05:50", end: "08:00", jitter_min: 0}}
"""


def _scenario(tmp_path: Path, text: str):
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return load_scenario(str(path))


def _run(scenario, out: Path | None = None):
    sim = Simulator(scenario, TruthWriter(str(out) if out else None))
    return sim, list(sim.reports())


def test_same_seed_same_trace_other_seed_differs():
    sc = load_scenario("small")
    import dataclasses

    short = dataclasses.replace(sc, hours=0.25)
    _, a = _run(short)
    _, b = _run(short)
    _, c = _run(dataclasses.replace(short, seed=8))
    assert len(a) > 1000
    assert a == b
    assert a != c
    assert [r.t for r in a] == sorted(r.t for r in a)


def test_bluezone_android_duty_cycle_and_real_ids_at_slot_boundaries(tmp_path):
    sc = _scenario(
        tmp_path, ONE_PHONE.format(hours=0.75, seed=3, bza=1.0, bzi=0.0, en=0.0)
    )
    sim, reports = _run(sc)
    (dev,) = sim.people[0].devices
    assert dev.kind == "bluezone_android"
    assert len(reports) > 500
    # 15 s on / 15 s off: every report falls in an on-phase of the phone's cycle.
    for r in reports:
        assert (r.t - dev.restart_offset) % BLUEZONE_CYCLE_S <= BLUEZONE_ON_S + 1e-6
    # Off-phases are really silent: about half the 0.5 s ticks have a report.
    assert 0.35 < len(reports) / (0.75 * 3600 / 0.5) < 0.55
    # The IDs are the real derivation from the phone's base key (protocols.md 1.5).
    day = int(sc.start_unix // 86400)
    daily = bluezone.daily_key_from_base(dev.base_key, day - dev.base_day)
    ids = bluezone.ids_for_day(daily)
    boundary = bluezone.slot_start(sc.start_unix) + 900  # 06:00 UTC
    for r in reports:
        advertised = r.data[7:19]
        assert r.data[:3] == b"\x02\x01\x06"
        assert r.data[19:23] == bytes.fromhex("0303564e")
        slot_now = bluezone.slot_of(r.t)
        # The ID is re-read at each restart: the new slot's ID within 30 s of the
        # boundary, the old one never later than that.
        if r.t - bluezone.slot_start(r.t) >= BLUEZONE_CYCLE_S:
            assert advertised == ids[slot_now]
        else:
            assert advertised in (ids[slot_now], ids[slot_now - 1])
    seen_new = min(
        r.t for r in reports if r.data[7:19] == ids[bluezone.slot_of(boundary)]
    )
    assert boundary <= seen_new < boundary + BLUEZONE_CYCLE_S


def test_exposure_notification_rpi_and_address_change_together(tmp_path):
    sc = _scenario(
        tmp_path, ONE_PHONE.format(hours=2.0, seed=5, bza=0.0, bzi=0.0, en=1.0)
    )
    sim, reports = _run(sc)
    (dev,) = sim.people[0].devices
    first_seen: dict[bytes, float] = {}
    addr_of: dict[bytes, set[str]] = collections.defaultdict(set)
    for r in reports:
        rpi = r.data[11:27]
        first_seen.setdefault(rpi, r.t)
        addr_of[rpi].add(r.addr)
        assert r.connectable is False
    assert all(len(a) == 1 for a in addr_of.values())
    assert len({next(iter(a)) for a in addr_of.values()}) == len(addr_of)
    starts = sorted(first_seen.values())
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert len(gaps) >= 5
    assert all(590 <= g <= 1210 for g in gaps)  # 10-20 min, a report every 0.5 s
    # Each RPI is the key schedule's for the interval it started in; the AEM
    # decrypts to version 1.0 metadata with the TX power.
    rpik, aemk = next(iter(dev.tek.values()))
    for rpi, t in first_seen.items():
        expected = {gaen.rpi(rpik, gaen.interval_number(t) - k) for k in (0, 1)}
        assert rpi in expected
    r = reports[-1]
    assert gaen.aem(aemk, r.data[11:27], r.data[27:31])[:2] == bytes([0x40, 0xE8])


def test_truth_of_a_hand_made_scenario(tmp_path):
    text = """
site: t
date: "2020-08-08"
start: "06:00"
hours: 1
zones:
  - {name: room, kind: dormitory, width: 4, length: 3}
  - {name: bus, kind: bus, width: 2.5, length: 11}
buses:
  - zone: bus
    trips:
      - depart: "06:30"
        arrive: "06:50"
        stops: [{at_min: 5, dwell_min: 2, passers_by: 2}]
groups:
  - name: a
    count: 2
    plan:
      - {zones: [room], start: "06:00", end: "06:20", jitter_min: 0}
      - {zones: [bus], start: "06:30", end: "06:50"}
  - name: c
    count: 1
    plan: [{zones: [room], start: "06:10", end: "06:40", jitter_min: 0}]
  - name: early
    count: 1
    plan:
      - {zones: [bus], start: "04:00", end: "04:30", jitter_min: 0}
      - {zones: [room], start: "05:00", end: "06:05", jitter_min: 0}
"""
    sc = _scenario(tmp_path, text)
    _run(sc, tmp_path / "out")
    pairs = {(p["a"], p["b"], p["zone"]): p for p in load_pairs(str(tmp_path / "out"))}
    assert pairs[("a-001", "a-002", "room")]["shared_min"] == 20.0
    assert pairs[("a-001", "c-001", "room")]["shared_min"] == 10.0
    assert pairs[("a-002", "c-001", "room")]["shared_min"] == 10.0
    assert pairs[("a-001", "a-002", "bus")]["shared_min"] == 20.0
    assert pairs[("a-001", "a-002", "bus")]["kind"] == "bus"
    assert not any("passer" in a or "passer" in b for a, b, _z in pairs)
    presence = load_jsonl(str(tmp_path / "out" / "presence.jsonl"))
    # Truth covers the simulated span only: the early bird's ride before 06:00 is
    # not there, and the room stay starts at 06:00.
    early = [p for p in presence if p["person"] == "early-001"]
    assert [(p["zone"], p["end"] - p["start"]) for p in early] == [("room", 300.0)]
    assert pairs[("a-001", "early-001", "room")]["shared_min"] == 5.0
    passers = [p for p in presence if p["role"] == "passer-by"]
    assert len(passers) == 2
    assert all(p["zone"] is None and p["end"] - p["start"] == 120 for p in passers)
    # close minutes never exceed shared minutes in the same zone
    for p in pairs.values():
        assert p["close_min"] <= p["shared_min"] + 1.01


def test_iphone_gatt_table_gives_the_ids_in_keys(tmp_path):
    sc = _scenario(
        tmp_path, ONE_PHONE.format(hours=0.6, seed=9, bza=0.0, bzi=1.0, en=0.0)
    )
    out = tmp_path / "out"
    _, reports = _run(sc, out)
    assert reports
    assert all(
        IOS_SERVICE_UUID_LE in r.data
        or (r.scan_rsp and b"Bluezone" in r.data)
        or r.data[5:8] == b"\x4c\x00\x01"
        for r in reports
    )
    table = GattTable.from_jsonl(str(out / "gatt.jsonl"))
    keys = load_jsonl(str(out / "keys.jsonl"))
    for r in reports[::50]:
        value = table.lookup(r.addr, r.t)
        assert value is not None
        assert any(
            k["key"] == "bluezone:" + value.hex() and k["from"] <= r.t < k["to"] + 1e-6
            for k in keys
        )
    now = [reports[0].t]
    reader = SimGattReader(table.lookup, lambda: now[0], fail_ratio=0.0)
    from gateway.gatt import ReadRequest
    from gateway.models import AddrType

    reader.submit(ReadRequest(reports[0].addr, AddrType.RANDOM, -50))
    assert reader.busy
    (result,) = reader.results()
    assert result.ok
    assert len(result.value) == 12


def test_sim_source_through_open_source():
    src = sources.open_source("sim:small?hours=0.1&seed=3", gateway="dorm-1")
    got = list(src)
    assert src.ended
    assert got
    assert {r.gateway for r in got} == {"dorm-1"}
    everything = list(sources.open_source("sim:small?hours=0.1&seed=3"))
    assert [r for r in everything if r.gateway == "dorm-1"] == got
    with pytest.raises(UsageError):
        sources.open_source("sim:small", gateway="no-such-gateway")
    with pytest.raises(UsageError):
        sources.open_source("sim:small?speed=2")


def test_bad_scenario_names_line_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        'site: s\ndate: "2020-08-08"\nzones:\n  - {name: r, kind: lounge}\ngroups: []\n'
    )
    with pytest.raises(ConfigError) as info:
        load_scenario(str(path))
    assert info.value.line == 4
    assert "kind" in info.value.key


def test_embedded_scenarios_load():
    site = load_scenario("mine-site")
    kinds = {z.kind for z in site.zones}
    assert kinds == {"entrance", "shift_room", "yard", "dormitory", "bus"}
    assert sum(g.count for g in site.groups) >= 180
    assert math.isclose(site.hours, 24.0)
    assert json.dumps(site.site)
