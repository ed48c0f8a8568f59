"""Shell: central's storage behind one interface, SQLite (embedded default, WAL) or
PostgreSQL (psycopg 3), with the SAME SQL text and meaning in both.

`SqlStore` holds every statement, written with `?` placeholders in the common subset
of the two dialects (ON CONFLICT upserts, window functions, CASE instead of
MAX/GREATEST); the subclasses only open the connection, translate placeholders and
map the few DDL types (`central.store.schema`), and PostgreSQL reads many keys'
records its own way (`_rows_by_keys`: its planner picks the wrong index for a long IN
list). One Store object owns one
connection and is used from one thread (ingest workers each open their own).

Interval queries use the bound of the longest presence record ever stored
(`limits.max_presence_s`): with it, ``t_start >= t0 - max_len`` turns "overlaps
[t0, t1)" into a range scan of the btree on (gateway, t_start) or (key, t_start)
(central-reference.md 0.10).
"""

from __future__ import annotations

import abc
import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from central.records import BatchRows
from central.rules import Interval, PresenceRow, RefData, ZoneRef
from central.store import schema

_LOGGER = logging.getLogger(__name__)

PRESENCE_COLS = (
    "gateway, boot, seq, site, zone, zone_kind, key, keys, t_start, t_end, "
    "immediate_s, near_s, far_s, rssi_median"
)
PRESENCE_INSERT_COLS = (
    "gateway, boot, seq, site, zone, zone_kind, key, keys, t_start, t_end, n, "
    "rssi_min, rssi_median, rssi_max, immediate_s, near_s, far_s, clock, received"
)
IN_CHUNK = 500
PRESENCE_UPSERT = (
    "ON CONFLICT (gateway, boot, seq) DO UPDATE SET "
    "t_end = excluded.t_end, n = excluded.n, keys = excluded.keys, "
    "immediate_s = excluded.immediate_s, near_s = excluded.near_s, "
    "far_s = excluded.far_s, rssi_median = excluded.rssi_median"
)


class StoreError(Exception):
    """A storage failure (connection, schema newer than this program, ...)."""


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    duplicate: bool
    records: int


def presence_row(row: Sequence[Any]) -> PresenceRow:
    """A PRESENCE_COLS row; both drivers already return int and float."""
    keys = tuple(json.loads(row[7])) if row[7] else (row[6],)
    return PresenceRow(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], keys,
        row[8], row[9], row[10], row[11], row[12], row[13],
    )  # fmt: skip


def _chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _marks(n: int) -> str:
    return ",".join("?" * n)


