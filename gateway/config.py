"""Pure: the gateway unit's configuration schema (design.md, Configuration keys).

One YAML file per unit; `gateway.yamlconf` validates it into these frozen
dataclasses. Contract keys: site, gateway, zone, source, mqtt, outbox. Everything
else has a default that suits the zone kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gateway import yamlconf

ZoneKind = Literal["shift_room", "dormitory", "bus", "entrance", "yard"]
ZONE_KINDS: tuple[ZoneKind, ...] = (
    "shift_room",
    "dormitory",
    "bus",
    "entrance",
    "yard",
)


@dataclass(frozen=True, slots=True)
class ZoneConfig:
    name: str
    kind: ZoneKind
    # Enclosed zones make an F1 from sharing the space; open ones also need the near
    # band (Ministry of Health rule). Default: every kind but `yard` is enclosed.
    enclosed: bool | None = None

    @property
    def is_enclosed(self) -> bool:
        return self.enclosed if self.enclosed is not None else self.kind != "yard"


@dataclass(frozen=True, slots=True)
class MqttConfig:
    host: str = "127.0.0.1"
    port: int = field(default=1883, metadata={"min": 1, "max": 65535})
    ca: str | None = field(default=None, metadata={"path": True})
    cert: str | None = field(default=None, metadata={"path": True})
    key: str | None = field(default=None, metadata={"secret_path": True})
    username: str | None = None
    password_file: str | None = field(default=None, metadata={"secret_path": True})
    protocol: Literal["5", "3.1.1"] = "5"
    keepalive_s: int = field(default=60, metadata={"min": 5, "max": 3600})
    # A bus may be out of coverage for a whole shift (12 h) plus a margin.
    session_expiry_s: int = field(default=86_400, metadata={"min": 0})
    max_inflight: int = field(default=20, metadata={"min": 1, "max": 1000})
    batch_records: int = field(default=500, metadata={"min": 1, "max": 10_000})
    reconnect_min_s: float = field(default=1.0, metadata={"min": 0.1})
    reconnect_max_s: float = field(default=120.0, metadata={"min": 1.0})
    topic_prefix: str = "bluegate/v1"

    def check(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if (self.cert is None) != (self.key is None):
            problems.append(("cert", "cert and key must be given together"))
        if self.cert is not None and self.ca is None:
            problems.append(("ca", "a client certificate needs the broker's CA file"))
        return problems


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    path: str = field(
        default="/var/lib/bluegate/outbox.sqlite", metadata={"path": True}
    )
    max_mb: float = field(default=256.0, metadata={"min": 1.0})
    retention_days: float = field(default=21.0, metadata={"min": 0.1})
    synchronous: Literal["normal", "full"] = "normal"


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    """Where `enroll` writes the unit's keys (0600) and certificate request."""

    dir: str = field(default="/var/lib/bluegate/keys", metadata={"path": True})


@dataclass(frozen=True, slots=True)
class ScanConfig:
    active: bool = True
    tick_s: float = field(default=1.0, metadata={"min": 0.05, "max": 10.0})
    # A scanner silent this long is restarted, then the adapter reset (gateway/health).
    quiet_restart_s: float = field(default=120.0, metadata={"min": 5.0})


@dataclass(frozen=True, slots=True)
class GattConfig:
    """Reading Bluezone IDs from iPhones over GATT (protocols.md 1.4)."""

    enabled: bool = True
    reads_per_minute: int = field(default=12, metadata={"min": 0, "max": 600})
    connect_timeout_s: float = field(default=10.0, metadata={"min": 1.0, "max": 60.0})
    backoff_initial_s: float = field(default=30.0, metadata={"min": 1.0})
    backoff_max_s: float = field(default=900.0, metadata={"min": 1.0})


@dataclass(frozen=True, slots=True)
class BandsConfig:
    """Proximity bands in dBm after offsets; defaults from docs/proximity.md."""

    immediate_dbm: float = -49.0
    near_dbm: float = -65.0
    rssi_offset_db: float = field(default=0.0, metadata={"min": -60.0, "max": 60.0})
    format_offset_db: dict[str, float] = field(default_factory=dict)

    def check(self) -> list[tuple[str, str]]:
        if self.near_dbm > self.immediate_dbm:
            return [("near_dbm", "must not be above immediate_dbm")]
        return []


