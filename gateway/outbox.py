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

Disk use is bounded (`max_bytes`): past the bound, delivered rows go first, then the
oldest undelivered ones, which are counted in a persisted counter and logged at
WARNING -- never silently. `purge` applies the retention limit (privacy: raw records
expire) and counts what it removes. Delivered rows are kept until retention or size
pressure removes them: they cost nothing extra to keep (the bound is the same) and
give a technician the unit's own copy of what it sent.

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

from gateway.envelope import canonical_json
from gateway.errors import BlueGateError

_LOGGER = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 1
# What one row costs beyond its JSON body: SQLite's record header, the integer and
# real columns, and the (state, boot, seq) and (boot, seq) index entries. Measured
# on SQLite 3.40 with 300-byte presence records: the file grows ~70 bytes a row more
# than the bodies. The bound is therefore close to the real file size (plus the WAL,
# itself capped by `journal_size_limit`).
ROW_OVERHEAD_BYTES: Final = 72
# After a checkpoint SQLite truncates the WAL to this size, so the WAL cannot keep
# a large file around after a burst (bounded disk, design.md).
WAL_SIZE_LIMIT_BYTES: Final = 4 * 1024 * 1024
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
            "boot": self.boot,
        }


class Outbox(Protocol):
    """What the publisher, `drain`, `replay` and the daemon's tick use."""

    @property
    def boot(self) -> int: ...

    def append_many(
        self, records: Sequence[Mapping[str, Any]], now_wall: float
    ) -> list[int]:
        """Commit the tick's records in one transaction; return their seqs."""
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
    ) -> None:
        self._store = store if store is not None else MemoryStore()
        if self._store.locked:
            raise OutboxBusy("outbox is open in another process")
        self._store.locked = True
        self._max_bytes = max_bytes
        self._retention_s = retention_s
        meta = self._store.meta
        meta["boot"] = meta.get("boot", 0) + 1
        self._boot = int(meta["boot"])
        self._next_seq = 0
        for row in self._store.rows.values():
            if row.state is State.INFLIGHT:
                row.state = State.READY

    @property
    def boot(self) -> int:
        return self._boot

    def _count(self, key: str, n: int) -> int:
        self._store.meta[key] = self._store.meta.get(key, 0) + n
        return int(self._store.meta[key])

    def append_many(
        self, records: Sequence[Mapping[str, Any]], now_wall: float
    ) -> list[int]:
        if not records:
            return []
        meta = self._store.meta
        created = max(now_wall, meta.get("wall_high", now_wall))
        meta["wall_high"] = created
        seqs = []
        for record in records:
            body = record_body(record)
            row = _MemRow(
                self._store.next_id,
                self._boot,
                self._next_seq,
                created,
                body,
                row_size(body),
            )
            self._store.rows[row.id] = row
            self._store.next_id += 1
            seqs.append(self._next_seq)
            self._next_seq += 1
        self._enforce_bound()
        return seqs

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
            if row is not None and row.state is not State.DELIVERED:
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
        old = [r for r in self._store.rows.values() if r.created_wall < cutoff]
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
            1 for r in self._store.rows.values() if r.state is not State.DELIVERED
        )

    def stats(self) -> OutboxStats:
        rows = self._store.rows.values()
        by_state = {s: 0 for s in State}
        for row in rows:
            by_state[row.state] += 1
        waiting = [r for r in rows if r.state is not State.DELIVERED]
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
)
if len(MIGRATIONS) != SCHEMA_VERSION:  # a release forgot its migration
    raise RuntimeError("outbox: MIGRATIONS and SCHEMA_VERSION disagree")