class SqlStore(abc.ABC):
    dialect: str = ""
    url: str = ""

    def __init__(self) -> None:
        self._max_presence_s: float | None = None

    # ------------------------------------------------------------ dialect hooks
    @abc.abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    @abc.abstractmethod
    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    @abc.abstractmethod
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    @abc.abstractmethod
    def _insert_id(self, sql: str, params: Sequence[Any]) -> int: ...

    def _upsert_many(
        self, table: str, columns: str, conflict: str, rows: Sequence[Sequence[Any]]
    ) -> None:
        """INSERT ... `conflict` for every row (PostgreSQL overrides with COPY)."""
        n = len(columns.split(","))
        self._executemany(
            f"INSERT INTO {table} ({columns}) VALUES ({_marks(n)}) {conflict}",  # noqa: S608 - constant SQL, values bound
            rows,
        )

    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[None]: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    # ------------------------------------------------------------------ schema
    def migrate(self) -> int:
        """Apply pending migrations; return the schema version."""
        with self.transaction():
            self._execute(
                "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            rows = self._query("SELECT value FROM meta WHERE name = 'schema_version'")
            current = int(rows[0][0]) if rows else 0
            if current > schema.SCHEMA_VERSION:
                raise StoreError(
                    f"database schema version {current} is newer than this program's "
                    f"{schema.SCHEMA_VERSION}; upgrade bluegate"
                )
            for version in range(current + 1, schema.SCHEMA_VERSION + 1):
                for stmt in schema.statements(version, self.dialect):
                    if stmt.startswith("CREATE TABLE IF NOT EXISTS meta"):
                        continue
                    self._execute(stmt)
                self._execute(
                    "INSERT INTO meta (name, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (str(version),),
                )
                _LOGGER.info("storage: applied schema migration %d", version)
            if not self._query("SELECT name FROM meta WHERE name = 'max_presence_s'"):
                self._execute(
                    "INSERT INTO meta (name, value) VALUES ('max_presence_s', '0')"
                )
        return schema.SCHEMA_VERSION

    def schema_version(self) -> int:
        rows = self._query("SELECT value FROM meta WHERE name = 'schema_version'")
        return int(rows[0][0]) if rows else 0

    # ------------------------------------------------------------------ ingest
    def ingest(
        self, batch: BatchRows, *, received: float, signed: bool
    ) -> IngestOutcome:
        """Store one verified batch in one transaction; idempotent on (gateway, boot, seq)."""
        with self.transaction():
            inserted = self._execute(
                "INSERT INTO batches (gateway, boot, seq, site, first_seq, last_seq, "
                "n_records, sent, received, signed) VALUES (?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (gateway, boot, seq) DO NOTHING",
                (
                    batch.gateway,
                    batch.boot,
                    batch.seq,
                    batch.site,
                    batch.first_seq,
                    batch.last_seq,
                    batch.n_records,
                    batch.sent,
                    received,
                    int(signed),
                ),
            )
            self._execute(
                "INSERT INTO gateway_status (gateway, site, last_batch_at) VALUES (?,?,?) "
                "ON CONFLICT (gateway) DO UPDATE SET site = excluded.site, "
                "last_batch_at = excluded.last_batch_at",
                (batch.gateway, batch.site, received),
            )
            if inserted == 0:
                return IngestOutcome(True, 0)
            # Records are immutable per (gateway, boot, seq); a batch re-cut by the
            # gateway after a restart may repeat some, so they upsert individually.
            if batch.presence:
                self._upsert_many(
                    "presence", PRESENCE_INSERT_COLS, PRESENCE_UPSERT, batch.presence
                )
            if batch.extra_keys:
                self._executemany(
                    "INSERT INTO presence_keys (key, gateway, boot, seq, t_start) "
                    "VALUES (?,?,?,?,?) ON CONFLICT (key, gateway, boot, seq) DO NOTHING",
                    batch.extra_keys,
                )
            if batch.gate:
                self._executemany(
                    "INSERT INTO gate_events (gateway, boot, seq, site, key, t, direction, "
                    "received) VALUES (?,?,?,?,?,?,?,?) "
                    "ON CONFLICT (gateway, boot, seq) DO NOTHING",
                    batch.gate,
                )
            if batch.occupancy:
                self._executemany(
                    "INSERT INTO occupancy (gateway, boot, seq, site, zone, t, count, "
                    "received) VALUES (?,?,?,?,?,?,?,?) "
                    "ON CONFLICT (gateway, boot, seq) DO NOTHING",
                    batch.occupancy,
                )
            for zone, (kind, first, last) in batch.zones_seen.items():
                self._execute(
                    "INSERT INTO gateway_zones_seen (gateway, zone, zone_kind, site, "
                    "first_t, last_t) VALUES (?,?,?,?,?,?) ON CONFLICT (gateway, zone) "
                    "DO UPDATE SET zone_kind = excluded.zone_kind, "
                    "first_t = CASE WHEN excluded.first_t < gateway_zones_seen.first_t "
                    "THEN excluded.first_t ELSE gateway_zones_seen.first_t END, "
                    "last_t = CASE WHEN excluded.last_t > gateway_zones_seen.last_t "
                    "THEN excluded.last_t ELSE gateway_zones_seen.last_t END",
                    (batch.gateway, zone, kind, batch.site, first, last),
                )
            self.note_presence_length(batch.max_presence_s)
        return IngestOutcome(False, batch.n_records)

    def note_presence_length(self, seconds: float) -> None:
        """Raise the stored max record length (monotone; cached per connection)."""
        if self._max_presence_s is not None and seconds <= self._max_presence_s:
            return
        rows = self._query("SELECT value FROM meta WHERE name = 'max_presence_s'")
        current = float(rows[0][0]) if rows else 0.0
        if seconds > current:
            # Text compare is wrong for numbers; the row lock of UPDATE serialises
            # concurrent writers and the WHERE re-checks under the lock.
            self._execute(
                "UPDATE meta SET value = ? WHERE name = 'max_presence_s' AND "
                "CAST(value AS DOUBLE PRECISION) < ?",
                (repr(seconds), seconds),
            )
            current = seconds
        self._max_presence_s = current

    def max_presence_s(self) -> float:
        rows = self._query("SELECT value FROM meta WHERE name = 'max_presence_s'")
        return float(rows[0][0]) if rows else 0.0

    def quarantine(
        self,
        *,
        received: float,
        topic: str,
        site: str | None,
        gateway: str | None,
        reason: str,
        detail: str,
        payload: bytes,
    ) -> int:
        with self.transaction():
            return self._insert_id(
                "INSERT INTO quarantine (received, topic, site, gateway, reason, detail, "
                "payload) VALUES (?,?,?,?,?,?,?)",
                (received, topic, site, gateway, reason, detail[:2000], payload),
            )

    def list_quarantine(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT id, received, topic, site, gateway, reason, detail, payload "
            "FROM quarantine ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            {
                "id": r[0],
                "received": r[1],
                "topic": r[2],
                "site": r[3],
                "gateway": r[4],
                "reason": r[5],
                "detail": r[6],
                "payload": bytes(r[7]),
            }
            for r in rows
        ]

    def set_status(self, gateway: str, site: str, status: str, t: float) -> None:
        with self.transaction():
            self._execute(
                "INSERT INTO gateway_status (gateway, site, status, status_at) "
                "VALUES (?,?,?,?) ON CONFLICT (gateway) DO UPDATE SET "
                "site = excluded.site, status = excluded.status, "
                "status_at = excluded.status_at",
                (gateway, site, status, t),
            )

    def set_health(
        self, gateway: str, site: str, health: dict[str, Any], t: float
    ) -> None:
        with self.transaction():
            self._execute(
                "INSERT INTO gateway_status (gateway, site, health, health_at) "
                "VALUES (?,?,?,?) ON CONFLICT (gateway) DO UPDATE SET "
                "site = excluded.site, health = excluded.health, "
                "health_at = excluded.health_at",
                (gateway, site, json.dumps(health, sort_keys=True), t),
            )

    def gateway_status(self) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT gateway, site, status, status_at, health, health_at, last_batch_at "
            "FROM gateway_status ORDER BY gateway"
        )
        return [
            {
                "gateway": r[0],
                "site": r[1],
                "status": r[2],
                "status_at": r[3],
                "health": json.loads(r[4]) if r[4] else None,
                "health_at": r[5],
                "last_batch_at": r[6],
            }
            for r in rows
        ]

    def sequence_gaps(self, gateway: str | None = None) -> list[dict[str, Any]]:
        """Missing record seq ranges per (gateway, boot), from the accepted batches.

        `after_t`/`before_t`: the gateway's send times of the batches around the gap
        (what was lost was recorded between them)."""
        where = "WHERE gateway = ?" if gateway else ""
        frame = (
            "OVER (PARTITION BY gateway, boot ORDER BY first_seq, last_seq "
            "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
        )
        rows = self._query(
            "SELECT gateway, boot, first_seq, prev_last, prev_sent, sent FROM ("  # noqa: S608 - constant SQL, values bound
            f"SELECT gateway, boot, first_seq, sent, MAX(last_seq) {frame} AS prev_last, "
            f"MAX(sent) {frame} AS prev_sent "
            f"FROM batches {where}) AS b "
            "WHERE prev_last IS NOT NULL AND first_seq > prev_last + 1 "
            "ORDER BY gateway, boot, first_seq",
            (gateway,) if gateway else (),
        )
        return [
            {
                "gateway": r[0],
                "boot": int(r[1]),
                "from_seq": int(r[3]) + 1,
                "to_seq": int(r[2]) - 1,
                "missing": int(r[2]) - int(r[3]) - 1,
                "after_t": r[4],
                "before_t": r[5],
            }
            for r in rows
        ]

    # ------------------------------------------------------------- gateway keys
    def enroll_gateway(self, gateway: str, public_key_pem: str, t: float) -> None:
        with self.transaction():
            self._execute(
                "INSERT INTO gateway_keys (gateway, public_key, enrolled) VALUES (?,?,?) "
                "ON CONFLICT (gateway) DO UPDATE SET public_key = excluded.public_key, "
                "enrolled = excluded.enrolled",
                (gateway, public_key_pem, t),
            )

    def gateway_key(self, gateway: str) -> str | None:
        rows = self._query(
            "SELECT public_key FROM gateway_keys WHERE gateway = ?", (gateway,)
        )
        return str(rows[0][0]) if rows else None

    def list_gateway_keys(self) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT gateway, enrolled FROM gateway_keys ORDER BY gateway"
        )
        return [{"gateway": r[0], "enrolled": r[1]} for r in rows]

    # ----------------------------------------------------------- reference data
    def upsert_site(self, site: str, name: str | None, tz: str | None) -> None:
        self._execute(
            "INSERT INTO sites (site, name, tz) VALUES (?,?,?) ON CONFLICT (site) "
            "DO UPDATE SET name = excluded.name, tz = excluded.tz",
            (site, name, tz),
        )

    def upsert_zone(
        self,
        zone: str,
        site: str | None,
        name: str | None,
        kind: str,
        enclosed: bool,
        capacity: int | None,
    ) -> None:
        self._execute(
            "INSERT INTO zones (zone, site, name, kind, enclosed, capacity) "
            "VALUES (?,?,?,?,?,?) ON CONFLICT (zone) DO UPDATE SET site = excluded.site, "
            "name = excluded.name, kind = excluded.kind, enclosed = excluded.enclosed, "
            "capacity = excluded.capacity",
            (zone, site, name, kind, int(enclosed), capacity),
        )

    def upsert_gateway(self, gateway: str, site: str | None, notes: str | None) -> None:
        self._execute(
            "INSERT INTO gateways (gateway, site, notes) VALUES (?,?,?) "
            "ON CONFLICT (gateway) DO UPDATE SET site = excluded.site, notes = excluded.notes",
            (gateway, site, notes),
        )

    def set_gateway_zone(
        self, gateway: str, zone: str, valid_from: float, valid_to: float | None
    ) -> None:
        """Assign a gateway to a zone from `valid_from`; an identical row is kept once."""
        self._execute(
            "DELETE FROM gateway_zones WHERE gateway = ? AND valid_from = ?",
            (gateway, valid_from),
        )
        self._execute(
            "INSERT INTO gateway_zones (gateway, zone, valid_from, valid_to) VALUES (?,?,?,?)",
            (gateway, zone, valid_from, valid_to),
        )

    def upsert_person(
        self,
        person: str,
        kind: str,
        name: str | None,
        employer: str | None,
        phone: str | None,
        host: str | None,
    ) -> None:
        self._execute(
            "INSERT INTO people (person, kind, name, employer, phone, host) "
            "VALUES (?,?,?,?,?,?) ON CONFLICT (person) DO UPDATE SET kind = excluded.kind, "
            "name = excluded.name, employer = excluded.employer, phone = excluded.phone, "
            "host = excluded.host",
            (person, kind, name, employer, phone, host),
        )

    def assign_tag(
        self, key: str, person: str, valid_from: float, valid_to: float | None
    ) -> None:
        self._execute(
            "DELETE FROM tag_assignments WHERE key = ? AND valid_from = ?",
            (key, valid_from),
        )
        self._execute(
            "INSERT INTO tag_assignments (key, person, valid_from, valid_to) VALUES (?,?,?,?)",
            (key, person, valid_from, valid_to),
        )

    def list_table(self, table: str) -> list[dict[str, Any]]:
        columns = {
            "sites": "site, name, tz",
            "zones": "zone, site, name, kind, enclosed, capacity",
            "gateways": "gateway, site, notes",
            "gateway_zones": "gateway, zone, valid_from, valid_to",
            "people": "person, kind, name, employer, phone, host",
            "tag_assignments": "key, person, valid_from, valid_to",
        }[table]
        rows = self._query(f"SELECT {columns} FROM {table} ORDER BY 1, 2")  # noqa: S608
        names = [c.strip() for c in columns.split(",")]
        return [dict(zip(names, r, strict=True)) for r in rows]

    def person(self, person: str) -> dict[str, Any] | None:
        rows = self._query(
            "SELECT person, kind, name, employer, phone, host FROM people WHERE person = ?",
            (person,),
        )
        if not rows:
            return None
        names = ("person", "kind", "name", "employer", "phone", "host")
        return dict(zip(names, rows[0], strict=True))

    def refdata(
        self, *, tag_keys: Sequence[str] | None = None, person: str | None = None
    ) -> RefData:
        """Zones and gateway zones (small tables); tags only for the keys or person asked."""
        ref = RefData()
        for zone, kind, enclosed, site in self._query(
            "SELECT zone, kind, enclosed, site FROM zones"
        ):
            ref.zones[zone] = ZoneRef(zone, kind, bool(enclosed), site)
        for gateway, zone, a, b in self._query(
            "SELECT gateway, zone, valid_from, valid_to FROM gateway_zones ORDER BY gateway, valid_from"
        ):
            ref.gateway_zones.setdefault(gateway, []).append(Interval(a, b, zone))
        tag_rows: list[tuple[Any, ...]] = []
        if tag_keys is None and person is None:
            tag_rows = self._query(
                "SELECT key, person, valid_from, valid_to FROM tag_assignments"
            )
        if tag_keys:
            unique = sorted(set(tag_keys))
            for chunk in _chunks(unique):
                tag_rows += self._query(
                    "SELECT key, person, valid_from, valid_to FROM tag_assignments "  # noqa: S608 - constant SQL, values bound
                    f"WHERE key IN ({_marks(len(chunk))})",
                    chunk,
                )
        if person is not None:
            tag_rows += self._query(
                "SELECT key, person, valid_from, valid_to FROM tag_assignments WHERE person = ?",
                (person,),
            )
        seen = set()
        for key, who, a, b in sorted(tag_rows, key=lambda r: (r[0], r[2])):
            if (key, a) in seen:
                continue
            seen.add((key, a))
            ref.tags.setdefault(key, []).append(Interval(a, b, who))
        return ref

    def gateways_seen_in(self, zone: str) -> list[str]:
        rows = self._query(
            "SELECT gateway FROM gateway_zones_seen WHERE zone = ?", (zone,)
        )
        return [r[0] for r in rows]

    def zones_seen(self) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT gateway, zone, zone_kind, site, first_t, last_t FROM gateway_zones_seen "
            "ORDER BY gateway, zone"
        )
        names = ("gateway", "zone", "zone_kind", "site", "first", "last")
        return [dict(zip(names, r, strict=True)) for r in rows]

    # --------------------------------------------------------------- presence
    def presence_by_keys(
        self,
        keys: Sequence[str],
        t0: float,
        t1: float,
        *,
        louder_than: float | None = None,
    ) -> list[PresenceRow]:
        """Presence records carrying any of `keys` (primary or chained) overlapping [t0, t1);
        with `louder_than`, only those whose rssi_median is above it (the strongest-zone
        cut, central.contacts.heard_with)."""
        lo = t0 - self.max_presence_s()
        found: dict[tuple[str, int, int], PresenceRow] = {}
        for r in self._rows_by_keys(sorted(set(keys)), lo, t1, t0, louder_than):
            found[(r[0], int(r[1]), int(r[2]))] = presence_row(r)
        return sorted(found.values(), key=lambda p: (p.start, p.gateway, p.boot, p.seq))

    def _rows_by_keys(
        self,
        keys: Sequence[str],
        lo: float,
        t1: float,
        t0: float,
        louder_than: float | None,
    ) -> list[tuple[Any, ...]]:
        """PRESENCE_COLS rows (duplicates allowed) of the records carrying one of `keys`
        as primary or chained key with lo <= t_start < t1 and t_end > t0 (and
        rssi_median > louder_than): IN lists of IN_CHUNK keys, each answered by
        SQLite's planner through the (key, t_start) index."""
        loud = "" if louder_than is None else " AND rssi_median > ?"
        extra: tuple[float, ...] = () if louder_than is None else (louder_than,)
        out: list[tuple[Any, ...]] = []
        for chunk in _chunks(keys):
            marks = _marks(len(chunk))
            out += self._query(
                f"SELECT {PRESENCE_COLS} FROM presence WHERE key IN ({marks}) "  # noqa: S608 - constant SQL, values bound
                "AND t_start >= ? AND t_start < ? AND t_end > ?" + loud,
                (*chunk, lo, t1, t0, *extra),
            )
            out += self._query(
                f"SELECT {', '.join('p.' + c.strip() for c in PRESENCE_COLS.split(','))} "  # noqa: S608 - constant SQL, values bound
                "FROM presence_keys k JOIN presence p ON p.gateway = k.gateway AND "
                f"p.boot = k.boot AND p.seq = k.seq WHERE k.key IN ({marks}) "
                "AND k.t_start >= ? AND k.t_start < ? AND p.t_end > ?"
                + loud.replace("rssi_median", "p.rssi_median"),
                (*chunk, lo, t1, t0, *extra),
            )
        return out

    def presence_at_gateways(
        self, gateways: Sequence[str], t0: float, t1: float
    ) -> list[PresenceRow]:
        """Presence records at `gateways` overlapping [t0, t1) (range scan per gateway)."""
        lo = t0 - self.max_presence_s()
        out: list[PresenceRow] = []
        for gateway in sorted(set(gateways)):
            rows = self._query(
                f"SELECT {PRESENCE_COLS} FROM presence WHERE gateway = ? "  # noqa: S608 - constant SQL, values bound
                "AND t_start >= ? AND t_start < ? AND t_end > ?",
                (gateway, lo, t1, t0),
            )
            out.extend(presence_row(r) for r in rows)
        return out

    def presence_all(self, t0: float, t1: float) -> list[PresenceRow]:
        lo = t0 - self.max_presence_s()
        rows = self._query(
            f"SELECT {PRESENCE_COLS} FROM presence WHERE t_start >= ? AND t_start < ? "  # noqa: S608 - constant SQL, values bound
            "AND t_end > ? ORDER BY t_start, gateway, boot, seq",
            (lo, t1, t0),
        )
        return [presence_row(r) for r in rows]

    def gate_events(self, site: str, t0: float, t1: float) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT gateway, key, t, direction FROM gate_events WHERE site = ? "
            "AND t >= ? AND t < ? ORDER BY t, gateway, seq",
            (site, t0, t1),
        )
        return [
            {"gateway": r[0], "key": r[1], "t": r[2], "direction": r[3]} for r in rows
        ]

    def last_gate_direction(self, site: str, before: float) -> list[tuple[str, str]]:
        """(key, last direction) of every key with a gate event at `site` before `before`."""
        rows = self._query(
            "SELECT g.key, g.direction FROM gate_events g JOIN ("
            "SELECT key, MAX(t) AS t FROM gate_events WHERE site = ? AND t < ? "
            "AND key IS NOT NULL GROUP BY key) AS last ON g.key = last.key AND g.t = last.t "
            "WHERE g.site = ? ORDER BY g.key",
            (site, before, site),
        )
        return [(r[0], r[1]) for r in rows]

    def occupancy(
        self, gateways: Sequence[str], t0: float, t1: float, bucket_s: float
    ) -> list[tuple[str, float, int]]:
        """(gateway, bucket start, max count) per bucket; integer division of epoch."""
        out: list[tuple[str, float, int]] = []
        for chunk in _chunks(sorted(set(gateways))):
            rows = self._query(
                "SELECT gateway, b, MAX(count) FROM (SELECT gateway, "  # noqa: S608 - constant SQL, values bound
                "FLOOR(t / ?) AS b, count FROM occupancy "
                f"WHERE gateway IN ({_marks(len(chunk))}) AND t >= ? AND t < ?) AS o "
                "GROUP BY gateway, b ORDER BY gateway, b",
                (bucket_s, *chunk, t0, t1),
            )
            out += [(r[0], float(r[1]) * bucket_s, int(r[2])) for r in rows]
        return out

    # ------------------------------------------------------------------- stats
    def stats(self) -> dict[str, Any]:
        def one(sql: str) -> int:
            return int(self._query(sql)[0][0] or 0)

        quarantined = {
            r[0]: int(r[1])
            for r in self._query(
                "SELECT reason, COUNT(*) FROM quarantine GROUP BY reason ORDER BY 1"
            )
        }
        return {
            "batches": one("SELECT COUNT(*) FROM batches"),
            "records": {
                "presence": one("SELECT COUNT(*) FROM presence"),
                "gate": one("SELECT COUNT(*) FROM gate_events"),
                "occupancy": one("SELECT COUNT(*) FROM occupancy"),
            },
            "quarantined": sum(quarantined.values()),
            "quarantined_by_reason": quarantined,
            "gateways": one(
                "SELECT COUNT(*) FROM (SELECT gateway FROM gateway_status UNION "
                "SELECT gateway FROM gateway_keys) AS g"
            ),
            "gateways_enrolled": one("SELECT COUNT(*) FROM gateway_keys"),
            "sequence_gaps": len(self.sequence_gaps()),
            "schema_version": self.schema_version(),
        }

    # --------------------------------------------------------------- retention
    def purge(self, before: float) -> dict[str, int]:
        """Delete raw records that ENDED before `before`; case extracts are kept."""
        with self.transaction():
            return {
                "presence_keys": self._execute(
                    "DELETE FROM presence_keys WHERE EXISTS (SELECT 1 FROM presence p "
                    "WHERE p.gateway = presence_keys.gateway AND p.boot = presence_keys.boot "
                    "AND p.seq = presence_keys.seq AND p.t_end < ?)",
                    (before,),
                ),
                "presence": self._execute(
                    "DELETE FROM presence WHERE t_end < ?", (before,)
                ),
                "gate_events": self._execute(
                    "DELETE FROM gate_events WHERE t < ?", (before,)
                ),
                "occupancy": self._execute(
                    "DELETE FROM occupancy WHERE t < ?", (before,)
                ),
                "quarantine": self._execute(
                    "DELETE FROM quarantine WHERE received < ?", (before,)
                ),
                # The ledger of old batches; gaps are computed between the batches
                # that remain, so purging the oldest never invents a gap.
                "batches": self._execute(
                    "DELETE FROM batches WHERE received < ?", (before,)
                ),
            }

    # -------------------------------------------------------------------- beacons
    def add_beacon(
        self,
        beacon: str,
        site: str,
        zone: str | None,
        *,
        scheme: str = "bluezone",
        key_file: str | None = None,
        base_key: str | None = None,
        created: float,
    ) -> None:
        """Register a beacon; its key is referenced by file, or stored (hex) if given."""
        with self.transaction():
            self._execute(
                "INSERT INTO beacons (beacon, site, zone, scheme, key_file, base_key, "
                "created, retired) VALUES (?,?,?,?,?,?,?,NULL) ON CONFLICT (beacon) DO "
                "UPDATE SET site = excluded.site, zone = excluded.zone, scheme = "
                "excluded.scheme, key_file = excluded.key_file, base_key = "
                "excluded.base_key, created = excluded.created, retired = NULL",
                (beacon, site, zone, scheme, key_file, base_key, created),
            )

    def _beacon_dicts(self, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        names = (
            "beacon",
            "site",
            "zone",
            "scheme",
            "key_file",
            "base_key",
            "created",
            "retired",
        )
        return [dict(zip(names, r, strict=True)) for r in rows]

    def list_beacons(self, *, include_retired: bool = False) -> list[dict[str, Any]]:
        where = "" if include_retired else "WHERE retired IS NULL"
        return self._beacon_dicts(
            self._query(
                "SELECT beacon, site, zone, scheme, key_file, base_key, created, retired "  # noqa: S608 - constant SQL, values bound
                f"FROM beacons {where} ORDER BY beacon"
            )
        )

    def get_beacon(self, beacon: str) -> dict[str, Any] | None:
        rows = self._beacon_dicts(
            self._query(
                "SELECT beacon, site, zone, scheme, key_file, base_key, created, retired "
                "FROM beacons WHERE beacon = ?",
                (beacon,),
            )
        )
        return rows[0] if rows else None

    def retire_beacon(self, beacon: str, t: float) -> bool:
        with self.transaction():
            return (
                self._execute(
                    "UPDATE beacons SET retired = ? WHERE beacon = ? AND retired IS NULL",
                    (t, beacon),
                )
                > 0
            )

    # --------------------------------------------------------------------- tokens
    def add_token(self, token_hash: str, role: str, label: str | None, t: float) -> int:
        with self.transaction():
            return self._insert_id(
                "INSERT INTO api_tokens (token_hash, role, label, created) VALUES (?,?,?,?)",
                (token_hash, role, label, t),
            )

    def token_by_hash(self, token_hash: str) -> dict[str, Any] | None:
        rows = self._query(
            "SELECT id, role, label, created FROM api_tokens "
            "WHERE token_hash = ? AND revoked IS NULL",
            (token_hash,),
        )
        if not rows:
            return None
        r = rows[0]
        return {"id": int(r[0]), "role": r[1], "label": r[2], "created": r[3]}

    def list_tokens(self) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT id, role, label, created, revoked FROM api_tokens ORDER BY id"
        )
        return [
            {
                "id": int(r[0]),
                "role": r[1],
                "label": r[2],
                "created": r[3],
                "revoked": r[4],
            }
            for r in rows
        ]

    def revoke_token(self, token_id: int, t: float) -> bool:
        with self.transaction():
            return (
                self._execute(
                    "UPDATE api_tokens SET revoked = ? WHERE id = ? AND revoked IS NULL",
                    (t, token_id),
                )
                > 0
            )

    # ----------------------------------------------------- case extracts, audit
    def save_case_extract(
        self, label: str | None, answer: dict[str, Any], t: float
    ) -> int:
        with self.transaction():
            return self._insert_id(
                "INSERT INTO case_extracts (created, label, answer) VALUES (?,?,?)",
                (t, label, json.dumps(answer, sort_keys=True)),
            )

    def get_case_extract(self, extract_id: int) -> dict[str, Any] | None:
        rows = self._query(
            "SELECT id, created, label, answer FROM case_extracts WHERE id = ?",
            (extract_id,),
        )
        if not rows:
            return None
        r = rows[0]
        return {
            "id": int(r[0]),
            "created": r[1],
            "label": r[2],
            "answer": json.loads(r[3]),
        }

    def list_case_extracts(self) -> list[dict[str, Any]]:
        rows = self._query("SELECT id, created, label FROM case_extracts ORDER BY id")
        return [{"id": int(r[0]), "created": r[1], "label": r[2]} for r in rows]

    def audit(
        self,
        t: float,
        actor: str | None,
        action: str,
        params: dict[str, Any],
        row_count: int,
    ) -> None:
        with self.transaction():
            self._execute(
                "INSERT INTO audit_log (t, actor, action, params, row_count) VALUES (?,?,?,?,?)",
                (t, actor, action, json.dumps(params, sort_keys=True), row_count),
            )

    def list_audit(self, limit: int = 1000) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT id, t, actor, action, params, row_count FROM audit_log "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            {
                "id": int(r[0]),
                "t": r[1],
                "actor": r[2],
                "action": r[3],
                "params": json.loads(r[4]) if r[4] else None,
                "rows": r[5],
            }
            for r in rows
        ]


Store = SqlStore


def is_transient(exc: BaseException) -> bool:
    """A storage error worth retrying (engine down, locked, connection lost), as
    opposed to the engine refusing this data."""
    import sqlite3

    if isinstance(exc, sqlite3.OperationalError | StoreError):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is in the central extra
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


def open_store(url: str, *, migrate: bool = True) -> SqlStore:
    """`sqlite:///path` or `postgresql://...`; applies pending migrations by default."""
    store: SqlStore
    if url.startswith("sqlite:"):
        from central.store.sqlite import SqliteStore

        store = SqliteStore(url)
    elif url.startswith(("postgresql://", "postgres://")):
        from central.store.postgres import PostgresStore

        store = PostgresStore(url)
    else:
        raise StoreError(f"unsupported storage URL scheme: {url.split(':', 1)[0]!r}")
    if migrate:
        store.migrate()
    return store
