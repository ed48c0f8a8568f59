"""Pure: the central service's configuration schema (design.md, Configuration keys).

Contract keys: `storage` (``sqlite:///abs/path``, ``sqlite:relative/path`` or
``postgresql://...``), `mqtt`, `http`. Everything else has a default. Validated by
`gateway.yamlconf`, so errors name file, line and key and exit with status 78.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

from gateway import yamlconf
from gateway.errors import ConfigError

BandName = Literal["immediate", "near", "far"]


@dataclass(frozen=True, slots=True)
class CentralMqttConfig:
    host: str = "127.0.0.1"
    port: int = field(default=1883, metadata={"min": 1, "max": 65535})
    ca: str | None = field(default=None, metadata={"path": True})
    cert: str | None = field(default=None, metadata={"path": True})
    key: str | None = field(default=None, metadata={"secret_path": True})
    username: str | None = None
    password_file: str | None = field(default=None, metadata={"secret_path": True})
    # `$share/<shared_group>/bluegate/v1/+/+/records`: every worker of every central
    # process joins the same group, so the broker spreads batches across them.
    shared_group: str = "central"
    topic_prefix: str = "bluegate/v1"
    workers: int = field(default=1, metadata={"min": 1, "max": 64})
    client_id: str = "bluegate-central"
    keepalive_s: int = field(default=60, metadata={"min": 5, "max": 3600})
    # A persistent session, so batches published while central is restarting wait
    # in the broker (raise the broker's max_queued_messages for this client).
    session_expiry_s: int = field(default=86_400, metadata={"min": 0})
    # MQTT 5 Receive Maximum: unacknowledged batches the broker may push at once.
    receive_maximum: int = field(default=200, metadata={"min": 1, "max": 65535})

    def check(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if (self.cert is None) != (self.key is None):
            problems.append(("cert", "cert and key must be given together"))
        if self.cert is not None and self.ca is None:
            problems.append(("ca", "a client certificate needs the broker's CA file"))
        if any(c in self.shared_group for c in "/#+ "):
            problems.append(
                ("shared_group", "must not contain '/', '#', '+' or spaces")
            )
        return problems


@dataclass(frozen=True, slots=True)
class HttpConfig:
    port: int = field(default=8080, metadata={"min": 0, "max": 65535})
    bind: str = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class RulesConfig:
    """The contact rule's defaults; each is overridable per query and recorded."""

    min_minutes: float = field(default=15.0, metadata={"min": 0.0})
    window_h: float = field(default=24.0, metadata={"min": 1.0})
    # Bands that count as "near" in open zones (yard): MoH's 1 m / CDC's 6 ft.
    near_bands: list[BandName] = field(default_factory=lambda: ["immediate", "near"])
    # Gateway clock error tolerated when matching Bluezone slots (protocols.md 1.5).
    clock_error_s: float = field(default=120.0, metadata={"min": 0.0, "max": 3600.0})
    slots_per_day: int = field(default=96, metadata={"min": 1, "max": 1440})
    # Exposures of the case closer than this are shown as one.
    merge_gap_s: float = field(default=120.0, metadata={"min": 0.0})

    def check(self) -> list[tuple[str, str]]:
        if not self.near_bands:
            return [("near_bands", "needs at least one band")]
        return []


@dataclass(frozen=True, slots=True)
class CentralConfig:
    storage: str = "sqlite:///var/lib/bluegate/central.sqlite"
    mqtt: CentralMqttConfig = field(default_factory=CentralMqttConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    retention_days: float = field(default=21.0, metadata={"min": 0.0})
    require_signatures: bool = True
    rules: RulesConfig = field(default_factory=RulesConfig)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    def check(self) -> list[tuple[str, str]]:
        if not (
            self.storage.startswith("sqlite:")
            or self.storage.startswith(("postgresql://", "postgres://"))
        ):
            return [
                (
                    "storage",
                    "must be sqlite:///ABSOLUTE/PATH, sqlite:RELATIVE/PATH or "
                    "postgresql://user@host/db",
                )
            ]
        return []


def resolve_storage(url: str, base_dir: str) -> str:
    """Make a relative `sqlite:` path absolute against the config file's folder."""
    if url.startswith("sqlite:") and not url.startswith("sqlite://"):
        path = url[len("sqlite:") :]
        if path != ":memory:":
            path = os.path.normpath(os.path.join(base_dir, os.path.expanduser(path)))
            return "sqlite://" + path
    return url


def load_central_config(path: str) -> CentralConfig:
    """Load and validate central's YAML file (raises ConfigError, exit 78)."""
    config = yamlconf.load_file(path, CentralConfig)
    base_dir = os.path.dirname(os.path.abspath(path))
    storage = resolve_storage(config.storage, base_dir)
    if storage != config.storage:
        from dataclasses import replace

        config = replace(config, storage=storage)
    return config


def password(config: CentralMqttConfig) -> str | None:
    if config.password_file is None:
        return None
    try:
        with open(config.password_file, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as exc:
        raise ConfigError(
            config.password_file,
            None,
            "mqtt.password_file",
            exc.strerror or "unreadable",
        ) from None
