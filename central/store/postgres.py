"""Shell: the PostgreSQL store (psycopg 3), for sites that outgrow one machine.

Same SQL as SQLite (`central.store.SqlStore`); only `?` placeholders become `%s`,
except the many-keys presence read (`_rows_by_keys`, see there why).
Autocommit outside explicit transactions, so a query never holds a snapshot open.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg

from central.store import PRESENCE_COLS, SqlStore, StoreError


@functools.lru_cache(maxsize=512)
def _pg(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresStore(SqlStore):
    dialect = "postgres"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        try:
            self._conn = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:
            # The message may name host and user, never a password (URLs with one
            # are refused by convention: use a .pgpass or PGPASSWORD file).
            raise StoreError(
                f"cannot connect to PostgreSQL: {exc}".splitlines()[0]
            ) from None
        self._tx: Any = None
        self._staging: set[str] = set()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._conn.cursor() as cur:
            cur.execute(_pg(sql), params)
            return int(cur.rowcount)

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(_pg(sql), rows)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._conn.cursor() as cur:
            cur.execute(_pg(sql), params)
            return list(cur.fetchall())

    def _insert_id(self, sql: str, params: Sequence[Any]) -> int:
        with self._conn.cursor() as cur:
            cur.execute(_pg(sql) + " RETURNING id", params)
            row = cur.fetchone()
            assert row is not None
            return int(row[0])

    def _upsert_many(
        self, table: str, columns: str, conflict: str, rows: Sequence[Sequence[Any]]
    ) -> None:
        """The same upsert through COPY into a temporary table, then one
        INSERT ... SELECT ... ON CONFLICT: several times faster than row-by-row for a
        500-record batch. Rows within one call have distinct keys (records.py checks
        seqs are unique per batch), as ON CONFLICT DO UPDATE requires."""
        if len(rows) < 20:
            super()._upsert_many(table, columns, conflict, rows)
            return
        staging = f"staging_{table}"
        with self._conn.cursor() as cur:
            if staging not in self._staging:
                cur.execute(
                    f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} "
                    f"(LIKE {table} INCLUDING DEFAULTS)"
                )
                self._staging.add(staging)
            cur.execute(f"TRUNCATE {staging}")
            with cur.copy(f"COPY {staging} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging} "  # noqa: S608 - constant SQL
                f"{conflict}"
            )

    def _rows_by_keys(
        self,
        keys: Sequence[str],
        lo: float,
        t1: float,
        t0: float,
        louder_than: float | None,
    ) -> list[tuple[Any, ...]]:
        """The same rows as `SqlStore._rows_by_keys`, one (key, t_start) range scan per
        key, forced by a LATERAL subquery over the key array.

        WHY: with `key IN (100+ keys)` and a few hours of t_start, PostgreSQL's planner
        prefers the plain (t_start) index (the heap is in t_start order, so its
        correlation makes that scan look cheap) and filters ~60,000 records of
        everyone through the key list: 30-70 ms a query at 10 M records against ~1 ms
        for the per-key range scans SQLite does, 4x the whole contacts query
        (strongest-zone cut, central.contacts.heard_with). OFFSET 0 keeps the
        subquery from being flattened back into that plan. One statement for any
        number of keys, so no IN_CHUNK either."""
        if not keys:
            return []
        loud = "" if louder_than is None else " AND p.rssi_median > ?"
        extra: tuple[float, ...] = () if louder_than is None else (louder_than,)
        cols = ", ".join("p." + c.strip() for c in PRESENCE_COLS.split(","))
        params = (list(keys), lo, t1, t0, *extra)
        rows = self._query(
            f"SELECT {PRESENCE_COLS} FROM unnest(?::text[]) AS u(k) CROSS JOIN LATERAL "  # noqa: S608 - constant SQL, values bound
            f"(SELECT {cols} FROM presence p WHERE p.key = u.k AND p.t_start >= ? "
            f"AND p.t_start < ? AND p.t_end > ?{loud} OFFSET 0) AS r",
            params,
        )
        rows += self._query(
            f"SELECT {PRESENCE_COLS} FROM unnest(?::text[]) AS u(k) CROSS JOIN LATERAL "  # noqa: S608 - constant SQL, values bound
            f"(SELECT {cols} FROM presence_keys pk JOIN presence p ON "
            "p.gateway = pk.gateway AND p.boot = pk.boot AND p.seq = pk.seq "
            "WHERE pk.key = u.k AND pk.t_start >= ? AND pk.t_start < ? "
            f"AND p.t_end > ?{loud} OFFSET 0) AS r",
            params,
        )
        return rows

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        if self._tx is not None:
            yield
            return
        with self._conn.transaction() as tx:
            self._tx = tx
            try:
                yield
            finally:
                self._tx = None

    def copy_rows(
        self, table: str, columns: str, rows: Sequence[Sequence[Any]]
    ) -> None:
        """COPY FROM STDIN (benchmarks, imports)."""
        with (
            self._conn.cursor() as cur,
            cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def analyze(self) -> None:
        self._execute("ANALYZE")

    def close(self) -> None:
        self._conn.close()
