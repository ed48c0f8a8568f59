"""Fixtures for central: a fresh store per test, over SQLite and real PostgreSQL."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from central.store import SqlStore, open_store
from tests.servers import Postgres

_counter = itertools.count()


def fresh_pg_database(server: Postgres) -> str:
    name = f"central_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.dsn.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)]
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path}/central.sqlite"
    server: Postgres = request.getfixturevalue("postgres")
    return fresh_pg_database(server)


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    s = open_store(store_url)
    try:
        yield s
    finally:
        s.close()
