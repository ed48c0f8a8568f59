"""Shell: the SQLite store (embedded default).

WAL so the ingest writer and the query readers never block each other;
`synchronous=NORMAL` (a power cut may lose the last committed transactions, never
corrupt the file; the gateway's outbox still holds what was not acknowledged... and
ingest acknowledges a batch to the broker only after its transaction committed).
A busy timeout lets several ingest workers share the one writer lock.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from central.store import SqlStore, StoreError


class SqliteStore(SqlStore):
    dialect = "sqlite"

    def __init__(self, url: str, *, busy_timeout_s: float = 30.0) -> None:
        super().__init__()
        self.url = url
        path = (
            url[len("sqlite://") :]
            if url.startswith("sqlite://")
            else url[len("sqlite:") :]
        )
        if not path:
            raise StoreError(f"no path in storage URL {url!r}")
        self.path = path
        if path != ":memory:":
            folder = os.path.dirname(path)
            if folder:
                os.makedirs(folder, exist_ok=True)
        try:
            self._conn = sqlite3.connect(
                path,
                timeout=busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA temp_store=MEMORY")
            # 64 MiB of page cache: index inserts of a busy ingest stay in memory.
            self._conn.execute("PRAGMA cache_size=-65536")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {path}: {exc}") from None
        self._depth = 0

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, params).rowcount

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, params).fetchall()

    def _insert_id(self, sql: str, params: Sequence[Any]) -> int:
        cursor = self._conn.execute(sql, params)
        return int(cursor.lastrowid or 0)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction (re-entrant); BEGIN IMMEDIATE takes the writer lock up
        front so two workers never deadlock upgrading a read lock."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self._conn.execute("ROLLBACK")
            raise
        self._depth = 0
        self._conn.execute("COMMIT")

    def bulk_load(
        self, table: str, columns: str, rows: Sequence[Sequence[Any]]
    ) -> None:
        """Plain INSERT of many rows in one transaction (benchmarks, imports)."""
        n = len(columns.split(","))
        with self.transaction():
            self._conn.executemany(
                f"INSERT INTO {table} ({columns}) VALUES ({','.join('?' * n)})",  # noqa: S608 - constant SQL, values bound
                rows,
            )

    def analyze(self) -> None:
        self._conn.execute("ANALYZE")

    def close(self) -> None:
        self._conn.close()
