"""The outbox contract, run against both implementations (Huey's StorageTests).

`MemoryOutbox` exists for fast pure tests elsewhere; running the same suite on it
and on the real `SqliteOutbox` proves the fake is honest.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from gateway.clock import Held
from gateway.outbox import (
    HELD_OVERHEAD_BYTES,
    MIGRATIONS,
    ROW_OVERHEAD_BYTES,
    SCHEMA_VERSION,
    MemoryOutbox,
    MemoryStore,
    OutboxBusy,
    OutboxError,
    SqliteOutbox,
    record_body,
)

DAY_S = 86_400.0
T0 = 1_700_000_000.0


def rec(i: int, **extra) -> dict:
    # Fixed width, so every record has the same stored size.
    return {
        "kind": "occupancy",
        "gateway": "gw-1",
        "zone": f"z{i:04d}",
        "t": T0,
        "count": 1,
        **extra,
    }


def rec_size(i: int) -> int:
    return len(record_body(rec(i)).encode()) + ROW_OVERHEAD_BYTES


class Factory:
    """Opens (and re-opens, as after a restart) one outbox of a given kind."""

    def __init__(self, kind: str, tmp_path):
        self.kind = kind
        self.path = str(tmp_path / "outbox.sqlite")
        self.store = MemoryStore()
        self.opened: list = []

    def open(self, **kw):
        kw.setdefault("boot_id", "boot-a")
        if self.kind == "memory":
            box = MemoryOutbox(self.store, **kw)
        else:
            box = SqliteOutbox(self.path, **kw)
        self.opened.append(box)
        return box

    def close_all(self):
        for box in self.opened:
            box.close()


@pytest.fixture(params=["memory", "sqlite"])
def factory(request, tmp_path):
    f = Factory(request.param, tmp_path)
    yield f
    f.close_all()


def test_append_stamps_boot_and_seq(factory):
    box = factory.open()
    assert box.boot == 1
    assert box.append_many([rec(0), rec(1)], T0) == [0, 1]
    assert box.append_many([rec(2)], T0 + 1) == [2]
    assert box.append_many([], T0 + 2) == []
    assert box.pending() == 3
    claimed = box.claim(10)
    assert [(c.boot, c.seq) for c in claimed] == [(1, 0), (1, 1), (1, 2)]
    assert claimed[1].record == {**rec(1), "seq": 1}
    assert claimed[0].created_wall == T0


def test_boot_increments_on_every_open(factory):
    box = factory.open()
    box.append_many([rec(0)], T0)
    box.close()
    box = factory.open()
    assert box.boot == 2
    assert box.append_many([rec(1)], T0) == [0]
    box.close()
    assert factory.open().boot == 3


def test_second_writer_is_refused(factory):
    factory.open()
    with pytest.raises(OutboxBusy):
        factory.open()


def test_claim_states_and_delivery(factory):
    box = factory.open()
    box.append_many([rec(i) for i in range(5)], T0)
    first = box.claim(2)
    second = box.claim(2)
    assert [c.seq for c in first] == [0, 1]
    assert [c.seq for c in second] == [2, 3]
    stats = box.stats()
    assert (stats.ready, stats.inflight, stats.delivered) == (1, 4, 0)
    assert box.mark_delivered([c.id for c in first], T0 + 5) == 2
    # An ack repeated (a PUBACK for a redelivered batch) changes nothing.
    assert box.mark_delivered([c.id for c in first], T0 + 6) == 0
    assert box.pending() == 3
    assert box.release([second[0].id]) == 1
    assert [c.seq for c in box.claim(10)] == [2, 4]
    assert box.requeue_inflight() == 3
    assert box.stats().inflight == 0
    assert [c.seq for c in box.claim(10)] == [2, 3, 4]


def test_killed_process_rows_go_first_after_reopen(factory):
    box = factory.open()
    box.append_many([rec(i) for i in range(4)], T0)
    claimed = box.claim(3)
    box.mark_delivered([claimed[0].id], T0)
    box.close()  # as if killed: two rows in flight, one ready

    box = factory.open()
    assert box.boot == 2
    assert box.stats().inflight == 0
    box.append_many([rec(10), rec(11)], T0 + 1)
    assert box.pending() == 5
    order = [(c.boot, c.seq) for c in box.claim(100)]
    assert order == [(1, 1), (1, 2), (1, 3), (2, 0), (2, 1)]


def test_size_bound_drops_delivered_first_then_oldest_counted(factory, caplog):
    size = rec_size(0)
    assert all(rec_size(i) == size for i in range(20))
    box = factory.open(max_bytes=10 * size)
    box.append_many([rec(i) for i in range(6)], T0)
    box.mark_delivered([c.id for c in box.claim(3)], T0)  # seq 0..2 delivered
    with caplog.at_level(logging.WARNING, logger="gateway.outbox"):
        box.append_many([rec(i) for i in range(6, 10)], T0 + 1)  # 10 rows: fits
        assert box.stats().purged_delivered == 0
        box.append_many([rec(i) for i in range(10, 13)], T0 + 2)  # 13: 3 too many
        stats = box.stats()
        assert (stats.delivered, stats.dropped_size, stats.depth) == (0, 0, 10)
        assert stats.purged_delivered == 3
        assert not caplog.records  # delivered rows went first: nothing lost
        box.append_many([rec(i) for i in range(13, 16)], T0 + 3)
    stats = box.stats()
    assert stats.dropped_size == 3
    assert stats.stored_bytes == 10 * size
    assert [c.seq for c in box.claim(100)] == list(range(6, 16))
    assert "dropped 3 undelivered" in caplog.text
    box.close()
    # The counter is persisted.
    assert factory.open(max_bytes=10 * size).stats().dropped_size == 3


def test_retention_purge_counts(factory, caplog):
    box = factory.open(retention_s=10 * DAY_S)
    box.append_many([rec(0), rec(1)], T0)
    box.append_many([rec(2)], T0 + 5 * DAY_S)
    box.mark_delivered([box.claim(1)[0].id], T0)
    with caplog.at_level(logging.WARNING, logger="gateway.outbox"):
        assert box.purge(T0 + 9 * DAY_S).undelivered == 0
        result = box.purge(T0 + 11 * DAY_S)
    assert (result.delivered, result.undelivered) == (1, 1)
    stats = box.stats()
    assert (stats.dropped_retention, stats.purged_delivered, stats.depth) == (1, 1, 1)
    assert "retention" in caplog.text
    box.close()
    assert factory.open(retention_s=10 * DAY_S).stats().dropped_retention == 1


def test_clock_going_backwards_does_not_age_records(factory):
    """A Pi without a battery clock can boot in 1970; retention must not purge."""
    box = factory.open(retention_s=DAY_S)
    box.append_many([rec(0)], T0)
    box.close()
    box = factory.open(retention_s=DAY_S)
    box.append_many([rec(1)], 1000.0)  # the clock is wrong after a reboot
    assert box.purge(T0 + 0.5 * DAY_S).undelivered == 0
    assert box.pending() == 2
    assert box.stats().oldest_age_s(T0 + 100) == 100


def test_health_figures(factory):
    box = factory.open()
    assert box.stats().oldest_wall is None
    box.append_many([rec(0)], T0)
    box.append_many([rec(1)], T0 + 30)
    health = box.stats().as_health(T0 + 60)
    assert health["depth"] == 2
    assert health["oldest_age_s"] == 60
    assert health["dropped_size"] == 0


# ------------------------------------------------ held (unsynchronised clock)

GUESS = 50.0  # wall - mono of an unsynchronised clock that booted in 1970


def held(i: int, mono: float) -> Held:
    """A record made at monotonic `mono` on the unsynchronised clock."""
    return Held(rec(i, t=mono + GUESS, clock="unsynced"), GUESS)


def test_held_rows_are_committed_but_never_claimed(factory):
    box = factory.open()
    # One tick's transaction: ready records first, then held ones.
    # (now_wall is the tick's wall clock, the unsynchronised guess: mono 20 + GUESS)
    tick = [held(1, 10.0), held(2, 20.0)]
    assert box.append_many([rec(0)], 20.0 + GUESS, tick) == [0, 1, 2]
    assert box.pending() == 1
    stats = box.stats()
    assert (stats.ready, stats.held, stats.depth) == (1, 2, 1)
    assert stats.as_health(T0)["held"] == 2
    assert [c.seq for c in box.claim(10)] == [0]
    assert box.claim(10) == []
    box.close()
    # A restart within the same kernel boot (systemd restarted the daemon): still
    # held -- the monotonic clock they were stamped against still runs.
    box = factory.open(boot_id="boot-a")
    assert box.stats().held == 2
    assert box.pending() == 1  # seq 0 came back from in-flight
    assert box.append_many([], 30.0 + GUESS, [held(3, 30.0)]) == [0]
    # The clock synchronises: wall - mono is T0 from now on.
    assert box.rebase(T0, T0 + 100) == 3
    assert box.rebase(T0, T0 + 100) == 0  # nothing left to rebase
    stats = box.stats()
    assert (stats.held, stats.rebased, stats.depth) == (0, 3, 4)
    got = box.claim(10)
    assert [(c.boot, c.seq) for c in got] == [(1, 0), (1, 1), (1, 2), (2, 0)]
    for c, mono, tick_mono in zip(
        got[1:], (10.0, 20.0, 30.0), (20.0, 20.0, 30.0), strict=True
    ):
        assert c.record["t"] == T0 + mono  # corrected
        assert c.record["clock"] == "unsynced"  # provenance kept...
        assert c.record["rebased"] is True  # ...and marked
        assert c.created_wall == T0 + tick_mono  # moved by the same step
    box.close()
    assert factory.open(boot_id="boot-a").stats().rebased == 3


def test_new_boot_releases_held_rows_unrebased(factory, caplog):
    box = factory.open()
    box.append_many([rec(0)], T0)
    box.append_many([], 60.0, [held(1, 10.0)])
    box.close()  # power cut before the clock ever synchronised
    with caplog.at_level(logging.WARNING, logger="gateway.outbox"):
        box = factory.open(boot_id="boot-b")
    assert "rebased: false" in caplog.text
    stats = box.stats()
    assert (stats.held, stats.released_unrebased, stats.depth) == (0, 1, 2)
    # This boot's sync says nothing about the last boot's monotonic clock.
    assert box.rebase(T0 + 5_000, T0 + 6_000) == 0
    got = box.claim(10)
    assert [c.seq for c in got] == [0, 1]
    assert got[1].record == {
        **rec(1, t=10.0 + GUESS, clock="unsynced"),
        "rebased": False,
        "seq": 1,
    }
    box.close()
    assert factory.open(boot_id="boot-c").stats().released_unrebased == 1


def test_size_bound_counts_held_rows(factory):
    size = rec_size(0)
    held_size = len(record_body(held(0, 0.0).record).encode()) + ROW_OVERHEAD_BYTES
    box = factory.open(max_bytes=3 * size + 2 * (held_size + HELD_OVERHEAD_BYTES))
    box.append_many([], T0, [held(i, float(i)) for i in range(2)])
    box.append_many([rec(i) for i in range(2, 5)], T0)
    assert (box.stats().dropped_size, box.stats().held) == (0, 2)
    box.append_many([rec(5)], T0)  # one too many: the oldest (held) row goes
    stats = box.stats()
    assert (stats.dropped_size, stats.held, stats.depth) == (1, 1, 4)
    assert stats.stored_bytes <= stats.max_bytes
    assert box.rebase(T0, T0) == 1
    assert [c.seq for c in box.claim(10)] == [1, 2, 3, 4, 5]


def test_retention_never_judges_by_an_unsynchronised_guess(factory):
    box = factory.open(retention_s=DAY_S)
    # Held rows stamped in 1970 by a clock that has not synchronised yet.
    box.append_many([], 1000.0, [held(0, 0.0)])
    assert box.purge(T0).undelivered == 0
    assert box.stats().held == 1
    box.close()
    # A power cut: released unrebased, its age unknown. The first purge (against a
    # synchronised clock) starts its retention; it expires a retention after that.
    box = factory.open(retention_s=DAY_S, boot_id="boot-b")
    assert box.purge(T0).undelivered == 0
    assert box.pending() == 1
    assert box.purge(T0 + 0.5 * DAY_S).undelivered == 0
    assert box.purge(T0 + 1.5 * DAY_S).undelivered == 1


# ------------------------------------------------------------ SQLite only


def test_sqlite_schema_wal_and_synchronous(tmp_path):
    path = str(tmp_path / "o.sqlite")
    box = SqliteOutbox(path, synchronous="full")
    try:
        assert box._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert box._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        box.close()
    box = SqliteOutbox(path)
    try:
        assert box._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    finally:
        box.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert os.stat(path).st_mode & 0o777 == 0o600
    db.close()


def test_sqlite_refuses_newer_schema(tmp_path):
    path = str(tmp_path / "o.sqlite")
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(OutboxError, match="newer"):
        SqliteOutbox(path)
    # The lock was released: a fixed binary could open it.
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    db.close()


def test_sqlite_unwritable_directory_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutboxError, match="outbox"):
        SqliteOutbox(str(blocker / "sub" / "o.sqlite"))


def test_sqlite_lock_released_when_holder_is_killed(tmp_path):
    path = str(tmp_path / "o.sqlite")
    code = textwrap.dedent(
        f"""
        import sys, time
        from gateway.outbox import SqliteOutbox
        box = SqliteOutbox({path!r})
        box.append_many([{{"kind": "gate", "t": 1.0}}], 1.0)
        box.claim(1)
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(OutboxBusy):
            SqliteOutbox(path)
        proc.kill()
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    box = SqliteOutbox(path)
    try:
        assert box.boot == 2
        assert [(c.boot, c.seq) for c in box.claim(5)] == [(1, 0)]
    finally:
        box.close()


def test_sqlite_migrates_a_version_1_file(tmp_path):
    """A unit upgraded in the field: its v1 outbox keeps every row and gains held."""
    path = str(tmp_path / "o.sqlite")
    db = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        db.execute(statement)
    db.execute("INSERT INTO meta (key, value) VALUES ('boot', 4)")
    body = record_body(rec(0))
    db.execute(
        "INSERT INTO records (boot, seq, created_wall, state, size, body) "
        "VALUES (4, 7, ?, 1, ?, ?)",
        (T0, len(body) + ROW_OVERHEAD_BYTES, body),
    )
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    box = SqliteOutbox(path, boot_id="boot-a")
    try:
        assert (
            box._db.execute("PRAGMA user_version").fetchone()[0] == 2 == SCHEMA_VERSION
        )
        assert box.boot == 5
        assert box.pending() == 1  # the v1 in-flight row, back to ready
        assert box.append_many([], T0, [held(1, 1.0)]) == [0]
        assert [(c.boot, c.seq) for c in box.claim(5)] == [(4, 7)]
        assert box.rebase(T0, T0) == 1
        assert box.claim(5)[0].record["rebased"] is True
    finally:
        box.close()
