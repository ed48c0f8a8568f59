"""Shell: the durable outbox between the aggregator and the publisher.

Every edge record is committed here before anything is sent (design.md, "Nothing
lost"): one transaction per tick (`append_many`), each record stamped with
`(boot, seq)` -- `boot` a counter persisted in the database and incremented every
time a writer opens it, `seq` increasing within a boot -- so central can dedupe the
redelivery that at-least-once MQTT implies.

A row moves ready -> in-flight (`claim`) -> delivered (`mark_delivered`, only after
the broker's PUBACK). Opening the outbox puts every in-flight row back to ready, and
`claim` hands rows out in `(boot, seq)` order, so what a killed process left is
delivered before anything new (persist-queue's `resume_unack_tasks`).

Records made while the wall clock is not synchronised (gateway/clock, `Held`) are
committed the same way, in the same transaction, but HELD: `claim` never hands them
out. Each held row keeps the kernel boot id and the unsynchronised clock's offset it
was stamped with. When the clock synchronises, `rebase(offset_s, now_wall)` corrects
the held rows of this boot in one transaction (`"rebased": true`) and makes them
ready. A held row of another boot (a power cut before any sync: the monotonic clock
was reset, its offset means nothing now) is released when the outbox is opened, with
its guessed times, `"rebased": false`, and counted -- still evidence, marked as such.

Disk use is bounded (`max_bytes`): past the bound, delivered rows go first, then the
oldest undelivered ones (held or not), which are counted in a persisted counter and logged at
WARNING -- never silently. `purge` applies the retention limit (privacy: raw records
expire) and counts what it removes. Delivered rows are kept until retention or size
pressure removes them: they cost nothing extra to keep (the bound is the same) and
give a technician the unit's own copy of what it sent. Retention never judges a
record by an unsynchronised clock's guess: held rows are not purged by age (only by
the size bound), and a row released unrebased has an unknown age, so the first purge
that sees it (the daemon purges only against a synchronised clock) starts its
retention then.

Two implementations share one contract (tests/test_outbox.py runs the same suite
against both, Huey's StorageTests pattern): `SqliteOutbox` (WAL, schema versioned by
`PRAGMA user_version`) and `MemoryOutbox` for fast pure tests.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import json
import logging
import os
import sqlite3
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Final, Literal, Protocol

from gateway import systemd
from gateway.clock import Held, rebase_times, unrebased
from gateway.envelope import canonical_json
from gateway.errors import BlueGateError

_LOGGER = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 2
# What one row costs beyond its JSON body: SQLite's record header, the integer and
# real columns, and the (state, boot, seq) and (boot, seq) index entries. Measured
# on SQLite 3.40 with 300-byte presence records: the file grows ~70 bytes a row more
# than the bodies. The bound is therefore close to the real file size (plus the WAL,
# itself capped by `journal_size_limit`).
ROW_OVERHEAD_BYTES: Final = 72
# After a checkpoint SQLite truncates the WAL to this size, so the WAL cannot keep
# a large file around after a burst (bounded disk, design.md).
WAL_SIZE_LIMIT_BYTES: Final = 4 * 1024 * 1024
# What a held row costs beyond ROW_OVERHEAD_BYTES: its boot id (36 characters) and
# offset columns, until it is rebased.
HELD_OVERHEAD_BYTES: Final = 48
# Another process holding the write lock (a reader such as `doctor`) waits this long.
BUSY_TIMEOUT_MS: Final = 5000
# Rows deleted per statement when enforcing the size bound.
_DROP_CHUNK: Final = 500

Synchronous = Literal["normal", "full"]


class State(enum.IntEnum):
    """A row's delivery state (stored as an integer)."""

    READY = 0
    INFLIGHT = 1
    DELIVERED = 2
    HELD = 3  # times on an unsynchronised clock: committed, not publishable yet


class OutboxError(BlueGateError):
    """The outbox cannot be opened or written (disk full, I/O error, bad schema)."""


