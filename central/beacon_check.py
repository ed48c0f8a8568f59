"""Pure: which heard Bluezone IDs are our own beacons, and were they heard where
they stand?

A gateway reports a beacon like any phone: a presence record whose key (or one of
its chained keys) is `bluezone:<24 hex>`. Central derives every registered beacon's
IDs for the days in question (from the base keys in the registry) and matches:

- a beacon heard by a gateway of its own zone proves that gateway's radio works
  (`radio_status`), the same evidence the gateway's own health gate uses;
- a beacon heard in another zone is flagged `wrong_zone` (moved, or a zone mapping
  that is wrong, or the room's walls are thinner than the floor plan says);
- an ID heard outside its slot (beyond the gateway clock tolerance) is flagged
  `out_of_slot`: a replayed or recorded ID, or a gateway clock far off.

Beacon IDs are excluded from people by the caller using `is_beacon_key`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from beacon import bluezone
from central.beacon_export import KeyPeriod


@dataclass(frozen=True, slots=True)
class RegisteredBeacon:
    beacon: str
    site: str
    zone: str | None
    keys: tuple[KeyPeriod, ...]
    slots_per_day: int = bluezone.DEFAULT_SLOTS_PER_DAY


@dataclass(frozen=True, slots=True)
class BeaconSlot:
    beacon: str
    site: str
    zone: str | None
    start: float
    end: float


class PresenceLike(Protocol):
    @property
    def gateway(self) -> str: ...
    @property
    def site(self) -> str: ...
    @property
    def zone(self) -> str | None: ...
    @property
    def key(self) -> str: ...
    @property
    def keys(self) -> tuple[str, ...]: ...
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...


@dataclass(frozen=True, slots=True)
class BeaconHeard:
    beacon: str
    beacon_zone: str | None
    gateway: str
    zone: str | None
    key: str
    start: float
    end: float
    wrong_zone: bool
    out_of_slot: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "beacon": self.beacon,
            "beacon_zone": self.beacon_zone,
            "gateway": self.gateway,
            "zone": self.zone,
            "key": self.key,
            "from": self.start,
            "to": self.end,
            "wrong_zone": self.wrong_zone,
            "out_of_slot": self.out_of_slot,
        }


def beacon_index(
    beacons: Iterable[RegisteredBeacon], start: float, end: float
) -> dict[str, BeaconSlot]:
    """device key -> the beacon slot it belongs to, for every ID used in [start, end)."""
    index: dict[str, BeaconSlot] = {}
    for b in beacons:
        for key in b.keys:
            s = max(start, key.valid_from)
            e = end if key.valid_to is None else min(end, key.valid_to)
            if s >= e:
                continue
            day = bluezone.date_of(s)
            for slot in bluezone.ids_in_window(
                key.daily_key(day), day, s, e, b.slots_per_day
            ):
                index[slot.key] = BeaconSlot(
                    b.beacon, b.site, b.zone, slot.start, slot.end
                )
    return index


def is_beacon_key(index: dict[str, BeaconSlot], key: str) -> bool:
    return key in index


def check_presence(
    index: dict[str, BeaconSlot],
    records: Iterable[PresenceLike],
    clock_tolerance_s: float = 120.0,
) -> list[BeaconHeard]:
    """Every (record, beacon ID) match, with the wrong-zone and out-of-slot flags."""
    out: list[BeaconHeard] = []
    for rec in records:
        keys = dict.fromkeys((rec.key, *rec.keys))
        for key in keys:
            slot = index.get(key)
            if slot is None:
                continue
            in_slot = (
                rec.end >= slot.start - clock_tolerance_s
                and rec.start <= slot.end + clock_tolerance_s
            )
            wrong = rec.site != slot.site or (
                slot.zone is not None and rec.zone != slot.zone
            )
            out.append(
                BeaconHeard(
                    slot.beacon,
                    slot.zone,
                    rec.gateway,
                    rec.zone,
                    key,
                    rec.start,
                    rec.end,
                    wrong_zone=wrong,
                    out_of_slot=not in_slot,
                )
            )
    return out


def radio_status(
    heard: Sequence[BeaconHeard], gateway_zones: dict[str, str | None]
) -> dict[str, dict[str, Any]]:
    """Per gateway: whether a beacon of its own zone was heard (radio proven), when
    last, and beacons of other zones it heard."""
    status: dict[str, dict[str, Any]] = {
        gw: {"zone": zone, "own_beacon_heard": False, "last": None, "foreign": []}
        for gw, zone in gateway_zones.items()
    }
    for h in heard:
        entry = status.setdefault(
            h.gateway,
            {"zone": h.zone, "own_beacon_heard": False, "last": None, "foreign": []},
        )
        if h.out_of_slot:
            continue
        if h.wrong_zone:
            if h.beacon not in entry["foreign"]:
                entry["foreign"].append(h.beacon)
            continue
        entry["own_beacon_heard"] = True
        entry["last"] = h.end if entry["last"] is None else max(entry["last"], h.end)
    return status
