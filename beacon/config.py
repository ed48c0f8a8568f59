"""Pure: the beacon unit's configuration schema (design.md, Configuration keys).

Contract keys: site, beacon, zone {name, kind}, scheme, key_file. Validated by
`gateway.yamlconf`, so every error names file, line and key and exits 78.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Literal

from gateway import yamlconf
from gateway.config import MqttConfig, ZoneConfig

Scheme = Literal["bluezone", "ibeacon", "eddystone-uid"]

# protocols.md 1.9: Bluezone's iOS wake-up iBeacon (carries no identity).
BLUEZONE_WAKE_UUID = uuid.UUID("c7afef7b-1788-4f4a-a87d-691d53bf21c4")

_HEX = re.compile(r"^[0-9a-fA-F]*$")


@dataclass(frozen=True, slots=True)
class IBeaconConfig:
    """iBeacon tag identity (protocols.md 4.1); for sites with tags only."""

    uuid: str
    major: int = field(metadata={"min": 0, "max": 65535})
    minor: int = field(metadata={"min": 0, "max": 65535})
    # RSSI a receiver measures at 1 m; -59 dBm is the common calibration.
    measured_power_dbm: int = field(default=-59, metadata={"min": -128, "max": 127})

    def check(self) -> list[tuple[str, str]]:
        try:
            value = uuid.UUID(self.uuid)
        except ValueError:
            return [("uuid", f"not a UUID: {self.uuid!r}")]
        if value == BLUEZONE_WAKE_UUID:
            # Receivers take this UUID for Bluezone's iOS wake-up beacon, never a tag.
            return [("uuid", "is Bluezone's iOS wake-up UUID; choose your own")]
        return []


@dataclass(frozen=True, slots=True)
class EddystoneConfig:
    """Eddystone-UID identity (protocols.md 4.2): 10-byte namespace, 6-byte instance."""

    namespace: str
    instance: str
    # Eddystone's "calibrated power at 0 m" (about RSSI at 1 m + 41 dB).
    tx_power_0m_dbm: int = field(default=-18, metadata={"min": -128, "max": 127})

    def check(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        for name, value, size in (
            ("namespace", self.namespace, 10),
            ("instance", self.instance, 6),
        ):
            if not _HEX.match(value) or len(value) != 2 * size:
                problems.append((name, f"must be {2 * size} hex digits"))
        return problems


@dataclass(frozen=True, slots=True)
class AdvertisingConfig:
    """How BlueZ advertises (org.bluez.LEAdvertisement1, beacon/advertiser.py)."""

    # broadcast: non-connectable; the kernel then gives every (re)registration a
    # fresh non-resolvable private address, which is how the address rotates with
    # the ID. peripheral: connectable, like a Bluezone phone; its address is the
    # adapter's own unless LE privacy is on (then an RPA on the kernel's timer).
    type: Literal["broadcast", "peripheral"] = "broadcast"
    # Bluezone phones advertise in LOW_LATENCY mode, about every 100 ms.
    interval_ms: int = field(default=100, metadata={"min": 20, "max": 10_240})
    # Requested TX power (BlueZ TxPower, experimental); None: the controller default.
    tx_power_dbm: int | None = field(default=None, metadata={"min": -127, "max": 20})
    # Re-register this long after a BlueZ failure (adapter gone, bluetoothd restart).
    retry_s: float = field(default=5.0, metadata={"min": 0.5, "max": 300.0})


@dataclass(frozen=True, slots=True)
class BeaconConfig:
    site: str
    beacon: str
    zone: ZoneConfig
    scheme: Scheme = "bluezone"
    key_file: str | None = field(default=None, metadata={"secret_path": True})
    # Bluezone v3's MaxNumberSubKeyPerDay: 96 slots (15 minutes). Must divide a day
    # in whole milliseconds, as Bluezone's slot arithmetic does.
    slots_per_day: int = field(default=96, metadata={"min": 1, "max": 1440})
    adapter: str = "hci0"
    advertising: AdvertisingConfig = field(default_factory=AdvertisingConfig)
    ibeacon: IBeaconConfig | None = None
    eddystone: EddystoneConfig | None = None
    # Status (retained) and health over MQTT; None: no MQTT, journal only.
    mqtt: MqttConfig | None = None
    health_interval_s: float = field(default=60.0, metadata={"min": 5.0})
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    def check(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        for name, value in (("site", self.site), ("beacon", self.beacon)):
            if not value or any(c in value for c in "/#+ ") or value.startswith("$"):
                problems.append(
                    (name, "must be a non-empty name without '/', '#', '+' or spaces")
                )
        if not re.fullmatch(r"hci\d+", self.adapter):
            problems.append(("adapter", "must be an adapter name such as hci0"))
        if 86_400_000 % self.slots_per_day:
            problems.append(
                ("slots_per_day", "must divide a day into whole milliseconds")
            )
        if self.scheme == "bluezone" and self.key_file is None:
            problems.append(("key_file", "the bluezone scheme needs a key file"))
        if self.scheme == "ibeacon" and self.ibeacon is None:
            problems.append(("ibeacon", "the ibeacon scheme needs an ibeacon section"))
        if self.scheme == "eddystone-uid" and self.eddystone is None:
            problems.append(
                ("eddystone", "the eddystone-uid scheme needs an eddystone section")
            )
        return problems


def load_beacon_config(path: str) -> BeaconConfig:
    """Load and validate a beacon unit's YAML file (raises ConfigError)."""
    return yamlconf.load_file(path, BeaconConfig)