_META_KEYS: Final = (
    "boot",
    "wall_high",
    "dropped_size",
    "dropped_retention",
    "purged_delivered",
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
    ) -> None:
        self.path = path
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
            pending, stored = db.execute(
                "SELECT COALESCE(SUM(state < 2), 0), COALESCE(SUM(size), 0) "
                "FROM records"
            ).fetchone()
        self._meta = {k: float(meta.get(k, 0)) for k in _META_KEYS}
        self._meta["boot"] = self._boot
        self._next_seq = 0
        self._pending = int(pending)
        self._stored = int(stored)
        if requeued:
            _LOGGER.info("outbox: %d in-flight record(s) back to ready", requeued)
        _LOGGER.info(
            "outbox: opened %s boot=%d pending=%d", self.path, self._boot, pending
        )

    # -- the contract

    @property
    def boot(self) -> int:
        return self._boot

    def _write(
        self, what: str
    ) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return _translate(self.path, what, self._tx())

    def _set_meta(self, db: sqlite3.Connection, key: str, value: float) -> None:
        db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value)
        )

    def append_many(
        self, records: Sequence[Mapping[str, Any]], now_wall: float
    ) -> list[int]:
        if not records:
            return []  # no transaction at all on a quiet tick (SD-card writes)
        # A Pi without a battery clock may boot in the past; never let created_wall
        # go backwards, or a later retention purge would see fresh records as old.
        created = max(now_wall, self._meta["wall_high"] or now_wall)
        first = self._next_seq
        rows = []
        added = 0
        for offset, record in enumerate(records):
            body = record_body(record)
            size = row_size(body)
            added += size
            rows.append((self._boot, first + offset, created, size, body))
        with self._write("append") as db:
            db.executemany(
                "INSERT INTO records (boot, seq, created_wall, size, body) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            self._set_meta(db, "wall_high", created)
            stored = self._stored + added
            pending = self._pending + len(rows)
            purged = dropped = 0
            if stored > self._max_bytes:
                stored, purged, dropped = self._enforce_bound(db, stored)
                pending -= dropped
                self._set_meta(
                    db, "purged_delivered", self._meta["purged_delivered"] + purged
                )
                self._set_meta(db, "dropped_size", self._meta["dropped_size"] + dropped)
        # Only after COMMIT: a rolled-back tick changes nothing in memory either.
        self._next_seq = first + len(rows)
        self._meta["wall_high"] = created
        self._meta["purged_delivered"] += purged
        self._meta["dropped_size"] += dropped
        self._stored, self._pending = stored, pending
        if dropped:
            _warn_dropped("size bound", dropped, int(self._meta["dropped_size"]))
        return list(range(first, first + len(rows)))

    def _enforce_bound(
        self, db: sqlite3.Connection, stored: int
    ) -> tuple[int, int, int]:
        """Delete delivered rows, then the oldest undelivered, until under the bound.

        Returns (stored bytes after, delivered rows purged, undelivered rows dropped).
        """
        purged = dropped = 0
        for delivered in (True, False):
            where = "state = 2" if delivered else "state < 2"
            while stored > self._max_bytes:
                chunk = db.execute(
                    f"SELECT id, size FROM records WHERE {where} "  # noqa: S608
                    "ORDER BY id LIMIT ?",
                    (_DROP_CHUNK,),
                ).fetchall()
                if not chunk:
                    break
                last_id = chunk[-1][0]
                for row_id, size in chunk:
                    stored -= size
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
        return stored, purged, dropped

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
            delivered, undelivered, size = db.execute(
                "SELECT COALESCE(SUM(state = 2), 0), COALESCE(SUM(state < 2), 0), "
                "COALESCE(SUM(size), 0) FROM records WHERE created_wall < ?",
                (cutoff,),
            ).fetchone()
            if delivered or undelivered:
                db.execute("DELETE FROM records WHERE created_wall < ?", (cutoff,))
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
) -> SqliteOutbox:
    """Open the unit's outbox with its configured bounds (gateway config `outbox`)."""
    return SqliteOutbox(
        path,
        max_bytes=int(max_mb * 1024 * 1024),
        retention_s=retention_days * 86_400.0,
        synchronous=synchronous,
    )
