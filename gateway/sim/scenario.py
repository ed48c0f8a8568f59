"""Pure: the simulator's scenario file (YAML, validated by gateway.yamlconf).

A scenario describes one site for one period: its zones (with their gateways and
positions on a site plan in metres), its buses (trips and roadside stops), and groups
of people (workers of a shift, dormitory residents, visitors) with the devices they
carry and a daily plan of where they are when. Errors name file, line and key
(exit 78), like every BlueGate configuration. See docs/readme/80-simulation.md.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Literal

from gateway import yamlconf
from gateway.config import ZoneKind

SCENARIO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scenarios")
BUILTIN = ("mine-site", "small")

# Envelope loss of a zone (dB) a signal crosses leaving or entering it, by kind:
# interior walls of site buildings (concrete block / prefab panels, 10-15 dB at
# 2.4 GHz), a bus's metal body (windows leak; 20+ dB), nothing for open areas.
DEFAULT_WALL_DB: dict[str, float] = {
    "shift_room": 12.0,
    "dormitory": 12.0,
    "bus": 22.0,
    "entrance": 0.0,
    "yard": 0.0,
}


def parse_clock(text: str) -> float:
    """'HH:MM' (HH may exceed 23 for the next day) -> seconds after the start day."""
    try:
        hours, minutes = text.split(":")
        value = int(hours) * 3600 + int(minutes) * 60
    except ValueError:
        raise ValueError(f"time {text!r} is not HH:MM") from None
    if value < 0 or not 0 <= int(minutes) < 60:
        raise ValueError(f"time {text!r} is not HH:MM")
    return float(value)


def _clock_problem(key: str, text: str) -> list[tuple[str, str]]:
    try:
        parse_clock(text)
    except ValueError as exc:
        return [(key, str(exc))]
    return []


@dataclass(frozen=True, slots=True)
class GatewaySpec:
    id: str
    x: float | None = None  # position inside the zone (m); default: its centre
    y: float | None = None


@dataclass(frozen=True, slots=True)
class ZoneSpec:
    name: str
    kind: ZoneKind
    x: float = 0.0  # the zone's corner on the site plan (m); ignored for buses
    y: float = 0.0
    width: float = field(default=10.0, metadata={"min": 1.0})
    length: float = field(default=8.0, metadata={"min": 1.0})
    wall_db: float | None = field(default=None, metadata={"min": 0.0, "max": 60.0})
    gateways: list[GatewaySpec] | None = None  # default: one, named like the zone
    # People move to a new spot this often (minutes; 0: they stay put).
    move_min: float = field(default=0.0, metadata={"min": 0.0})
    # Open areas: people work in crews of this size, within crew_radius_m.
    crew: int = field(default=1, metadata={"min": 1})
    crew_radius_m: float = field(default=1.2, metadata={"min": 0.1})

    @property
    def wall(self) -> float:
        return self.wall_db if self.wall_db is not None else DEFAULT_WALL_DB[self.kind]

    @property
    def gateway_specs(self) -> list[GatewaySpec]:
        return self.gateways if self.gateways is not None else [GatewaySpec(self.name)]


@dataclass(frozen=True, slots=True)
class StopSpec:
    at_min: float = field(metadata={"min": 0.0})  # minutes after departure
    dwell_min: float = field(default=2.0, metadata={"min": 0.1})
    passers_by: int = field(default=3, metadata={"min": 0})  # people outside the bus
    distance_m: float = field(default=3.0, metadata={"min": 0.5})


@dataclass(frozen=True, slots=True)
class TripSpec:
    depart: str
    arrive: str
    stops: list[StopSpec] = field(default_factory=list)

    def check(self) -> list[tuple[str, str]]:
        problems = _clock_problem("depart", self.depart) + _clock_problem(
            "arrive", self.arrive
        )
        if not problems and parse_clock(self.arrive) <= parse_clock(self.depart):
            problems.append(("arrive", "must be after depart"))
        return problems


@dataclass(frozen=True, slots=True)
class BusSpec:
    zone: str  # a zone of kind bus
    trips: list[TripSpec]


@dataclass(frozen=True, slots=True)
class DeviceMix:
    """Fractions of a group's members by phone; the rest carry no phone."""

    bluezone_android: float = field(default=0.45, metadata={"min": 0.0, "max": 1.0})
    bluezone_ios: float = field(default=0.2, metadata={"min": 0.0, "max": 1.0})
    gaen: float = field(default=0.2, metadata={"min": 0.0, "max": 1.0})
    # Fraction of iPhones whose Bluezone app is in the foreground (name + UUID).
    ios_foreground: float = field(default=0.2, metadata={"min": 0.0, "max": 1.0})
    # Fraction of members with a worker tag; phoneless members always get one.
    tag: float = field(default=0.3, metadata={"min": 0.0, "max": 1.0})
    tag_kind: Literal["ibeacon", "eddystone"] = "ibeacon"
    pocket: float = field(default=0.6, metadata={"min": 0.0, "max": 1.0})

    def check(self) -> list[tuple[str, str]]:
        if self.bluezone_android + self.bluezone_ios + self.gaen > 1.0 + 1e-9:
            return [("gaen", "phone fractions add up to more than 1")]
        return []


