"""Clock provenance: synced records leave stamped; unsynced ones leave at once as
Held (never kept in RAM), and the first synchronised reading yields the rebase offset."""

from __future__ import annotations

import pytest

from gateway.clock import Clock, Held, rebase_times, shift_times, unrebased

T_SYNC = 1_700_000_000.0


def test_synced_records_are_stamped():
    c = Clock()
    # The first synchronised reading is a sync: held rows of this boot (from an
    # earlier process) must be rebased with its offset.
    assert c.observe(100.0, T_SYNC + 100.0, True) == T_SYNC
    assert c.observe(101.0, T_SYNC + 101.0, True) is None
    ready, held = c.emit([{"kind": "gate", "t": 150.0}])
    assert ready == [{"kind": "gate", "t": T_SYNC + 150.0, "clock": "synced"}]
    assert held == []


def test_unsynced_records_leave_at_once_held_with_their_guess():
    c = Clock()
    # Boot: the wall clock says 1970 + 100 s, not synchronised.
    assert c.observe(100.0, 100.0, False) is None
    ready, held = c.emit([{"kind": "presence", "start": 110.0, "end": 170.0}])
    assert ready == []
    assert held == [
        Held(
            {"kind": "presence", "start": 110.0, "end": 170.0, "clock": "unsynced"}, 0.0
        )
    ]
    assert c.stats.unsynced == 1
    # NTP steps the clock by +1.7e9 s at mono 500: the offset to rebase with.
    offset = c.observe(500.0, T_SYNC + 500.0, True)
    assert offset == T_SYNC
    rec = rebase_times(dict(held[0].record), offset - held[0].offset_s)
    assert rec == {
        "kind": "presence",
        "start": T_SYNC + 110.0,
        "end": T_SYNC + 170.0,
        "clock": "unsynced",
        "rebased": True,
    }
    assert c.stats.syncs == 1


@pytest.mark.parametrize(
    ("readings", "rebase_at"),
    [
        # (mono, wall, synced) readings -> indexes that return an offset
        (
            [(0, 10, False), (1, 11, False), (2, T_SYNC, True), (3, T_SYNC + 1, True)],
            [2],
        ),
        ([(0, T_SYNC, True), (1, T_SYNC + 1, True)], [0]),
        # Sync lost and found again: a second rebase (records made between are held).
        ([(0, T_SYNC, True), (1, T_SYNC + 1, False), (2, T_SYNC + 2, True)], [0, 2]),
        ([(0, 5, False), (1, 6, False)], []),
    ],
)
def test_which_readings_are_syncs(readings, rebase_at):
    c = Clock()
    got = [i for i, r in enumerate(readings) if c.observe(*map(float, r[:2]), r[2])]
    assert got == rebase_at


def test_guess_follows_the_unsynchronised_clock():
    """fake-hwclock restores a saved time while unsynced: each record keeps the offset
    it was stamped with, so the rebase moves each by the right amount."""
    c = Clock()
    c.observe(10.0, 10.0, False)
    (_, [a]) = c.emit([{"t": 11.0}])
    c.observe(20.0, 1_600_000_000.0, False)  # the saved time is restored
    (_, [b]) = c.emit([{"t": 21.0}])
    assert (a.record["t"], a.offset_s) == (11.0, 0.0)
    assert (b.record["t"], b.offset_s) == (1_600_000_001.0, 1_599_999_980.0)
    offset = c.observe(30.0, T_SYNC + 30.0, True)
    assert offset is not None
    for h, mono in ((a, 11.0), (b, 21.0)):
        assert rebase_times(dict(h.record), offset - h.offset_s)["t"] == T_SYNC + mono


def test_step_while_synced_keeps_durations():
    c = Clock()
    c.observe(0.0, 1000.0, True)
    c.observe(10.0, 2010.0, True)  # stepped +1000
    assert c.stats.steps == 1
    ([rec], _) = c.emit([{"start": 5.0, "end": 9.0}])
    assert rec["end"] - rec["start"] == 4.0


def test_fixed_clock_is_synced_and_never_holds():
    c = Clock.fixed()
    ([rec], held) = c.emit([{"t": 5.0}])
    assert (rec, held) == ({"t": 5.0, "clock": "synced"}, [])


@pytest.mark.parametrize(
    ("record", "delta", "expected"),
    [
        ({"t": 1.0}, 2.0, {"t": 3.0}),
        (
            {"start": 1.0, "end": 2.0, "stay_start": 0.5},
            1.0,
            {"start": 2.0, "end": 3.0, "stay_start": 1.5},
        ),
        ({"t": None, "n": 3}, 5.0, {"t": None, "n": 3}),  # only numbers move
    ],
)
def test_shift_times(record, delta, expected):
    assert shift_times(record, delta) == expected


def test_unrebased_marks_the_guess():
    assert unrebased({"t": 5.0, "clock": "unsynced"}) == {
        "t": 5.0,
        "clock": "unsynced",
        "rebased": False,
    }
