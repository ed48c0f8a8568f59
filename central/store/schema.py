"""Pure: the central schema as numbered migrations, one text for both dialects.

Tokens substituted per dialect: ``{id}`` (an auto-increment integer primary key),
``{real}`` (double precision), ``{blob}`` (raw bytes). Everything else is the SQL both
SQLite (3.35+) and PostgreSQL (13+) accept with the same meaning. Times are Unix
seconds as doubles in both, so the two stores compare and round the same way.

A migration is applied once, in order, inside one transaction; the number of the last
one applied lives in `meta(name='schema_version')`. Never edit a released migration:
append a new one.
"""

from __future__ import annotations

from typing import Final

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    # 1: ingest, records, fleet, reference data, keys, tokens, cases, audit
    (
        "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        # One row per accepted batch; (gateway, boot, seq) is the idempotency key.
        """CREATE TABLE batches (
            gateway TEXT NOT NULL, boot BIGINT NOT NULL, seq BIGINT NOT NULL,
            site TEXT NOT NULL, first_seq BIGINT NOT NULL, last_seq BIGINT NOT NULL,
            n_records INTEGER NOT NULL, sent {real}, received {real} NOT NULL,
            signed INTEGER NOT NULL,
            PRIMARY KEY (gateway, boot, seq))""",
        """CREATE TABLE presence (
            gateway TEXT NOT NULL, boot BIGINT NOT NULL, seq BIGINT NOT NULL,
            site TEXT NOT NULL, zone TEXT, zone_kind TEXT, key TEXT NOT NULL,
            keys TEXT, t_start {real} NOT NULL, t_end {real} NOT NULL, n INTEGER,
            rssi_min {real}, rssi_median {real}, rssi_max {real},
            immediate_s {real} NOT NULL, near_s {real} NOT NULL, far_s {real} NOT NULL,
            clock TEXT, received {real} NOT NULL,
            PRIMARY KEY (gateway, boot, seq))""",
        "CREATE INDEX presence_gw_start ON presence (gateway, t_start)",
        "CREATE INDEX presence_key_start ON presence (key, t_start)",
        "CREATE INDEX presence_start ON presence (t_start)",
        # Chained rotating IDs beyond a record's primary key (design.md `keys`).
        """CREATE TABLE presence_keys (
            key TEXT NOT NULL, gateway TEXT NOT NULL, boot BIGINT NOT NULL,
            seq BIGINT NOT NULL, t_start {real} NOT NULL,
            PRIMARY KEY (key, gateway, boot, seq))""",
        "CREATE INDEX presence_keys_start ON presence_keys (t_start)",
        """CREATE TABLE gate_events (
            gateway TEXT NOT NULL, boot BIGINT NOT NULL, seq BIGINT NOT NULL,
            site TEXT NOT NULL, key TEXT, t {real} NOT NULL, direction TEXT NOT NULL,
            received {real} NOT NULL,
            PRIMARY KEY (gateway, boot, seq))""",
        "CREATE INDEX gate_site_t ON gate_events (site, t)",
        "CREATE INDEX gate_key_t ON gate_events (key, t)",
        """CREATE TABLE occupancy (
            gateway TEXT NOT NULL, boot BIGINT NOT NULL, seq BIGINT NOT NULL,
            site TEXT NOT NULL, zone TEXT, t {real} NOT NULL, count INTEGER NOT NULL,
            received {real} NOT NULL,
            PRIMARY KEY (gateway, boot, seq))""",
        "CREATE INDEX occupancy_gw_t ON occupancy (gateway, t)",
        # Never dropped: every rejected payload is kept verbatim with its reason.
        """CREATE TABLE quarantine (
            id {id}, received {real} NOT NULL, topic TEXT NOT NULL, site TEXT,
            gateway TEXT, reason TEXT NOT NULL, detail TEXT NOT NULL,
            payload {blob} NOT NULL)""",
        "CREATE INDEX quarantine_received ON quarantine (received)",
        """CREATE TABLE gateway_status (
            gateway TEXT PRIMARY KEY, site TEXT, status TEXT, status_at {real},
            health TEXT, health_at {real}, last_batch_at {real})""",
        # Zones each gateway reported itself in (for gateways without reference data).
        """CREATE TABLE gateway_zones_seen (
            gateway TEXT NOT NULL, zone TEXT NOT NULL, zone_kind TEXT, site TEXT,
            first_t {real} NOT NULL, last_t {real} NOT NULL,
            PRIMARY KEY (gateway, zone))""",
        """CREATE TABLE gateway_keys (
            gateway TEXT PRIMARY KEY, public_key TEXT NOT NULL, enrolled {real} NOT NULL)""",
        # Reference data.
        "CREATE TABLE sites (site TEXT PRIMARY KEY, name TEXT, tz TEXT)",
        """CREATE TABLE zones (
            zone TEXT PRIMARY KEY, site TEXT, name TEXT, kind TEXT NOT NULL,
            enclosed INTEGER NOT NULL, capacity INTEGER)""",
        "CREATE TABLE gateways (gateway TEXT PRIMARY KEY, site TEXT, notes TEXT)",
        """CREATE TABLE gateway_zones (
            id {id}, gateway TEXT NOT NULL, zone TEXT NOT NULL,
            valid_from {real} NOT NULL, valid_to {real})""",
        "CREATE INDEX gateway_zones_gw ON gateway_zones (gateway, valid_from)",
        """CREATE TABLE people (
            person TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT, employer TEXT,
            phone TEXT, host TEXT)""",
        """CREATE TABLE tag_assignments (
            id {id}, key TEXT NOT NULL, person TEXT NOT NULL,
            valid_from {real} NOT NULL, valid_to {real})""",
        "CREATE INDEX tag_assignments_key ON tag_assignments (key, valid_from)",
        "CREATE INDEX tag_assignments_person ON tag_assignments (person)",
        """CREATE TABLE beacons (
            beacon TEXT PRIMARY KEY, site TEXT NOT NULL, zone TEXT,
            scheme TEXT NOT NULL, key_file TEXT, base_key TEXT,
            created {real} NOT NULL, retired {real})""",
        """CREATE TABLE api_tokens (
            id {id}, token_hash TEXT NOT NULL UNIQUE, role TEXT NOT NULL,
            label TEXT, created {real} NOT NULL, revoked {real})""",
        """CREATE TABLE case_extracts (
            id {id}, created {real} NOT NULL, label TEXT, answer TEXT NOT NULL)""",
        """CREATE TABLE audit_log (
            id {id}, t {real} NOT NULL, actor TEXT, action TEXT NOT NULL,
            params TEXT, row_count INTEGER)""",
    ),
)

SCHEMA_VERSION: Final = len(MIGRATIONS)

DIALECT_TOKENS: Final = {
    "sqlite": {
        "id": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "real": "REAL",
        "blob": "BLOB",
    },
    "postgres": {
        "id": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        "real": "DOUBLE PRECISION",
        "blob": "BYTEA",
    },
}


def statements(version: int, dialect: str) -> list[str]:
    """The statements of migration `version` (1-based) for `dialect`."""
    tokens = DIALECT_TOKENS[dialect]
    return [stmt.format(**tokens) for stmt in MIGRATIONS[version - 1]]
