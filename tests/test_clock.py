"""Clock provenance: hold before sync, rebase with the offset learnt at sync."""

from __future__ import annotations

from gateway.clock import Clock


def test_synced_records_are_stamped():
    c = Clock()
    assert c.observe(100.0, 1_700_000_100.0, True) == []
    (rec,) = c.emit([{"kind": "gate", "t": 150.0}])
    assert rec == {"kind": "gate", "t": 1_700_000_150.0, "clock": "synced"}


def test_unsynced_records_are_held_then_rebased_on_the_clock_jump():
    c = Clock()
    # Boot: the wall clock says 1970 + 100 s, not synchronised.
    c.observe(100.0, 100.0, False)
    assert c.emit([{"kind": "presence", "start": 110.0, "end": 170.0}]) == []
    assert c.held == 1
    # NTP steps the clock by +1.7e9 s at mono 500.
    released = c.observe(500.0, 1_700_000_500.0, True)
    assert released == [
        {
            "kind": "presence",
            "start": 1_700_000_110.0,
            "end": 1_700_000_170.0,
            "clock": "unsynced",
            "rebased": True,
        }
    ]
    assert c.stats.rebased == 1
    assert c.held == 0


def test_hold_is_bounded():
    c = Clock(max_held=2)
    c.observe(0.0, 50.0, False)
    out = c.emit([{"t": float(i)} for i in range(5)])
    assert [r["t"] for r in out] == [50.0, 51.0, 52.0]
    assert all(r["rebased"] is False for r in out)
    assert c.held == 2
    assert c.stats.released_unrebased == 3
    assert [r["t"] for r in c.release_all()] == [53.0, 54.0]


def test_step_while_synced_keeps_durations():
    c = Clock()
    c.observe(0.0, 1000.0, True)
    c.observe(10.0, 2010.0, True)  # stepped +1000
    assert c.stats.steps == 1
    (rec,) = c.emit([{"start": 5.0, "end": 9.0}])
    assert rec["end"] - rec["start"] == 4.0