class OutboxBusy(OutboxError):
    """Another process (a running daemon, a `drain`) has the outbox open."""


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One claimed row; `record` is the edge record with its `seq` added."""

    id: int
    boot: int
    seq: int
    created_wall: float
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PurgeResult:
    delivered: int  # delivered rows past retention (not a loss)
    undelivered: int  # never delivered and past retention: counted as dropped


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Figures for the health topic and `doctor`."""

    boot: int
    ready: int
    inflight: int
    delivered: int
    stored_bytes: int
    max_bytes: int
    oldest_wall: float | None  # created_wall of the oldest undelivered row
    dropped_size: int  # undelivered rows dropped by the size bound, ever
    dropped_retention: int  # undelivered rows dropped by retention, ever
    purged_delivered: int  # delivered rows removed (retention or size), ever
    held: int = 0  # rows waiting for the clock to synchronise (not in `depth`)
    rebased: int = 0  # held rows rebased at a sync, ever
    released_unrebased: int = 0  # held rows of a boot that ended unsynced, ever

    @property
    def depth(self) -> int:
        """Rows not yet acknowledged by the broker."""
        return self.ready + self.inflight

    def oldest_age_s(self, now_wall: float) -> float | None:
        if self.oldest_wall is None:
            return None
        return max(0.0, now_wall - self.oldest_wall)

    def as_health(self, now_wall: float) -> dict[str, Any]:
        """The `outbox` object of the health payload."""
        age = self.oldest_age_s(now_wall)
        return {
            "depth": self.depth,
            "inflight": self.inflight,
            "oldest_age_s": None if age is None else round(age, 1),
            "stored_bytes": self.stored_bytes,
            "max_bytes": self.max_bytes,
            "dropped_size": self.dropped_size,
            "dropped_retention": self.dropped_retention,
            "held": self.held,
            "rebased": self.rebased,
            "released_unrebased": self.released_unrebased,
            "boot": self.boot,
        }


class Outbox(Protocol):
    """What the publisher, `drain`, `replay` and the daemon's tick use."""

    @property
    def boot(self) -> int: ...

    @property
    def boot_id(self) -> str:
        """The kernel boot whose held rows `rebase` corrects."""
        ...

    def append_many(
        self,
        records: Sequence[Mapping[str, Any]],
        now_wall: float,
        held: Sequence[Held] = (),
    ) -> list[int]:
        """Commit the tick's records (ready) and `held` ones in one transaction;
        return their seqs (records first, then held)."""
        ...

    def rebase(self, offset_s: float, now_wall: float) -> int:
        """The clock synchronised with wall - mono = `offset_s`: correct this boot's
        held rows and make them ready, in one transaction; returns how many."""
        ...

    def claim(self, n: int) -> list[OutboxRecord]:
        """Mark up to `n` ready rows in-flight, oldest `(boot, seq)` first."""
        ...

    def mark_delivered(self, ids: Collection[int], now_wall: float) -> int:
        """Rows the broker acknowledged (PUBACK); returns how many changed."""
        ...

    def release(self, ids: Collection[int]) -> int:
        """Put these in-flight rows back to ready (a publish that failed)."""
        ...

    def requeue_inflight(self) -> int:
        """Every in-flight row back to ready (the connection was lost)."""
        ...

    def purge(self, now_wall: float) -> PurgeResult: ...

    def pending(self) -> int:
        """Rows not yet delivered (ready + in-flight); cheap, no query."""
        ...

    def stats(self) -> OutboxStats: ...

    def close(self) -> None: ...


def record_body(record: Mapping[str, Any]) -> str:
    """The stored text of a record: canonical JSON without `seq` (added on claim)."""
    return canonical_json({k: v for k, v in record.items() if k != "seq"}).decode()


def row_size(body: str) -> int:
    return len(body.encode()) + ROW_OVERHEAD_BYTES


def rebased_body(body: str, delta_s: float) -> str:
    return record_body(rebase_times(json.loads(body), delta_s))


def unrebased_body(body: str) -> str:
    return record_body(unrebased(json.loads(body)))


def _warn_released(count: int, total: int) -> None:
    # WARNING: not a loss, but these records' times are a guess (design.md, Time).
    _LOGGER.warning(
        "outbox: %d record(s) made before the clock synchronised on an earlier boot "
        "released with that clock's guess (rebased: false); %d so far",
        count,
        total,
    )


