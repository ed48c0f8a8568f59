"""The contact rule on hand-made encounters (pure)."""

from __future__ import annotations

from central import rules
from central.rules import Interval, PresenceRow, RefData, Rule, Seed, ZoneRef

T0 = 1_600_000_200.0
M = 60.0
H = 3600.0


def row(
    key, start, end, *, gw="gw-1", zone="room", kind="shift_room", seq=[0], near=None
):  # noqa: B006
    seq[0] += 1
    return PresenceRow(gw, 1, seq[0], "site", zone, kind, key, (key,), start, end,
                       0.0, (end - start) if near is None else near, 0.0)  # fmt: skip


def answer(rows, seed="k:case", rule=Rule(), depth=1, ref=None, t1=T0 + 3 * 24 * H):
    return rules.reference_contacts(
        rows, ref or RefData(), Seed("device", seed), T0, t1, rule, depth=depth
    )


def test_cumulative_minutes_in_enclosed_zone():
    rows = [row("k:case", T0, T0 + 8 * H)]
    rows += [row("k:a", T0 + i * H, T0 + i * H + 5 * M) for i in range(3)]  # 3 x 5 min
    rows += [row("k:b", T0, T0 + 14 * M)]  # 14 min: not enough
    (contact,) = answer(rows)["contacts"]
    assert (contact["key"], contact["minutes"], contact["class"], contact["level"]) == (
        "k:a",
        15.0,
        "F1_enclosed",
        1,
    )
    assert answer(rows, rule=Rule(min_minutes=14))["contacts"][1]["key"] == "k:b"


def test_worst_24_hours_not_the_whole_window():
    rows = [row("k:case", T0, T0 + 40 * H)]
    rows += [row("k:a", T0 + h * H, T0 + h * H + 5 * M) for h in (0, 13, 26, 39)]
    # Any 24 h holds at most two of the four 5-minute stays.
    assert answer(rows)["contacts"] == []
    (c,) = answer(rows, rule=Rule(min_minutes=10))["contacts"]
    assert c["minutes"] == 10.0
    (c,) = answer(rows, rule=Rule(min_minutes=20, window_h=48))["contacts"]
    assert c["minutes"] == 20.0


def test_open_zone_needs_the_near_band():
    rows = [row("k:case", T0, T0 + 30 * M, zone="yard", kind="yard", near=20 * M)]
    rows += [row("k:far", T0, T0 + 30 * M, zone="yard", kind="yard", near=2 * M)]
    rows += [row("k:near", T0, T0 + 30 * M, zone="yard", kind="yard", near=16 * M)]
    (c,) = answer(rows)["contacts"]
    assert (c["key"], c["minutes"], c["class"]) == ("k:near", 16.0, "F1_proximity")


def test_two_gateways_in_one_zone_do_not_double_count():
    rows = [
        row("k:case", T0, T0 + 10 * M, gw="gw-1"),
        row("k:case", T0, T0 + 10 * M, gw="gw-2"),
    ]
    rows += [
        row("k:a", T0, T0 + 10 * M, gw="gw-1"),
        row("k:a", T0, T0 + 10 * M, gw="gw-2"),
    ]
    assert answer(rows)["contacts"] == []
    (c,) = answer(rows, rule=Rule(min_minutes=10))["contacts"]
    assert c["minutes"] == 10.0


def test_other_zone_or_time_is_no_contact_and_exposures_are_listed():
    rows = [row("k:case", T0, T0 + H), row("k:a", T0, T0 + H, zone="other"),
            row("k:b", T0 + H, T0 + 2 * H)]  # fmt: skip
    out = answer(rows)
    assert out["contacts"] == []
    assert out["exposures"] == [
        {
            "zone": "room",
            "gateway": "gw-1",
            "from": rules.iso(T0),
            "to": rules.iso(T0 + H),
        }
    ]


