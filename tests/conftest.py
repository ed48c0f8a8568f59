"""Fixtures shared by every test: the shared real-data folder and real servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import Mosquitto, Postgres

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("BLUEGATE_SHARED", REPO.parent / "shared"))
DATA = SHARED / "data"
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data`: real captures, vectors and RSSI datasets (must exist in CI)."""
    assert DATA.is_dir(), f"shared data not found at {DATA}; set BLUEGATE_SHARED"
    return DATA


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A real Mosquitto on 127.0.0.1, plain TCP, anonymous, persistence on."""
    broker = Mosquitto(tmp_path / "mosquitto").start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """One real PostgreSQL server for the session (each test makes its own database)."""
    server = Postgres(tmp_path_factory.mktemp("postgres")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
