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

from gateway.outbox import (
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