def test_person_seed_through_tags_and_depth_two():
    ref = RefData(
        zones={"bus": ZoneRef("bus", "bus", True)},
        tags={
            "k:tag1": [Interval(T0 - H, None, "P-case")],
            "k:tag2": [Interval(T0 - H, T0 + 5 * H, "P-f1")],
            "k:tag3": [Interval(T0 - H, None, "P-f2")],
        },
    )
    rows = [
        row("k:tag1", T0, T0 + 30 * M, zone="bus", kind="bus"),
        row("k:tag2", T0, T0 + 30 * M, zone="bus", kind="bus"),
        # The F1 later meets P-f2 in a room; before meeting the case it doesn't count.
        row("k:tag2", T0 + 2 * H, T0 + 3 * H, zone="room"),
        row("k:tag3", T0 + 2 * H, T0 + 3 * H, zone="room"),
        row("k:tag3", T0 - 2 * H, T0 - H, zone="bus", kind="bus"),
    ]
    out = rules.reference_contacts(
        rows, ref, Seed("person", "P-case"), T0 - 3 * H, T0 + 24 * H, Rule(), depth=2
    )
    got = [
        (c["person"], c["level"], c["minutes"], c.get("via")) for c in out["contacts"]
    ]
    assert got == [("P-f1", 1, 30.0, None), ("P-f2", 2, 60.0, ["P-f1"])]


def test_worst_window_and_capped_segments():
    segs = rules.capped_segments([(0, 10, 1.0), (5, 15, 1.0), (20, 30, 0.5)])
    assert segs == [(0, 15, 1.0), (20, 30, 0.5)]  # adjacent equal densities coalesce
    assert rules.worst_window(segs, 10) == (10.0, 0)
    assert rules.worst_window(segs, 30)[0] == 20.0


def _brute_worst(segments, window_s):
    best = 0.0
    points = {a for a, _b, _d in segments} | {b - window_s for _a, b, _d in segments}
    for s in points:
        total = sum(
            d * max(0.0, min(b, s + window_s) - max(a, s)) for a, b, d in segments
        )
        best = max(best, total)
    return best


def test_worst_window_matches_brute_force_on_random_pieces():
    import random

    rnd = random.Random(5)
    for _ in range(300):
        pieces = []
        for _p in range(rnd.randint(1, 12)):
            a = rnd.uniform(0, 200)
            pieces.append((a, a + rnd.uniform(0.5, 40), rnd.choice([1.0, 0.5, 0.25])))
        segs = rules.capped_segments(pieces)
        window = rnd.uniform(5, 120)
        assert (
            abs(rules.worst_window(segs, window)[0] - _brute_worst(segs, window)) < 1e-6
        )


def heard(key, start, end, rssi, *, gw, zone, kind="dormitory", site="site", seq=[0]):  # noqa: B006
    seq[0] += 1
    return PresenceRow(gw, 1, seq[0], site, zone, kind, key, (key,), start, end,
                       0.0, 0.0, 0.0, rssi)  # fmt: skip


def test_strongest_zone_attributes_a_period_heard_in_two_rooms():
    # Rooms A and B side by side; the case sleeps in A. k:b sleeps in B, heard in A
    # through the wall (weaker); k:a sleeps in A.
    rows = [
        heard("k:case", T0, T0 + 8 * H, -60, gw="gA", zone="A"),
        heard("k:case", T0, T0 + 8 * H, -82, gw="gB", zone="B"),
        heard("k:a", T0, T0 + 8 * H, -58, gw="gA", zone="A"),
        heard("k:b", T0, T0 + 8 * H, -80, gw="gA", zone="A"),
        heard("k:b", T0, T0 + 8 * H, -62, gw="gB", zone="B"),
    ]
    got = answer(rows)
    assert [c["key"] for c in got["contacts"]] == ["k:a"]
    assert {e["zone"] for e in got["exposures"]} == {"A"}
    # Without the attribution the wall's echo makes k:b a contact in both rooms.
    off = answer(rows, rule=Rule(strongest_zone=False))
    assert sorted(c["key"] for c in off["contacts"]) == ["k:a", "k:b"]
    assert Rule().as_dict()["strongest_zone"] is True


