"""Pure: fleet-wide and per-unit settings that arrive as retained MQTT messages.

Topics (design.md's tree, extended):

- ``bluegate/v1/<site>/config``            fleet-wide, every unit of the site
- ``bluegate/v1/<site>/<gateway>/config``  this unit only (wins over the fleet)

The payload is YAML (JSON is YAML) with a subset of the unit file's keys. It is
validated exactly like the file (`gateway.yamlconf.load_text`, the topic named as the
source, so errors read ``bluegate/v1/mine-a/config:3: bands.near_dbm: ...``), then
merged key by key over the file: file < fleet < unit. An empty retained message
clears that layer.

Only the *safe subset* can change remotely, because it applies without a restart and
cannot cut the unit off: proximity bands, aggregation, gate rules, the GATT budget,
health thresholds, scan timing and the log level. Identity, zone, source, broker,
TLS and outbox paths stay in the file (a bad broker address sent over the broker
would orphan the unit); asking for them is rejected with the reason, which the
daemon publishes on the unit's status topic.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final, Literal

import yaml

from gateway import yamlconf
from gateway.config import (
    AggregationConfig,
    BandsConfig,
    GateConfig,
    GatewayConfig,
    GattConfig,
    HealthConfig,
    ScanConfig,
)
from gateway.errors import ConfigError

# Top-level keys a remote message may set; everything else in GatewayConfig is
# file-only. `scan.active` is file-only too: it needs the scanner reopened.
SAFE_KEYS: Final = frozenset(
    {"bands", "aggregation", "gate", "gatt", "health", "scan", "log_level"}
)
FILE_ONLY_SCAN_KEYS: Final = frozenset({"active"})
# Not part of the unit config: lets ops see which revision a unit applied.
META_KEYS: Final = frozenset({"revision"})

Layer = Literal["fleet", "unit"]


@dataclass(frozen=True, slots=True)
class RemoteSettings:
    """Schema of one remote message (every section optional and partial)."""

    revision: str | None = None
    bands: BandsConfig | None = None
    aggregation: AggregationConfig | None = None
    gate: GateConfig | None = None
    gatt: GattConfig | None = None
    health: HealthConfig | None = None
    scan: ScanConfig | None = None
    log_level: Literal["debug", "info", "warning", "error"] | None = None


@dataclass(frozen=True, slots=True)
class Overlay:
    """A validated remote message: only the keys it actually gave."""

    topic: str
    layer: Layer
    values: dict[str, Any]
    revision: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the daemon publishes on the unit's status topic after a message."""

    topic: str
    accepted: bool
    reason: str
    revision: str | None
    changed: tuple[str, ...]  # dotted keys whose effective value changed

    def to_json(self, t_wall: float) -> dict[str, Any]:
        return {
            "config": "applied" if self.accepted else "rejected",
            "topic": self.topic,
            "revision": self.revision,
            "reason": self.reason,
            "changed": list(self.changed),
            "t": round(t_wall, 3),
        }


def fleet_topic(prefix: str, site: str) -> str:
    return f"{prefix}/{site}/config"


def unit_topic(prefix: str, site: str, gateway: str) -> str:
    return f"{prefix}/{site}/{gateway}/config"


def layer_of(topic: str, prefix: str, site: str, gateway: str) -> Layer | None:
    if topic == fleet_topic(prefix, site):
        return "fleet"
    if topic == unit_topic(prefix, site, gateway):
        return "unit"
    return None


