"""Fixtures for the ops surface: a replayed site in a real SQLite file, tokens, and the
real HTTP server (central.api.HttpComponent) on a loopback port."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from central import auth
from central.api import HttpComponent
from central.config import CentralConfig, HttpConfig
from central.store import open_store
from tests.api.site import Replayed, replay_site


@dataclass
class Live:
    url: str
    ops: str
    admin: str
    storage: str
    replayed: Replayed
    component: HttpComponent

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = "ops",
        raw_body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        hdrs = dict(headers or {})
        if token in ("ops", "admin"):
            hdrs["Authorization"] = "Bearer " + (
                self.ops if token == "ops" else self.admin
            )
        elif token is not None:
            hdrs["Authorization"] = "Bearer " + token
        data = raw_body
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers=hdrs
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, payload, rh = resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            status, payload, rh = exc.code, exc.read(), dict(exc.headers)
        ctype = rh.get("Content-Type", "")
        parsed = (
            json.loads(payload)
            if ctype.startswith("application/json")
            else payload.decode()
        )
        return status, parsed, rh


def start_live(tmp: Path) -> Live:
    url = f"sqlite://{tmp}/central.sqlite"
    store = open_store(url)
    try:
        replayed = replay_site(store)
        _, ops = auth.create_token(store, "ops", "ops desk", time.time())
        _, admin = auth.create_token(store, "admin", "site admin", time.time())
    finally:
        store.close()
    config = CentralConfig(storage=url, http=HttpConfig(port=0, bind="127.0.0.1"))
    component = HttpComponent(config)
    component.start()
    return Live(
        f"http://127.0.0.1:{component.port}", ops, admin, url, replayed, component
    )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One replayed site and server per test module (tests add cases; none delete)."""
    server = start_live(tmp_path_factory.mktemp("ops"))
    try:
        yield server
    finally:
        server.component.stop()