def _warn_dropped(reason: str, count: int, total: int) -> None:
    # WARNING on purpose: a dropped undelivered record is lost data (design.md).
    _LOGGER.warning(
        "outbox: dropped %d undelivered record(s) (%s); %d dropped so far",
        count,
        reason,
        total,
    )


# --------------------------------------------------------------------- memory


@dataclass
class _MemRow:
    id: int
    boot: int
    seq: int
    created_wall: float
    body: str
    size: int
    state: State = State.READY
    delivered_wall: float | None = None
    clock_boot: str | None = None  # held, or released unrebased (age unknown)
    clock_offset: float | None = None  # held: the unsynchronised wall - mono


@dataclass
class MemoryStore:
    """What survives a `MemoryOutbox` "restart": pass the same store to reopen."""

    rows: dict[int, _MemRow] = field(default_factory=dict)
    meta: dict[str, float] = field(default_factory=dict)
    next_id: int = 1
    locked: bool = False
    user_version: int = SCHEMA_VERSION


class MemoryOutbox:
    """The outbox contract in memory (tests; same semantics as SqliteOutbox)."""

    def __init__(
        self,
        store: MemoryStore | None = None,
        *,
        max_bytes: int = 256 * 1024 * 1024,
        retention_s: float = 21 * 86_400.0,
        boot_id: str | None = None,
    ) -> None:
        self._store = store if store is not None else MemoryStore()
        if self._store.locked:
            raise OutboxBusy("outbox is open in another process")
        self._store.locked = True
        self._max_bytes = max_bytes
        self._retention_s = retention_s
        self._boot_id = boot_id or systemd.boot_id()
        meta = self._store.meta
        meta["boot"] = meta.get("boot", 0) + 1
        self._boot = int(meta["boot"])
        self._next_seq = 0
        released = 0
        wall_high = meta.get("wall_high", float("-inf"))
        for row in self._store.rows.values():
            if row.state is State.INFLIGHT:
                row.state = State.READY
            elif row.state is State.HELD and row.clock_boot != self._boot_id:
                row.body = unrebased_body(row.body)
                row.size = row_size(row.body) + HELD_OVERHEAD_BYTES
                row.created_wall = max(row.created_wall, wall_high)
                row.clock_offset = None
                row.state = State.READY
                released += 1
        if released:
            _warn_released(released, self._count("released_unrebased", released))

    @property
    def boot(self) -> int:
        return self._boot

    @property
    def boot_id(self) -> str:
        return self._boot_id

    def _count(self, key: str, n: int) -> int:
        self._store.meta[key] = self._store.meta.get(key, 0) + n
        return int(self._store.meta[key])

    def append_many(
        self,
        records: Sequence[Mapping[str, Any]],
        now_wall: float,
        held: Sequence[Held] = (),
    ) -> list[int]:
        if not records and not held:
            return []
        meta = self._store.meta
        created = max(now_wall, meta.get("wall_high", now_wall))
        if records:
            meta["wall_high"] = created
        seqs = []
        rows = [
            _MemRow(0, self._boot, 0, created, body, row_size(body))
            for body in map(record_body, records)
        ] + [
            # A held row's created_wall is the unsynchronised guess, like its times:
            # the rebase moves both by the same step.
            _MemRow(
                0,
                self._boot,
                0,
                now_wall,
                body,
                row_size(body) + HELD_OVERHEAD_BYTES,
                State.HELD,
                None,
                self._boot_id,
                h.offset_s,
            )
            for h, body in ((h, record_body(h.record)) for h in held)
        ]
        for row in rows:
            row.id = self._store.next_id
            row.seq = self._next_seq
            self._store.rows[row.id] = row
            self._store.next_id += 1
            seqs.append(self._next_seq)
            self._next_seq += 1
        self._enforce_bound()
        return seqs

    def rebase(self, offset_s: float, now_wall: float) -> int:
        changed = 0
        for row in self._store.rows.values():
            if row.state is not State.HELD or row.clock_boot != self._boot_id:
                continue
            assert row.clock_offset is not None
            delta = offset_s - row.clock_offset
            row.body = rebased_body(row.body, delta)
            row.size = row_size(row.body)
            row.created_wall += delta
            row.state = State.READY
            row.clock_boot = row.clock_offset = None
            changed += 1
        if changed:
            self._count("rebased", changed)
            _LOGGER.info("outbox: %d held record(s) rebased", changed)
        return changed

    def _enforce_bound(self) -> None:
        rows = self._store.rows
        total = sum(r.size for r in rows.values())
        if total <= self._max_bytes:
            return
        purged = dropped = 0
        for want_delivered in (True, False):
            for row_id in sorted(rows):
                if total <= self._max_bytes:
                    break
                row = rows[row_id]
                if (row.state is State.DELIVERED) != want_delivered:
                    continue
                total -= row.size
                del rows[row_id]
                if want_delivered:
                    purged += 1
                else:
                    dropped += 1
        self._count("purged_delivered", purged)
        if dropped:
            _warn_dropped("size bound", dropped, self._count("dropped_size", dropped))

    def claim(self, n: int) -> list[OutboxRecord]:
        out = []
        for row in sorted(
            (r for r in self._store.rows.values() if r.state is State.READY),
            key=lambda r: (r.boot, r.seq),
        )[: max(0, n)]:
            row.state = State.INFLIGHT
            record = json.loads(row.body)
            record["seq"] = row.seq
            out.append(
                OutboxRecord(row.id, row.boot, row.seq, row.created_wall, record)
            )
        return out

    def mark_delivered(self, ids: Collection[int], now_wall: float) -> int:
        changed = 0
        for row_id in ids:
            row = self._store.rows.get(row_id)
            if row is not None and row.state in (State.READY, State.INFLIGHT):
                row.state = State.DELIVERED
                row.delivered_wall = now_wall
                changed += 1
        return changed

    def release(self, ids: Collection[int]) -> int:
        changed = 0
        for row_id in ids:
            row = self._store.rows.get(row_id)
            if row is not None and row.state is State.INFLIGHT:
                row.state = State.READY
                changed += 1
        return changed

    def requeue_inflight(self) -> int:
        return self.release(list(self._store.rows))

    def purge(self, now_wall: float) -> PurgeResult:
        cutoff = now_wall - self._retention_s
        for row in self._store.rows.values():
            if row.clock_boot is not None and row.state is not State.HELD:
                # Released unrebased: age unknown; retention starts now.
                row.created_wall = max(row.created_wall, now_wall)
                row.clock_boot = None
        old = [
            r
            for r in self._store.rows.values()
            if r.created_wall < cutoff and r.state is not State.HELD
        ]
        delivered = sum(1 for r in old if r.state is State.DELIVERED)
        undelivered = len(old) - delivered
        for row in old:
            del self._store.rows[row.id]
        self._count("purged_delivered", delivered)
        if undelivered:
            _warn_dropped(
                "retention",
                undelivered,
                self._count("dropped_retention", undelivered),
            )
        return PurgeResult(delivered, undelivered)

    def pending(self) -> int:
        return sum(
            1
            for r in self._store.rows.values()
            if r.state in (State.READY, State.INFLIGHT)
        )

    def stats(self) -> OutboxStats:
        rows = self._store.rows.values()
        by_state = {s: 0 for s in State}
        for row in rows:
            by_state[row.state] += 1
        waiting = [r for r in rows if r.state in (State.READY, State.INFLIGHT)]
        meta = self._store.meta
        return OutboxStats(
            boot=self._boot,
            ready=by_state[State.READY],
            inflight=by_state[State.INFLIGHT],
            delivered=by_state[State.DELIVERED],
            stored_bytes=sum(r.size for r in rows),
            max_bytes=self._max_bytes,
            oldest_wall=min((r.created_wall for r in waiting), default=None),
            dropped_size=int(meta.get("dropped_size", 0)),
            dropped_retention=int(meta.get("dropped_retention", 0)),
            purged_delivered=int(meta.get("purged_delivered", 0)),
            held=by_state[State.HELD],
            rebased=int(meta.get("rebased", 0)),
            released_unrebased=int(meta.get("released_unrebased", 0)),
        )

    def close(self) -> None:
        self._store.locked = False