def parse(topic: str, layer: Layer, payload: bytes) -> Overlay | None:
    """Validate one message; None for an empty payload (the layer is cleared).

    Raises ConfigError naming the topic, line and key.
    """
    if not payload.strip():
        return None
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            topic, None, "(payload)", f"not UTF-8 at byte {exc.start}"
        ) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        root = None  # load_text below reports the syntax error with its line
    if isinstance(root, yaml.MappingNode):
        for knode, vnode in root.value:
            name = str(knode.value)
            line = int(knode.start_mark.line) + 1
            if name in GatewayConfig.__dataclass_fields__ and name not in SAFE_KEYS:
                raise ConfigError(
                    topic,
                    line,
                    name,
                    "cannot be changed remotely; edit the unit's file and restart",
                )
            if name == "scan" and isinstance(vnode, yaml.MappingNode):
                for sk, _sv in vnode.value:
                    if str(sk.value) in FILE_ONLY_SCAN_KEYS:
                        raise ConfigError(
                            topic,
                            int(sk.start_mark.line) + 1,
                            f"scan.{sk.value}",
                            "cannot be changed remotely; edit the unit's file "
                            "and restart",
                        )
    # Types, bounds, unknown keys and cross-field checks, exactly as for the file.
    yamlconf.load_text(text, RemoteSettings, source=topic)
    raw = yaml.safe_load(text)
    if not isinstance(raw, dict):
        raise ConfigError(topic, 1, "(root)", "must be a mapping of keys to values")
    revision = raw.pop("revision", None)
    return Overlay(
        topic=topic,
        layer=layer,
        values=raw,
        revision=None if revision is None else str(revision),
    )


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def effective(
    base: GatewayConfig, fleet: Overlay | None, unit: Overlay | None, *, source: str
) -> GatewayConfig:
    """The file's config with the fleet and then the unit overlay applied.

    Re-validated as a whole, so rules across fields (gate enter above exit, ...) hold
    for the merged result too. Raises ConfigError naming `source`.
    """
    merged = yamlconf.to_plain(base)
    for overlay in (fleet, unit):
        if overlay is not None:
            merged = _deep_merge(merged, overlay.values)
    return yamlconf.load_mapping(merged, GatewayConfig, source=source)


def changed_keys(old: GatewayConfig, new: GatewayConfig) -> tuple[str, ...]:
    a = _flatten(yamlconf.to_plain(old))
    b = _flatten(yamlconf.to_plain(new))
    return tuple(sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k)))


@dataclass(slots=True)
class RemoteState:
    """The two remote layers a unit holds, and the config they produce."""

    base: GatewayConfig
    fleet: Overlay | None = None
    unit: Overlay | None = None

    def current(self) -> GatewayConfig:
        return effective(self.base, self.fleet, self.unit, source="(remote)")

    def receive(
        self, topic: str, layer: Layer, payload: bytes
    ) -> tuple[GatewayConfig | None, Outcome]:
        """Apply one retained message; (new config or None if rejected, outcome)."""
        before = self.current()
        try:
            overlay = parse(topic, layer, payload)
            fleet = overlay if layer == "fleet" else self.fleet
            unit = overlay if layer == "unit" else self.unit
            after = effective(self.base, fleet, unit, source=topic)
        except ConfigError as exc:
            return None, Outcome(topic, False, str(exc), None, ())
        self.fleet, self.unit = fleet, unit
        revision = overlay.revision if overlay is not None else None
        reason = "cleared" if overlay is None else "ok"
        return after, Outcome(
            topic, True, reason, revision, changed_keys(before, after)
        )

    def rebase(self, base: GatewayConfig) -> GatewayConfig:
        """A new file config (SIGHUP): keep the remote layers on top if still valid."""
        self.base = base
        try:
            return self.current()
        except ConfigError:
            # The layers no longer fit the new file; the file wins.
            self.fleet = self.unit = None
            return base


def rebuild_keys(old: GatewayConfig, new: GatewayConfig) -> tuple[str, ...]:
    """Top-level keys that differ and need components reopened (not just re-tuned)."""
    names = [f.name for f in dataclasses.fields(GatewayConfig)]
    keys = [
        k for k in names if k not in SAFE_KEYS and getattr(old, k) != getattr(new, k)
    ]
    if old.scan.active != new.scan.active:
        keys.append("scan.active")
    return tuple(keys)
