"""The audit log of the ops surface: who ran what, when, and how many rows came back.

Every API query and export is written to `audit_log` (the core schema's table; ops
triggers make it append-only): the caller (`token:<id> (<label>)`), the action
(``GET /api/v1/contacts``: method and route template), the parameters, the number
of rows returned, and the HTTP status.

Parameters that identify a person or a device (device keys, person ids, names,
phones) are never written in clear: they become ``h:<16 hex>``, an HMAC-SHA256 under a
secret kept in the database (`meta.audit_hmac_key`). A plain hash would not do: a
tag's key space (an iBeacon's major/minor) is small enough to enumerate. An admin
can still answer "who looked up W0001?" by asking the API to search the log for an
identifier; the server hashes it the same way. A Bluezone daily key is never
recorded in any form (it reveals every later day's IDs); only that one was given.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Mapping
from typing import Any, Final

from central.store import SqlStore

# Parameter names whose values identify a person or device.
IDENTIFYING: Final = frozenset(
    {
        "device",
        "person",
        "key",
        "keys",
        "subject",
        "name",
        "phone",
        "host",
        "identifier",
    }
)
# Never recorded at all, not even hashed.
SECRET: Final = frozenset({"daily_key", "bluezone_daily_key", "token"})
MAX_VALUE_CHARS: Final = 200

_keys: dict[str, bytes] = {}
_lock = threading.Lock()


def _secret(store: SqlStore) -> bytes:
    cached = _keys.get(store.url) if store.url else None
    if cached is not None:
        return cached
    with _lock, store.transaction():
        rows = store._query("SELECT value FROM meta WHERE name = 'audit_hmac_key'")
        if rows:
            key = bytes.fromhex(str(rows[0][0]))
        else:
            key = secrets.token_bytes(32)
            store._execute(
                "INSERT INTO meta (name, value) VALUES ('audit_hmac_key', ?) "
                "ON CONFLICT (name) DO NOTHING",
                (key.hex(),),
            )
            rows = store._query("SELECT value FROM meta WHERE name = 'audit_hmac_key'")
            key = bytes.fromhex(str(rows[0][0]))
    if store.url:
        _keys[store.url] = key
    return key


def pseudonym(store: SqlStore, value: str) -> str:
    """The audit log's stand-in for an identifier: ``h:`` + 16 hex of an HMAC."""
    mac = hmac.new(_secret(store), value.encode(), hashlib.sha256).hexdigest()
    return "h:" + mac[:16]


def _scrub(store: SqlStore, name: str, value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_scrub(store, name, v) for v in value[:50]]
    if isinstance(value, Mapping):
        return scrub(store, value)
    text = str(value)
    if name in IDENTIFYING:
        return pseudonym(store, text)
    return text[:MAX_VALUE_CHARS]


def scrub(store: SqlStore, params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters fit for the audit log: identifiers pseudonymised, secrets dropped."""
    out: dict[str, Any] = {}
    for name, value in sorted(params.items()):
        if name in SECRET:
            out[name] = "(given, not recorded)"
            continue
        out[name] = _scrub(store, name, value)
    return out


def record(
    store: SqlStore,
    *,
    now: float,
    actor: str,
    action: str,
    params: Mapping[str, Any],
    rows: int,
    status: int,
) -> None:
    """Append one entry (its own transaction, so a failed query is still recorded)."""
    clean = scrub(store, params)
    clean["_status"] = status
    store.audit(now, actor, action, clean, rows)


def read(
    store: SqlStore,
    *,
    limit: int = 200,
    identifier: str | None = None,
    action: str | None = None,
) -> list[dict[str, Any]]:
    """Newest first; `identifier` finds the entries whose parameters name it."""
    wanted = pseudonym(store, identifier) if identifier else None
    scan = limit if wanted is None and action is None else 100_000
    out = []
    for entry in store.list_audit(scan):
        if action is not None and action not in str(entry["action"]):
            continue
        if wanted is not None and not _mentions(entry.get("params"), wanted):
            continue
        out.append(entry)
        if len(out) >= limit:
            break
    return out


def _mentions(value: Any, wanted: str) -> bool:
    if isinstance(value, str):
        return value == wanted
    if isinstance(value, Mapping):
        return any(_mentions(v, wanted) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, wanted) for v in value)
    return False