@dataclass(frozen=True, slots=True)
class StepSpec:
    """Members are in `zones` (spread round-robin) from `start` to `end`."""

    zones: list[str]
    start: str
    end: str
    jitter_min: float = field(default=3.0, metadata={"min": 0.0})

    def check(self) -> list[tuple[str, str]]:
        problems = _clock_problem("start", self.start) + _clock_problem("end", self.end)
        if not self.zones:
            problems.append(("zones", "needs at least one zone"))
        if not problems and parse_clock(self.end) <= parse_clock(self.start):
            problems.append(("end", "must be after start"))
        return problems


@dataclass(frozen=True, slots=True)
class GroupSpec:
    name: str
    count: int = field(metadata={"min": 1, "max": 100_000})
    plan: list[StepSpec]
    role: Literal["worker", "visitor", "contractor"] = "worker"
    devices: DeviceMix = field(default_factory=DeviceMix)


@dataclass(frozen=True, slots=True)
class ReceiverSpec:
    """What a gateway's scanner delivers (see gateway/sim/physics.py)."""

    # At most one report per address per this interval: the kernel's discovery
    # scan filters duplicates and bluepy is polled per tick; a report per packet
    # would only multiply identical evidence.
    report_interval_s: float = field(default=2.0, metadata={"min": 0.1, "max": 60.0})
    scan_duty: float = field(default=0.95, metadata={"min": 0.01, "max": 1.0})
    packet_error: float = field(default=0.05, metadata={"min": 0.0, "max": 0.99})
    sensitivity_dbm: float = -96.0


@dataclass(frozen=True, slots=True)
class Scenario:
    site: str
    date: str  # the first UTC day, YYYY-MM-DD; plan times are UTC
    zones: list[ZoneSpec]
    groups: list[GroupSpec]
    buses: list[BusSpec] = field(default_factory=list)
    start: str = "00:00"  # when the simulation starts on `date` (UTC)
    hours: float = field(default=24.0, metadata={"min": 0.01, "max": 24.0 * 14})
    seed: int = 1
    receiver: ReceiverSpec = field(default_factory=ReceiverSpec)
    slots_per_day: int = field(default=96, metadata={"min": 1, "max": 1440})

    def check(self) -> list[tuple[str, str]]:
        try:
            dt.date.fromisoformat(self.date)
        except ValueError:
            return [("date", f"{self.date!r} is not YYYY-MM-DD")]
        if problem := _clock_problem("start", self.start):
            return problem
        names = [z.name for z in self.zones]
        if len(set(names)) != len(names):
            return [("zones", "zone names must be unique")]
        gw_ids = [g.id for z in self.zones for g in z.gateway_specs]
        if len(set(gw_ids)) != len(gw_ids):
            return [("zones", "gateway ids must be unique across zones")]
        kinds = {z.name: z.kind for z in self.zones}
        for i, bus in enumerate(self.buses):
            if kinds.get(bus.zone) != "bus":
                return [(f"buses[{i}].zone", f"{bus.zone!r} is not a zone of kind bus")]
        for i, group in enumerate(self.groups):
            for j, step in enumerate(group.plan):
                for zone in step.zones:
                    if zone not in kinds:
                        return [
                            (f"groups[{i}].plan[{j}].zones", f"unknown zone {zone!r}")
                        ]
        return []

    @property
    def day_unix(self) -> float:
        """UTC midnight of `date`: plan times count from here."""
        day = dt.date.fromisoformat(self.date)
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()

    @property
    def start_unix(self) -> float:
        return self.day_unix + parse_clock(self.start)

    def zone(self, name: str) -> ZoneSpec:
        for zone in self.zones:
            if zone.name == name:
                return zone
        raise KeyError(name)


def resolve_path(path: str) -> str:
    """A scenario file, or the name of an embedded one ('mine-site', 'small')."""
    if path in BUILTIN:
        return os.path.join(SCENARIO_DIR, f"{path}.yaml")
    return path


def load_scenario(path: str) -> Scenario:
    """Load and validate a scenario file (raises ConfigError, exit 78)."""
    return yamlconf.load_file(resolve_path(path), Scenario)