def test_strongest_zone_cuts_only_the_overlap_and_keeps_ties_and_unknowns():
    case = heard("k:case", T0, T0 + 8 * H, -60, gw="gA", zone="A")
    # k:b in A from 0 to 60 min (weak), and louder in B from 20 to 40 min only:
    # A keeps 0-20 and 40-60 (40 minutes), split in two.
    b_a = heard("k:b", T0, T0 + 60 * M, -80, gw="gA", zone="A")
    b_b = heard("k:b", T0 + 20 * M, T0 + 40 * M, -70, gw="gB", zone="B")
    ref = RefData()
    items = rules.resolve([b_a, b_b], ref, T0, T0 + H)
    cut = rules.strongest_zone(items[:1], items)
    assert [(i.start - T0, i.end - T0) for i in cut] == [(0, 20 * M), (40 * M, 60 * M)]
    # Rule.handover_s (2 min) at each edge of the louder period inside the record is
    # not taken (walking between rooms; clocks agree within 2 minutes): 22 + 22 min.
    (c,) = answer([case, b_a, b_b])["contacts"]
    assert c["minutes"] == 44.0
    (c,) = answer([case, b_a, b_b], rule=Rule(handover_s=0))["contacts"]
    assert c["minutes"] == 40.0
    # Consecutive parts of one louder stay are one period: no margin at the split.
    parts = [
        heard("k:b", T0 + 20 * M, T0 + 30 * M, -70, gw="gB", zone="B"),
        heard("k:b", T0 + 30 * M, T0 + 40 * M, -75, gw="gB", zone="B"),
    ]
    (c,) = answer([case, b_a, *parts])["contacts"]
    assert c["minutes"] == 44.0
    # Equal medians, or a record without a median: nothing is cut.
    tie = heard("k:b", T0 + 20 * M, T0 + 40 * M, -80, gw="gB", zone="B")
    unknown = heard("k:b", T0 + 20 * M, T0 + 40 * M, None, gw="gB", zone="B")
    for other in (tie, unknown):
        (c,) = answer([case, b_a, other])["contacts"]
        assert c["minutes"] == 60.0
    # Another site never takes time from a room.
    far = heard("k:b", T0, T0 + 60 * M, -40, gw="gX", zone="X", site="other")
    (c,) = answer([case, b_a, far])["contacts"]
    assert c["minutes"] == 60.0
    # Heard louder in the open yard outside for 30 minutes: in the yard then. The
    # yard's own record is never cut (its near seconds are not spread over time).
    yard = heard("k:b", T0 + 30 * M, T0 + 60 * M, -60, gw="gY", zone="Y", kind="yard")
    (c,) = answer([case, b_a, yard])["contacts"]
    assert c["minutes"] == 32.0  # the yard period ends with the record: no margin there
    items = rules.resolve([yard, b_a], RefData(), T0, T0 + H)
    assert rules.strongest_zone(items[:1], items) == items[:1]
    # The same zone heard by two gateways is not a conflict.
    twin = heard("k:b", T0, T0 + 60 * M, -40, gw="gA2", zone="A")
    (c,) = answer([case, b_a, twin])["contacts"]
    assert c["minutes"] == 60.0


def test_registered_beacons_are_not_contacts():
    rows = [
        row("k:case", T0, T0 + 2 * H),
        row("bluezone:beacon", T0, T0 + 2 * H),
        row("k:a", T0, T0 + 30 * M),
    ]
    got = rules.reference_contacts(
        rows, RefData(), Seed("device", "k:case"), T0, T0 + H, Rule(),
        beacon_keys=frozenset({"bluezone:beacon"}),
    )  # fmt: skip
    assert [c["key"] for c in got["contacts"]] == ["k:a"]
    assert len(answer(rows)["contacts"]) == 2
