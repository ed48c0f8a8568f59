"""Shell: the ops tables (cases, case contacts, notes, visitors, locations of interest)
beside the central schema, for SQLite and PostgreSQL through the store's own connection.

The core schema (`central.store.schema`) owns ingest, reference data, tokens and the
audit log. The ops surface keeps its own numbered migrations, recorded in the same
`meta` table under `ops_schema_version`, so the two evolve independently and neither
rewrites the other. DDL uses the core schema's dialect tokens (``{id}``, ``{real}``).

The audit log is append-only at the database too: triggers refuse UPDATE and DELETE
on `audit_log` (the API has no route that could; this stops a careless script).
"""

from __future__ import annotations

import logging
import threading
from typing import Final

from central.store import SqlStore, StoreError
from central.store.schema import DIALECT_TOKENS

_LOGGER = logging.getLogger(__name__)

META_KEY: Final = "ops_schema_version"

_COMMON_V1: Final[tuple[str, ...]] = (
    # One row per case; `params` is the JSON snapshot of every rule parameter and the
    # window rule, so a report can be reproduced later (central-reference.md 4.3).
    """CREATE TABLE ops_cases (
        id {id}, subject_kind TEXT NOT NULL, subject TEXT NOT NULL, label TEXT,
        onset_date TEXT, test_date TEXT, isolation_date TEXT,
        window_from {real} NOT NULL, window_to {real} NOT NULL,
        depth INTEGER NOT NULL, params TEXT NOT NULL, answer TEXT,
        computed_at {real}, status TEXT NOT NULL, created {real} NOT NULL,
        created_by TEXT, closed {real}, closed_by TEXT, close_reason TEXT)""",
    "CREATE INDEX ops_cases_subject ON ops_cases (subject)",
    # A contact's identity in a case: `person:<id>` or `key:<device key>` (rules.identity).
    """CREATE TABLE ops_case_contacts (
        id {id}, case_id BIGINT NOT NULL, ident TEXT NOT NULL, level INTEGER NOT NULL,
        key TEXT NOT NULL, keys TEXT NOT NULL, person TEXT, zone TEXT,
        first_t TEXT, last_t TEXT, minutes {real} NOT NULL, class TEXT NOT NULL,
        via TEXT, status TEXT NOT NULL, status_at {real}, status_by TEXT,
        current INTEGER NOT NULL,
        UNIQUE (case_id, ident))""",
    """CREATE TABLE ops_case_notes (
        id {id}, case_id BIGINT NOT NULL, t {real} NOT NULL, author TEXT,
        contact_id BIGINT, text TEXT NOT NULL)""",
    "CREATE INDEX ops_case_notes_case ON ops_case_notes (case_id, t)",
    # Visitors registered at the gate. `person` is the people row created for them and
    # `key` the tag or device they were given (assigned through tag_assignments for
    # [valid_from, valid_to), so gate passages and the contact rule both see them).
    """CREATE TABLE ops_visitors (
        id {id}, site TEXT NOT NULL, person TEXT NOT NULL, name TEXT NOT NULL,
        company TEXT, host TEXT, phone TEXT, key TEXT NOT NULL,
        valid_from {real} NOT NULL, valid_to {real}, registered {real} NOT NULL,
        registered_by TEXT)""",
    "CREATE INDEX ops_visitors_site ON ops_visitors (site, valid_from)",
    "CREATE INDEX ops_visitors_key ON ops_visitors (key, valid_from)",
    # Places and windows a case was seen, reviewed by ops and then published to
    # workers (NHS risky-venue style, central-reference.md Q7).
    """CREATE TABLE ops_locations (
        id {id}, case_id BIGINT NOT NULL, zone TEXT NOT NULL, site TEXT,
        t_from {real} NOT NULL, t_to {real} NOT NULL, gateways TEXT NOT NULL,
        status TEXT NOT NULL, created {real} NOT NULL, published {real},
        published_by TEXT, withdrawn {real}, withdrawn_by TEXT,
        UNIQUE (case_id, zone, t_from))""",
)

_TRIGGERS_SQLITE: Final[tuple[str, ...]] = (
    """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
    """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
)

_TRIGGERS_POSTGRES: Final[tuple[str, ...]] = (
    """CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger
       LANGUAGE plpgsql AS $f$ BEGIN
       RAISE EXCEPTION 'audit_log is append-only'; END $f$""",
    """CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
       FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()""",
)

OPS_VERSION: Final = 1

_done: set[str] = set()
_lock = threading.Lock()


def statements(version: int, dialect: str) -> list[str]:
    """The statements of ops migration `version` for `dialect`."""
    if version != 1:
        raise ValueError(f"no ops migration {version}")
    tokens = DIALECT_TOKENS[dialect]
    out = [s.format(**tokens) for s in _COMMON_V1]
    out += list(_TRIGGERS_SQLITE if dialect == "sqlite" else _TRIGGERS_POSTGRES)
    return out


def ensure_schema(store: SqlStore) -> int:
    """Apply pending ops migrations (idempotent; cached per database URL)."""
    if store.url and store.url in _done:
        return OPS_VERSION
    with _lock, store.transaction():
        rows = store._query("SELECT value FROM meta WHERE name = ?", (META_KEY,))
        current = int(rows[0][0]) if rows else 0
        if current > OPS_VERSION:
            raise StoreError(
                f"ops schema version {current} is newer than this program's "
                f"{OPS_VERSION}; upgrade bluegate"
            )
        for version in range(current + 1, OPS_VERSION + 1):
            for stmt in statements(version, store.dialect):
                store._execute(stmt)
            store._execute(
                "INSERT INTO meta (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (META_KEY, str(version)),
            )
            _LOGGER.info("storage: applied ops schema migration %d", version)
    if store.url:
        _done.add(store.url)
    return OPS_VERSION