@dataclass(frozen=True, slots=True)
class AggregationConfig:
    """Presence stays; None means the zone kind's default (gateway/aggregate)."""

    gap_s: float | None = field(default=None, metadata={"min": 1.0})
    max_record_s: float | None = field(default=None, metadata={"min": 60.0})
    min_rssi_dbm: float | None = None
    min_stay_s: float | None = field(default=None, metadata={"min": 0.0})
    min_heard_ratio: float | None = field(
        default=None, metadata={"min": 0.0, "max": 1.0}
    )
    occupancy_interval_s: float = field(default=60.0, metadata={"min": 10.0})
    # Rotating-ID chaining (gateway/chain): the longest silence across an ID change
    # that still counts as one continuous signal, and the largest RSSI step.
    chain: bool = True
    handover_s: float | None = field(default=None, metadata={"min": 1.0})
    chain_rssi_db: float = field(default=10.0, metadata={"min": 0.0})
    # Formats that are never people (counted, not aggregated).
    not_person_formats: list[str] = field(
        default_factory=lambda: [
            "bluezone-wake",
            "eddystone-tlm",
            "eddystone-url",
        ]
    )

    def check(self) -> list[tuple[str, str]]:
        if (
            self.gap_s is not None
            and self.handover_s is not None
            and self.handover_s >= self.gap_s
        ):
            return [("handover_s", "must be shorter than gap_s")]
        return []


@dataclass(frozen=True, slots=True)
class GateConfig:
    """Gate passages at `entrance` units (gateway/gate)."""

    enter_dbm: float = -60.0
    exit_dbm: float = -75.0
    # Away (below exit_dbm or unheard) this long before a new passage may count.
    dwell_s: float = field(default=60.0, metadata={"min": 0.0})
    # Unheard this long: the identity's gate state is forgotten (memory bound).
    absent_s: float = field(default=600.0, metadata={"min": 5.0})
    # Direction memory per identity (single unit: in/out alternate per identity).
    direction_memory_s: float = field(default=57_600.0, metadata={"min": 60.0})
    role: Literal["single", "inside", "outside"] = "single"

    def check(self) -> list[tuple[str, str]]:
        if self.exit_dbm > self.enter_dbm:
            return [("exit_dbm", "must not be above enter_dbm (hysteresis)")]
        return []


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """The watchdog's health gate (gateway/health.py); scan.quiet_restart_s is its quiet_s."""

    # Time each healing step (scanner restart, adapter reset) gets to show an advert.
    grace_s: float = field(default=60.0, metadata={"min": 1.0})
    loop_stall_s: float = field(default=30.0, metadata={"min": 1.0})
    poll_stall_s: float = field(default=20.0, metadata={"min": 1.0})
    outbox_fail_s: float = field(default=60.0, metadata={"min": 1.0})
    # Remote settings (retained MQTT config topics) applied without a restart.
    remote_config: bool = True


@dataclass(frozen=True, slots=True)
class SiteBeacon:
    """A beacon of this site, excluded from people and used as the radio check."""

    key: str | None = None
    base_key_file: str | None = field(default=None, metadata={"secret_path": True})


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    site: str
    gateway: str
    zone: ZoneConfig
    source: str = "bluepy:hci0"
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    scan: ScanConfig = field(default_factory=ScanConfig)
    gatt: GattConfig = field(default_factory=GattConfig)
    bands: BandsConfig = field(default_factory=BandsConfig)
    aggregation: AggregationConfig = field(default_factory=AggregationConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    site_beacons: list[SiteBeacon] = field(default_factory=list)
    health: HealthConfig = field(default_factory=HealthConfig)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    def check(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        for name, value in (("site", self.site), ("gateway", self.gateway)):
            if not value or any(c in value for c in "/#+ ") or value.startswith("$"):
                problems.append(
                    (name, "must be a non-empty name without '/', '#', '+' or spaces")
                )
        return problems


def load_gateway_config(path: str) -> GatewayConfig:
    """Load and validate a gateway unit's YAML file (raises ConfigError)."""
    return yamlconf.load_file(path, GatewayConfig)