# --------------------------------------------------------------------- sqlite

# Each entry takes the schema from version i to i + 1 (PRAGMA user_version). Never
# edit a released entry: append a new one, so every unit in the field can upgrade
# from whatever version its SD card holds.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value REAL NOT NULL
        )""",
        """CREATE TABLE records (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            boot INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            created_wall REAL NOT NULL,
            state INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            size INTEGER NOT NULL,
            delivered_wall REAL,
            body TEXT NOT NULL,
            UNIQUE (boot, seq)
        )""",
        "CREATE INDEX records_state ON records (state, boot, seq)",
    ),
    # 2: held rows (state 3), made on an unsynchronised clock. `clock_boot` is the
    # kernel boot id while held and after an unrebased release (age unknown until
    # the next retention purge); `clock_offset` the unsynchronised wall - mono.
    (
        "ALTER TABLE records ADD COLUMN clock_boot TEXT",
        "ALTER TABLE records ADD COLUMN clock_offset REAL",
    ),
)
if len(MIGRATIONS) != SCHEMA_VERSION:  # a release forgot its migration
    raise RuntimeError("outbox: MIGRATIONS and SCHEMA_VERSION disagree")

_META_KEYS: Final = (
    "boot",
    "wall_high",
    "dropped_size",
    "dropped_retention",
    "purged_delivered",
    "rebased",
    "released_unrebased",
)


class SqliteOutbox:
    """The outbox on disk: SQLite in WAL mode, one writer process at a time."""

    def __init__(
        self,
        path: str,
        *,
        max_bytes: int = 256 * 1024 * 1024,
        retention_s: float = 21 * 86_400.0,
        synchronous: Synchronous = "normal",
        boot_id: str | None = None,
    ) -> None:
        self.path = path
        self._boot_id = boot_id or systemd.boot_id()
        self._max_bytes = max_bytes
        self._retention_s = retention_s
        self._lock_file = self._take_lock(path)
        try:
            self._db = self._connect(path, synchronous)
            self._migrate()
            self._open_boot()
        except sqlite3.Error as exc:
            self._release_lock()
            raise OutboxError(f"outbox {path}: {exc}") from exc
        except BaseException:
            self._release_lock()
            raise

    # -- opening

    @staticmethod
    def _take_lock(path: str) -> IO[bytes]:
        directory = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(directory, mode=0o750, exist_ok=True)
            # The records hold pseudonymous device keys: owner-only (SQLite gives
            # the -wal and -shm files the database file's permissions).
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            lock = open(path + ".lock", "ab")  # noqa: SIM115  (held while open)
        except OSError as exc:
            raise OutboxError(f"outbox {path}: {exc.strerror or exc}") from exc
        try:
            # One writer: a second process would bump `boot` and steal in-flight
            # rows. The kernel drops the lock when the holder dies (SIGKILL, power).
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise OutboxBusy(
                f"outbox {path} is in use by another process "
                "(a running `bluegate-gateway run` or `drain`?)"
            ) from None
        return lock

    def _release_lock(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._lock_file.close()

    @staticmethod
    def _connect(path: str, synchronous: Synchronous) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise OutboxError(f"outbox {path}: cannot switch to WAL (got {mode})")
        # NORMAL or FULL: see docs/readme/50-delivery.md, "Power cuts and SD cards".
        db.execute(
            f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}"
        )
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
        return db

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._tx() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise OutboxError(
                    f"outbox {self.path}: schema version {version} is newer than "
                    f"this software's ({SCHEMA_VERSION}); upgrade BlueGate"
                )
            for target in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[target]:
                    db.execute(statement)
                _LOGGER.info("outbox: schema migrated to version %d", target + 1)
            if version != SCHEMA_VERSION:
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _open_boot(self) -> None:
        with self._tx() as db:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            self._boot = int(meta.get("boot", 0)) + 1
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('boot', ?)",
                (self._boot,),
            )
            # What a killed process left in flight goes out again, first.
            requeued = db.execute(
                "UPDATE records SET state = 0 WHERE state = 1"
            ).rowcount
            released = self._release_other_boots(db, float(meta.get("wall_high", 0)))
            if released:
                total = float(meta.get("released_unrebased", 0)) + released
                meta["released_unrebased"] = total
                self._set_meta(db, "released_unrebased", total)
            pending, stored, held = db.execute(
                "SELECT COALESCE(SUM(state < 2), 0), COALESCE(SUM(size), 0), "
                "COALESCE(SUM(state = 3), 0) FROM records"
            ).fetchone()
        self._meta = {k: float(meta.get(k, 0)) for k in _META_KEYS}
        self._meta["boot"] = self._boot
        self._next_seq = 0
        self._pending = int(pending)
        self._held = int(held)
        self._stored = int(stored)
        if requeued:
            _LOGGER.info("outbox: %d in-flight record(s) back to ready", requeued)
        if released:
            _warn_released(released, int(self._meta["released_unrebased"]))
        _LOGGER.info(
            "outbox: opened %s boot=%d pending=%d", self.path, self._boot, pending
        )

    def _release_other_boots(self, db: sqlite3.Connection, wall_high: float) -> int:
        """Held rows of an earlier kernel boot can never be rebased (the monotonic
        clock they were stamped against is gone): ready, with their guess, marked
        `"rebased": false`. `clock_boot` stays: their age is unknown (see purge)."""
        rows = db.execute(
            "SELECT id, body FROM records WHERE state = 3 AND clock_boot != ?",
            (self._boot_id,),
        ).fetchall()
        updates = []
        for row_id, body in rows:
            new = unrebased_body(body)
            updates.append(
                (new, row_size(new) + HELD_OVERHEAD_BYTES, wall_high, row_id)
            )
        db.executemany(
            "UPDATE records SET state = 0, body = ?, size = ?, clock_offset = NULL, "
            "created_wall = MAX(created_wall, ?) WHERE id = ?",
            updates,
        )
        return len(updates)

    # -- the contract

    @property
    def boot(self) -> int:
        return self._boot

    @property
    def boot_id(self) -> str:
        return self._boot_id

    def _write(
        self, what: str
    ) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return _translate(self.path, what, self._tx())

    def _set_meta(self, db: sqlite3.Connection, key: str, value: float) -> None:
        db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value)
        )

    def append_many(
        self,
        records: Sequence[Mapping[str, Any]],
        now_wall: float,
        held: Sequence[Held] = (),
    ) -> list[int]:
        if not records and not held:
            return []  # no transaction at all on a quiet tick (SD-card writes)
        # A Pi without a battery clock may boot in the past; never let created_wall
        # go backwards, or a later retention purge would see fresh records as old.
        # Only ready rows move the mark: a held row's time is a guess.
        wall_high = max(now_wall, self._meta["wall_high"] or now_wall)
        if not records:
            wall_high = self._meta["wall_high"]
        first = self._next_seq
        rows: list[tuple[Any, ...]] = []
        added = 0
        for record in records:
            body = record_body(record)
            size = row_size(body)
            added += size
            rows.append(
                (self._boot, first + len(rows), wall_high, size, body, 0, None, None)
            )
        for h in held:
            # created_wall is the guess too: the rebase moves it with the times.
            body = record_body(h.record)
            size = row_size(body) + HELD_OVERHEAD_BYTES
            added += size
            rows.append(
                (
                    self._boot,
                    first + len(rows),
                    now_wall,
                    size,
                    body,
                    int(State.HELD),
                    self._boot_id,
                    h.offset_s,
                )
            )
        with self._write("append") as db:
            db.executemany(
                "INSERT INTO records (boot, seq, created_wall, size, body, state, "
                "clock_boot, clock_offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            if records:
                self._set_meta(db, "wall_high", wall_high)
            stored = self._stored + added
            pending = self._pending + len(records)
            n_held = self._held + len(held)
            purged = dropped = 0
            if stored > self._max_bytes:
                stored, purged, dropped, dropped_held = self._enforce_bound(db, stored)
                pending -= dropped - dropped_held
                n_held -= dropped_held
                self._set_meta(
                    db, "purged_delivered", self._meta["purged_delivered"] + purged
                )
                self._set_meta(db, "dropped_size", self._meta["dropped_size"] + dropped)
        # Only after COMMIT: a rolled-back tick changes nothing in memory either.
        self._next_seq = first + len(rows)
        self._meta["wall_high"] = wall_high
        self._meta["purged_delivered"] += purged
        self._meta["dropped_size"] += dropped
        self._stored, self._pending, self._held = stored, pending, n_held
        if dropped:
            _warn_dropped("size bound", dropped, int(self._meta["dropped_size"]))
        return list(range(first, first + len(rows)))

    def _enforce_bound(
        self, db: sqlite3.Connection, stored: int
    ) -> tuple[int, int, int, int]:
        """Delete delivered rows, then the oldest undelivered (held or not), until
        under the bound.

        Returns (stored bytes after, delivered rows purged, undelivered rows dropped,
        of which held).
        """
        purged = dropped = dropped_held = 0
        for delivered in (True, False):
            where = "state = 2" if delivered else "state != 2"
            while stored > self._max_bytes:
                chunk = db.execute(
                    f"SELECT id, size, state FROM records WHERE {where} "  # noqa: S608
                    "ORDER BY id LIMIT ?",
                    (_DROP_CHUNK,),
                ).fetchall()
                if not chunk:
                    break
                last_id = chunk[-1][0]
                held = 0
                for row_id, size, state in chunk:
                    stored -= size
                    held += state == State.HELD
                    if stored <= self._max_bytes:
                        last_id = row_id
                        break
                n = db.execute(
                    f"DELETE FROM records WHERE {where} AND id <= ?",  # noqa: S608
                    (last_id,),
                ).rowcount
                if delivered:
                    purged += n
                else:
                    dropped += n
                    dropped_held += held
        return stored, purged, dropped, dropped_held

    def rebase(self, offset_s: float, now_wall: float) -> int:
        if self._held == 0:
            return 0
        with self._write("rebase") as db:
            rows = db.execute(
                "SELECT id, body, clock_offset, size FROM records "
                "WHERE state = 3 AND clock_boot = ?",
                (self._boot_id,),
            ).fetchall()
            updates = []
            shrunk = 0
            for row_id, body, guess, size in rows:
                delta = offset_s - float(guess)
                new = rebased_body(body, delta)
                new_size = row_size(new)
                shrunk += size - new_size
                updates.append((new, new_size, delta, row_id))
            db.executemany(
                "UPDATE records SET state = 0, body = ?, size = ?, "
                "created_wall = created_wall + ?, clock_boot = NULL, "
                "clock_offset = NULL WHERE id = ?",
                updates,
            )
            total = self._meta["rebased"] + len(updates)
            if updates:
                self._set_meta(db, "rebased", total)
        self._meta["rebased"] = total
        self._stored -= shrunk
        self._pending += len(updates)
        self._held -= len(updates)
        if updates:
            _LOGGER.info("outbox: %d held record(s) rebased", len(updates))
        return len(updates)

    def claim(self, n: int) -> list[OutboxRecord]:
        if n <= 0 or self._pending == 0:
            return []
        with self._write("claim") as db:
            rows = db.execute(
                "SELECT id, boot, seq, created_wall, body FROM records "
                "WHERE state = 0 ORDER BY boot, seq LIMIT ?",
                (n,),
            ).fetchall()
            if rows:
                # No RETURNING (SQLite 3.35+; Bullseye ships 3.34): select, then
                # update the same (boot, seq) range inside one IMMEDIATE transaction.
                last_boot, last_seq = rows[-1][1], rows[-1][2]
                db.execute(
                    "UPDATE records SET state = 1, attempts = attempts + 1 "
                    "WHERE state = 0 AND (boot, seq) <= (?, ?)",
                    (last_boot, last_seq),
                )
        out = []
        for row_id, boot, seq, created, body in rows:
            record = json.loads(body)
            record["seq"] = seq
            out.append(OutboxRecord(row_id, boot, seq, created, record))
        return out

    def mark_delivered(self, ids: Collection[int], now_wall: float) -> int:
        if not ids:
            return 0
        with self._write("mark delivered") as db:
            changed = 0
            for row_id in ids:
                changed += db.execute(
                    "UPDATE records SET state = 2, delivered_wall = ? "
                    "WHERE id = ? AND state < 2",
                    (now_wall, row_id),
                ).rowcount
        self._pending -= changed
        return changed

    def release(self, ids: Collection[int]) -> int:
        if not ids:
            return 0
        with self._write("release") as db:
            changed = 0
            for row_id in ids:
                changed += db.execute(
                    "UPDATE records SET state = 0 WHERE id = ? AND state = 1",
                    (row_id,),
                ).rowcount
        return changed

    def requeue_inflight(self) -> int:
        with self._write("requeue") as db:
            return int(
                db.execute("UPDATE records SET state = 0 WHERE state = 1").rowcount
            )

    def purge(self, now_wall: float) -> PurgeResult:
        cutoff = now_wall - self._retention_s
        with self._write("purge") as db:
            # Released unrebased: their created_wall is an unsynchronised guess, so
            # their retention starts now (never purge fresh records by a guess).
            db.execute(
                "UPDATE records SET created_wall = MAX(created_wall, ?), "
                "clock_boot = NULL WHERE clock_boot IS NOT NULL AND state != 3",
                (now_wall,),
            )
            # Held rows are never judged by age: their times are not known yet.
            delivered, undelivered, size = db.execute(
                "SELECT COALESCE(SUM(state = 2), 0), COALESCE(SUM(state < 2), 0), "
                "COALESCE(SUM(size), 0) FROM records "
                "WHERE created_wall < ? AND state != 3",
                (cutoff,),
            ).fetchone()
            if delivered or undelivered:
                db.execute(
                    "DELETE FROM records WHERE created_wall < ? AND state != 3",
                    (cutoff,),
                )
                self._set_meta(
                    db, "purged_delivered", self._meta["purged_delivered"] + delivered
                )
                self._set_meta(
                    db,
                    "dropped_retention",
                    self._meta["dropped_retention"] + undelivered,
                )
        self._meta["purged_delivered"] += delivered
        self._meta["dropped_retention"] += undelivered
        self._stored -= int(size)
        self._pending -= int(undelivered)
        if undelivered:
            _warn_dropped(
                "retention", int(undelivered), int(self._meta["dropped_retention"])
            )
        return PurgeResult(int(delivered), int(undelivered))

    def pending(self) -> int:
        return self._pending

    def stats(self) -> OutboxStats:
        try:
            counts = dict(
                self._db.execute(
                    "SELECT state, COUNT(*) FROM records GROUP BY state"
                ).fetchall()
            )
            oldest = self._db.execute(
                "SELECT created_wall FROM records WHERE state < 2 "
                "ORDER BY boot, seq LIMIT 1"
            ).fetchone()
        except sqlite3.Error as exc:
            raise OutboxError(f"outbox {self.path}: stats: {exc}") from exc
        return OutboxStats(
            boot=self._boot,
            ready=int(counts.get(0, 0)),
            inflight=int(counts.get(1, 0)),
            delivered=int(counts.get(2, 0)),
            stored_bytes=self._stored,
            max_bytes=self._max_bytes,
            oldest_wall=None if oldest is None else float(oldest[0]),
            dropped_size=int(self._meta["dropped_size"]),
            dropped_retention=int(self._meta["dropped_retention"]),
            purged_delivered=int(self._meta["purged_delivered"]),
            held=int(counts.get(3, 0)),
            rebased=int(self._meta["rebased"]),
            released_unrebased=int(self._meta["released_unrebased"]),
        )

    def close(self) -> None:
        """Close the database and release the writer lock (idempotent)."""
        if self._lock_file.closed:
            return
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        self._release_lock()


@contextlib.contextmanager
def _translate(
    path: str, what: str, inner: contextlib.AbstractContextManager[sqlite3.Connection]
) -> Iterator[sqlite3.Connection]:
    """sqlite3 errors become OutboxError at this shell's edge (style.md 3.7)."""
    try:
        with inner as db:
            yield db
    except sqlite3.Error as exc:
        raise OutboxError(f"outbox {path}: {what}: {exc}") from exc


def open_outbox(
    path: str,
    *,
    max_mb: float,
    retention_days: float,
    synchronous: Synchronous = "normal",
    boot_id: str | None = None,
) -> SqliteOutbox:
    """Open the unit's outbox with its configured bounds (gateway config `outbox`)."""
    return SqliteOutbox(
        path,
        max_bytes=int(max_mb * 1024 * 1024),
        retention_s=retention_days * 86_400.0,
        synchronous=synchronous,
        boot_id=boot_id,
    )
