"""Table tests for rotating-ID chaining (design.md, Rotating IDs)."""

from __future__ import annotations

from gateway import chain
from gateway.aggregate import PresenceAggregator
from gateway.bands import Bands
from gateway.zones import rules_for

T0 = 1_596_866_400.0  # 2020-08-08 06:00:00 UTC, a slot boundary


def run(streams, wall_offset=0.0, kind="shift_room"):
    """streams: [(key, fmt, addr, rssi, t_from, t_to, step)] merged in time order."""
    a = PresenceAggregator(
        gateway="g",
        zone="z",
        zone_kind=kind,
        rules=rules_for(kind),
        bands=Bands(),
        wall_offset=lambda: wall_offset,
    )
    events = []
    for key, fmt, addr, rssi, t0, t1, step in streams:
        t = t0
        while t <= t1:
            events.append((t, key, fmt, addr, rssi))
            t += step
    events.sort()
    out = []
    for t, key, fmt, addr, rssi in events:
        a.add(t, key, fmt, addr, rssi)
        out += a.advance(t)
    out += a.advance(events[-1][0] + 1000)
    out += a.close_all()
    return a, out


def test_bluezone_slot_boundary_chains_a_bus_ride():
    # 40 minutes, IDs change at the :15 slot boundaries with ~20 s of silence.
    s = [
        ("bluezone:01", "bluezone", "A1", -70, T0 - 600, T0 - 10, 5),
        ("bluezone:02", "bluezone", "A2", -71, T0 + 10, T0 + 890, 5),
        ("bluezone:03", "bluezone", "A3", -69, T0 + 910, T0 + 1800, 5),
    ]
    a, out = run(s, kind="bus")
    assert len(out) == 2  # one stay, split at 1800 s
    assert out[-1]["keys"] == ["bluezone:01", "bluezone:02", "bluezone:03"]
    assert out[-1]["chain_evidence"] == ["slot", "slot"]
    assert out[-1]["chain_confidence"] == 0.8
    assert {r["stay_start"] for r in out} == {T0 - 600}


def test_no_slot_rule_without_synced_clock():
    s = [
        ("bluezone:01", "bluezone", "A1", -70, T0 - 600, T0 - 10, 5),
        ("bluezone:02", "bluezone", "A2", -70, T0 + 10, T0 + 600, 5),
    ]
    _, out = run(s, wall_offset=None)
    assert len(out) == 2


def test_id_change_off_boundary_is_not_chained():
    s = [
        ("bluezone:01", "bluezone", "A1", -70, T0 + 100, T0 + 300, 5),
        ("bluezone:02", "bluezone", "A2", -70, T0 + 320, T0 + 600, 5),
    ]
    _, out = run(s)
    assert len(out) == 2


def test_same_address_chains_even_with_competitors():
    s = [
        ("gaen:01", "gaen", "A1", -60, T0, T0 + 600, 1),
        ("gaen:02", "gaen", "A1", -60, T0 + 601, T0 + 900, 1),
        ("gaen:11", "gaen", "B1", -62, T0, T0 + 600, 1),
        ("gaen:12", "gaen", "B2", -62, T0 + 602, T0 + 900, 1),
    ]
    a, out = run(s)
    keys = sorted(tuple(r["keys"]) for r in out)
    assert ("gaen:01", "gaen:02") in keys
    # B's change has a competitor in the window (A's) with similar RSSI: unchained.
    assert ("gaen:11",) in keys
    assert ("gaen:12",) in keys
    assert a.chain_stats.links["address"] == 1
    assert a.chain_stats.ambiguous >= 1


def test_gaen_rotation_chains_with_lower_confidence():
    s = [
        ("gaen:01", "gaen", "A1", -60, T0, T0 + 700, 0.5),
        ("gaen:02", "gaen", "A2", -63, T0 + 701, T0 + 1300, 0.5),
    ]
    _, out = run(s)
    assert len(out) == 1
    assert out[0]["chain_evidence"] == ["rotation"]
    assert out[0]["chain_confidence"] == 0.6


def test_rssi_jump_or_gap_breaks_the_chain():
    jump = [
        ("gaen:01", "gaen", "A1", -50, T0, T0 + 700, 1),
        ("gaen:02", "gaen", "A2", -85, T0 + 701, T0 + 1300, 1),
    ]
    assert len(run(jump)[1]) == 2
    gap = [  # 50 s of silence > handover 35 s
        ("gaen:01", "gaen", "A1", -60, T0, T0 + 700, 1),
        ("gaen:02", "gaen", "A2", -60, T0 + 750, T0 + 1300, 1),
    ]
    assert len(run(gap)[1]) == 2


def test_two_phones_rotating_with_distinct_rssi_both_chain():
    s = [
        ("gaen:01", "gaen", "A1", -50, T0, T0 + 700, 1),
        ("gaen:02", "gaen", "A2", -51, T0 + 702, T0 + 1300, 1),
        ("gaen:11", "gaen", "B1", -80, T0, T0 + 701, 1),
        ("gaen:12", "gaen", "B2", -79, T0 + 703, T0 + 1300, 1),
    ]
    _, out = run(s)
    assert sorted(tuple(r["keys"]) for r in out) == [
        ("gaen:01", "gaen:02"),
        ("gaen:11", "gaen:12"),
    ]


def test_decide_pure():
    old = chain.Ending("bluezone:01", "bluezone", 899.0, "A", -60)
    new = chain.Beginning("bluezone:02", "bluezone", 905.0, "B", -62)
    kw = {"handover_s": 35.0, "rssi_db": 10.0, "wall_offset_s": 0.0}
    assert chain.decide(old, new, competing=False, **kw) == chain.Link("slot", 0.8)
    assert chain.decide(old, new, competing=True, **kw) is None
    other = chain.Beginning("gaen:02", "gaen", 905.0, "A", -60)
    assert chain.decide(old, other, competing=False, **kw) is None  # family differs
