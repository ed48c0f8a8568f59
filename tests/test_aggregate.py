"""Table tests with explicit times for presence stays (gaps, splits, stats, bus stop)."""

from __future__ import annotations

import pytest

from gateway.aggregate import (
    REJECT_SHORT,
    REJECT_SPARSE,
    REJECT_WEAK,
    PresenceAggregator,
    hist_median,
)
from gateway.bands import Bands
from gateway.zones import rules_for


def agg(kind: str = "shift_room") -> PresenceAggregator:
    return PresenceAggregator(
        gateway="g1", zone="z1", zone_kind=kind, rules=rules_for(kind), bands=Bands()
    )


def run(a: PresenceAggregator, sightings, end: float) -> list[dict]:
    out: list[dict] = []
    for t, key, rssi in sightings:
        a.add(t, key, "ibeacon", "AA:AA", rssi)
        out += a.advance(t)
    out += a.advance(end)
    out += a.close_all()
    return out


@pytest.mark.parametrize(
    ("times", "n_records"),
    [
        # Bluezone 15 s on / 15 s off: heard at 0..14, silent 15..29, heard 30..44: one stay.
        ([0, 5, 10, 14, 30, 35, 44], 1),
        # A 59-s silence is within the 60-s shift-room gap; 61 s is not.
        ([0, 59], 1),
        ([0, 61.5], 2),
        ([0, 10, 100, 110], 2),
    ],
)
def test_gap_tolerance(times, n_records):
    out = run(agg(), [(t, "ibeacon:x:1:1", -60) for t in times], end=1000)
    assert len(out) == n_records
    assert sum(r["n"] for r in out) == len(times)


def test_split_long_stay_into_consecutive_records():
    a = agg()  # max_record_s 1800
    times = [float(t) for t in range(0, 4000, 10)]
    out = run(a, [(t, "ibeacon:x:1:1", -60) for t in times], end=5000)
    assert [r["part"] for r in out] == [0, 1, 2]
    for prev, nxt in zip(out, out[1:]):
        assert prev["end"] == nxt["start"]  # consecutive
        assert nxt["stay_start"] == 0.0
    assert all(r["end"] - r["start"] <= 1800 for r in out)
    assert out[0]["start"] == 0.0
    assert out[-1]["end"] == times[-1]
    assert sum(r["n"] for r in out) == len(times)


def test_rssi_stats_and_band_seconds():
    a = agg()
    # bands: immediate >= -49, near >= -65, far below
    seq = [(0.0, -40), (10.0, -60), (30.0, -80), (40.0, -61)]
    out = run(a, [(t, "ibeacon:x:1:1", r) for t, r in seq], end=500)
    (rec,) = out
    assert (rec["n"], rec["rssi_min"], rec["rssi_max"]) == (4, -80, -40)
    assert rec["rssi_median"] == -60.5
    # sample and hold: 0-10 immediate, 10-30 near, 30-40 far
    assert rec["band_s"] == {"immediate": 10.0, "near": 20.0, "far": 10.0}
    assert sum(rec["band_s"].values()) == rec["end"] - rec["start"]


def test_offsets_move_bands():
    a = PresenceAggregator(
        gateway="g",
        zone="z",
        zone_kind="shift_room",
        rules=rules_for("shift_room"),
        bands=Bands(rssi_offset_db=5.0, format_offset_db={"ibeacon": 10.0}),
    )
    out = run(a, [(0.0, "k", -62), (10.0, "k", -62)], end=500)
    assert out[0]["band_s"]["immediate"] == 10.0  # -62 + 15 = -47


def test_hist_median():
    assert hist_median({-60: 1}, 1) == -60
    assert hist_median({-60: 1, -50: 1}, 2) == -55
    assert hist_median({-70: 2, -50: 1}, 3) == -70


@pytest.mark.parametrize(
    ("label", "seq", "expect"),
    [
        # A rider: 20 minutes, strong, heard every 10 s.
        ("rider", [(float(t), -70) for t in range(0, 1200, 10)], None),
        # A passer-by at a stop: 90 s next to the bus, strong.
        ("stop", [(float(t), -60) for t in range(0, 90, 5)], REJECT_SHORT),
        # Someone at the roadside for 4 minutes, through the cabin wall.
        ("wall", [(float(t), -92) for t in range(0, 240, 5)], REJECT_WEAK),
        # Heard once a minute for 4 minutes: 5 of 12 20-s windows.
        (
            "bursts",
            [(0.0, -70), (58.0, -70), (116.0, -70), (174.0, -70), (232.0, -70)],
            REJECT_SPARSE,
        ),
    ],
)
def test_bus_stop_rule(label, seq, expect):
    a = agg("bus")
    out = run(a, [(t, "gaen:" + label, r) for t, r in seq], end=5000)
    if expect is None:
        assert len(out) == 1
        assert out[0]["n"] == len(seq)
    else:
        assert out == []
        assert a.rejected[expect] == len(seq)
    assert a.recorded + sum(a.rejected.values()) == len(seq)


def test_room_accepts_short_stay():
    out = run(agg("shift_room"), [(0.0, "k", -90)], end=100)
    assert len(out) == 1
    assert out[0]["start"] == out[0]["end"] == 0.0
