"""The simulator: a scenario in, advertisement reports of every gateway out, in time
order, from a generator with bounded memory (state per person and device only).

Time advances in ticks of `receiver.report_interval_s`. In each tick, for every
device of every person on site and every gateway that can hear the person's zone,
the device's advertising events in the tick (its interval times its on-time) each
get through with `physics.packet_success` (scan duty, packet error, collisions with
the other advertisers in range); if at least one does and its RSSI clears the
receiver's sensitivity, one report is delivered.

Advertising, as the real systems do it (protocols.md):
- Bluezone Android (1.3): 15 s on / 15 s off, ~100 ms (LOW_LATENCY), connectable,
  the ID re-read at each advertising restart, so a new slot's ID appears within
  30 s after the slot boundary; the ID is the real derivation (beacon.bluezone)
  from a per-phone base key; the random address rotates every 10-20 minutes on
  its own schedule.
- Bluezone iPhone (1.4): the 128-bit service UUID (foreground, with the name in the
  scan response) or Apple's overflow area (background); no ID on air. The ID the
  gateway would read over GATT is written to gatt.jsonl (see truth.py).
- Exposure Notification (2.1): 250 ms, non-connectable, RPI and random address
  changed together every 10-20 minutes, RPI from the TEK's key schedule
  (beacon.gaen), AEM with the metadata's TX power.
- Tags: iBeacon or Eddystone-UID every second from a static random address.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from beacon import bluezone, frames, gaen
from gateway.models import AddrType, Report
from gateway.sim import physics
from gateway.sim.scenario import (
    DeviceMix,
    Scenario,
    parse_clock,
)
from gateway.sim.truth import CLOSE_M, EN_SCAN_INTERVAL_S, TruthWriter

_LOGGER = logging.getLogger(__name__)

BLUEZONE_CYCLE_S = 30.0  # 15 s on, 15 s off (protocols.md 1.3)
BLUEZONE_ON_S = 15.0
BLUEZONE_INTERVAL_S = 0.1
IOS_INTERVAL_S = 0.5  # iOS peripheral advertising (background is slower still)
GAEN_INTERVAL_S = 0.25
TAG_INTERVAL_S = 1.0
ROTATE_MIN_S = 600.0
ROTATE_MAX_S = 1200.0
AIRTIME_S = 376e-6  # a 31-byte legacy ADV PDU at 1 Mb/s
GAEN_TX_DBM = -24  # Google's calibration table: median "tx" of Android models

# protocols.md 1.2 / 1.4: iOS service UUID on air, and the overflow-area bitmap
IOS_SERVICE_UUID_LE = bytes.fromhex("67a607add1172fa1c44bf573564e0000")
IBEACON_UUID = uuid.UUID("6f1c7a3e-5b2d-4c1e-9a0b-3d2e1f4a5b6c")  # the site's tags
EDDYSTONE_NAMESPACE = bytes.fromhex("b1e6a7e5a5f1c0de0001")


def _addr(rng: random.Random, *, static: bool = False) -> str:
    """A random address: resolvable private (top bits 01) or static (11)."""
    raw = bytearray(rng.getrandbits(8) for _ in range(6))
    raw[0] = (raw[0] & 0x3F) | (0xC0 if static else 0x40)
    return ":".join(f"{b:02X}" for b in raw)


@dataclass(slots=True)
class Device:
    """One advertiser and its rotating state; `person` is its owner."""

    kind: str
    person: str
    sender: str
    tx_offset_db: float
    pocket: bool
    interval_s: float
    rng: random.Random
    truth: TruthWriter
    slots_per_day: int
    addr: str = ""
    addr_type: AddrType = AddrType.RANDOM
    data: bytes = b""
    rsp: bytes | None = None
    key: str | None = None
    base_day: int = 0  # Bluezone: UTC day number of the base key's date
    rotate_at: float = -math.inf
    addr_since: float = 0.0
    restart_at: float = -math.inf
    key_since: float = 0.0
    base_key: bytes = b""
    day_ids: dict[int, list[bytes]] = field(default_factory=dict)
    tek: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)
    foreground: bool = False
    gatt_since: float = 0.0
    gatt_id: bytes = b""
    restart_offset: float = 0.0  # where this phone's 30-s on/off cycle starts

    # -- Bluezone IDs (beacon.bluezone: the real derivation)
    def bluezone_id(self, t: float) -> bytes:
        day = int(t // bluezone.DAY_S)
        ids = self.day_ids.get(day)
        if ids is None:
            days_after = day - self.base_day
            daily = bluezone.daily_key_from_base(self.base_key, days_after)
            ids = bluezone.ids_for_day(daily, self.slots_per_day)
            self.day_ids = {day: ids}
        return ids[bluezone.slot_of(t, self.slots_per_day)]

    def on_time(self, t0: float, t1: float) -> float:
        """Seconds of [t0, t1) this device advertises."""
        if self.kind != "bluezone_android":
            return t1 - t0
        total = 0.0
        start = math.floor((t0 - self.restart_offset) / BLUEZONE_CYCLE_S)
        c = start * BLUEZONE_CYCLE_S + self.restart_offset
        while c < t1:
            total += max(0.0, min(t1, c + BLUEZONE_ON_S) - max(t0, c))
            c += BLUEZONE_CYCLE_S
        return total

    def advance(self, t: float) -> None:
        """Bring address, payload and key up to time t (writes truth windows)."""
        kind = self.kind
        if kind == "bluezone_android":
            if t >= self.rotate_at:
                self.addr = _addr(self.rng)
                self.rotate_at = t + self.rng.uniform(ROTATE_MIN_S, ROTATE_MAX_S)
            # The ID is re-read when advertising restarts (every 30 s cycle).
            cycle = math.floor((t - self.restart_offset) / BLUEZONE_CYCLE_S)
            restart = cycle * BLUEZONE_CYCLE_S + self.restart_offset
            if restart != self.restart_at:
                self.restart_at = restart
                new_id = self.bluezone_id(restart)
                key = "bluezone:" + new_id.hex()
                if key != self.key:
                    self._close_key(restart)
                    self.key = key
                    self.key_since = restart
                    self.data = frames.bluezone_android(new_id)
        elif kind == "bluezone_ios":
            if t >= self.rotate_at:
                self._close_gatt(t)
                self.addr = _addr(self.rng)
                self.rotate_at = t + self.rng.uniform(ROTATE_MIN_S, ROTATE_MAX_S)
            current = self.bluezone_id(t)
            if current != self.gatt_id:
                self._close_gatt(t)
                slot_start = bluezone.slot_start(t, self.slots_per_day)
                self._close_key(slot_start)
                self.key = "bluezone:" + current.hex()
                self.key_since = slot_start
                self.gatt_id = current
                self.gatt_since = t
        elif kind == "gaen" and t >= self.rotate_at:
            self._close_key(t)
            day = int(t // bluezone.DAY_S)
            keys = self.tek.get(day)
            if keys is None:
                tek = self.rng.getrandbits(128).to_bytes(16, "big")
                keys = (gaen.rpik(tek), gaen.aemk(tek))
                self.tek = {day: keys}
            rpi = gaen.rpi(keys[0], gaen.interval_number(t))
            aem = gaen.aem(keys[1], rpi, gaen.metadata_bytes(GAEN_TX_DBM))
            self.addr = _addr(self.rng)
            self.data = frames.gaen(rpi, aem)
            self.key = "gaen:" + rpi.hex()
            self.key_since = t
            self.rotate_at = t + self.rng.uniform(ROTATE_MIN_S, ROTATE_MAX_S)

    def _close_key(self, t: float) -> None:
        if self.key is not None and t > self.key_since:
            self.truth.key(self.key, self.person, self.key_since, t)

    def _close_gatt(self, t: float) -> None:
        if self.addr and self.gatt_id and t > self.gatt_since:
            self.truth.gatt(self.addr, self.gatt_since, t, self.gatt_id)
        self.gatt_since = t

    def finish(self, t: float) -> None:
        if self.kind in ("bluezone_android", "bluezone_ios", "gaen"):
            self._close_key(t)
        if self.kind == "bluezone_ios":
            self._close_gatt(t)
        elif self.key is not None and self.kind in ("ibeacon", "eddystone"):
            self.truth.key(self.key, self.person, self.key_since, t)


@dataclass(slots=True)
class Stay:
    zone: str | None  # None: outside, beside a bus (a passer-by)
    t0: float
    t1: float
    bus: str | None = None
    distance_m: float = 3.0  # passers-by: distance to the bus's gateway


@dataclass(slots=True)
class Person:
    name: str
    role: str
    stays: list[Stay]
    devices: list[Device]
    crew: int = 0
    index: int = 0
    spot: tuple[float, float] = (0.0, 0.0)
    spot_epoch: int = -1  # -1: not placed in the current stay yet
    # per (device index, gateway): (epoch, mean dBm)
    link: dict[tuple[int, str], tuple[int, float]] = field(default_factory=dict)
    stay_i: int = 0
    calib_err_db: float = 0.0

    @property
    def phone(self) -> Device | None:
        for dev in self.devices:
            if dev.kind in ("bluezone_android", "bluezone_ios", "gaen"):
                return dev
        return None


@dataclass(frozen=True, slots=True)
class GatewayPos:
    id: str
    zone: str
    x: float
    y: float
    env: str


class Simulator:
    """Iterate `reports()` once; truth is complete after it is exhausted."""

    def __init__(
        self,
        scenario: Scenario,
        truth: TruthWriter,
        *,
        hours: float | None = None,
        seed: int | None = None,
    ) -> None:
        self.sc = scenario
        self.truth = truth
        self.day0 = scenario.day_unix
        self.t_start = scenario.start_unix
        self.t_end = self.t_start + 3600.0 * (
            hours if hours is not None else scenario.hours
        )
        self.rng = random.Random(scenario.seed if seed is None else seed)
        self.radio = physics.Radio(random.Random(self.rng.getrandbits(64)))
        self.zones = {z.name: z for z in scenario.zones}
        self.gateways: list[GatewayPos] = []
        for zone in scenario.zones:
            for g in zone.gateway_specs:
                self.gateways.append(
                    GatewayPos(
                        g.id,
                        zone.name,
                        zone.x + (g.x if g.x is not None else zone.width / 2),
                        zone.y + (g.y if g.y is not None else zone.length / 2),
                        physics.ZONE_ENV[zone.kind],
                    )
                )
        self.hearing = self._hearing()
        self.people: list[Person] = []
        self._build_people()
        self._crew_spots: dict[tuple[str, int, int], tuple[float, float]] = {}
        self._epoch = 0

    # ------------------------------------------------------------------ set-up

    def _hearing(self) -> dict[str, list[GatewayPos]]:
        """Gateways that can possibly hear someone in each zone (a bound: strongest
        sender, best spot, +3 sigma shadow, +5 dB fading above the sensitivity)."""
        out: dict[str, list[GatewayPos]] = {}
        for zone in self.sc.zones:
            heard = []
            for gw in self.gateways:
                if gw.zone == zone.name:
                    heard.append(gw)
                    continue
                gz = self.zones[gw.zone]
                if zone.kind == "bus" or gz.kind == "bus":
                    continue  # buses drive around; they meet no fixed zone
                dx = max(zone.x - gw.x, 0.0, gw.x - (zone.x + zone.width))
                dy = max(zone.y - gw.y, 0.0, gw.y - (zone.y + zone.length))
                profile = physics.PROFILES[gw.env]
                best = (
                    profile.p1m_dbm
                    - physics.path_loss_db(profile, math.hypot(dx, dy))
                    - zone.wall
                    - gz.wall
                    + 3 * profile.shadow_sigma_db
                    + 5.0
                )
                if best >= self.sc.receiver.sensitivity_dbm:
                    heard.append(gw)
            out[zone.name] = heard
        return out

    def _jittered_plan(
        self,
        steps: list[tuple[list[str], float, float, float]],
        member: int,
        rng: random.Random,
    ) -> list[Stay]:
        bus_times = self._bus_times()
        shift: dict[float, float] = {}
        stays: list[Stay] = []
        for zones, s0, s1, jitter in steps:
            for edge in (s0, s1):
                if edge not in shift:
                    fixed = edge in bus_times
                    shift[edge] = (
                        0.0
                        if fixed or jitter <= 0
                        else rng.uniform(-jitter * 60, jitter * 60)
                    )
            zone = zones[member % len(zones)]
            t0 = self.day0 + s0 + shift[s0]
            t1 = self.day0 + s1 + shift[s1]
            if self.zones[zone].kind == "bus":
                t0, t1 = self.day0 + s0, self.day0 + s1
            if t1 > t0:
                stays.append(Stay(zone, t0, t1))
        stays.sort(key=lambda s: s.t0)
        # No overlaps (jitter may make neighbours cross): trim the earlier one.
        for a, b in itertools.pairwise(stays):
            if a.t1 > b.t0:
                a.t1 = b.t0
        return [s for s in stays if s.t1 > s.t0]

    def _bus_times(self) -> set[float]:
        out: set[float] = set()
        for bus in self.sc.buses:
            for trip in bus.trips:
                out.add(parse_clock(trip.depart))
                out.add(parse_clock(trip.arrive))
        return out

    def _new_device(
        self,
        kind: str,
        person: str,
        pocket: bool,
        rng: random.Random,
        foreground: bool = False,
    ) -> Device:
        sender = {
            "bluezone_android": "android",
            "gaen": "android" if rng.random() < 0.7 else "iphone",
            "bluezone_ios": "iphone",
        }.get(kind, "tag")
        interval = {
            "bluezone_android": BLUEZONE_INTERVAL_S,
            "bluezone_ios": IOS_INTERVAL_S,
            "gaen": GAEN_INTERVAL_S,
        }.get(kind, TAG_INTERVAL_S)
        dev = Device(
            kind=kind,
            person=person,
            sender=sender,
            tx_offset_db=physics.tx_offset_draw(rng, sender),
            pocket=pocket and sender != "tag",
            interval_s=interval,
            rng=random.Random(rng.getrandbits(64)),
            truth=self.truth,
            slots_per_day=self.sc.slots_per_day,
            foreground=foreground,
        )
        dev.restart_offset = rng.uniform(0, BLUEZONE_CYCLE_S)
        if kind in ("bluezone_android", "bluezone_ios"):
            dev.base_key = rng.getrandbits(256).to_bytes(32, "big")
            # the base key's day: the app was installed up to 60 days before
            dev.base_day = int(self.t_start // bluezone.DAY_S) - rng.randrange(0, 60)
        if kind == "bluezone_ios":
            if foreground:
                dev.data = frames.flags() + frames.ad_structure(
                    0x07, IOS_SERVICE_UUID_LE
                )
                dev.rsp = frames.ad_structure(0x09, b"Bluezone")
            else:
                overflow = bytes([0x01, 0x08]) + bytes(15)
                dev.data = frames.flags() + frames.manufacturer_data(
                    frames.APPLE_COMPANY, overflow
                )
        elif kind in ("ibeacon", "eddystone"):
            dev.addr = _addr(rng, static=True)
            tag_no = rng.getrandbits(32)
            if kind == "ibeacon":
                major, minor = tag_no >> 16, tag_no & 0xFFFF
                dev.data = frames.ibeacon(IBEACON_UUID, major, minor, -59)
                dev.key = f"ibeacon:{IBEACON_UUID}:{major}:{minor}"
            else:
                instance = tag_no.to_bytes(6, "big")
                dev.data = frames.eddystone_uid(EDDYSTONE_NAMESPACE, instance, -18)
                dev.key = f"eddystone-uid:{EDDYSTONE_NAMESPACE.hex()}:{instance.hex()}"
            dev.key_since = self.t_start
        return dev

    def _build_people(self) -> None:
        rng = self.rng
        for group in self.sc.groups:
            steps = [
                (list(s.zones), parse_clock(s.start), parse_clock(s.end), s.jitter_min)
                for s in group.plan
            ]
            mix = group.devices
            for i in range(group.count):
                name = f"{group.name}-{i + 1:03d}"
                prng = random.Random(rng.getrandbits(64))
                stays = self._jittered_plan(steps, i, prng)
                self.people.append(self._person(name, group.role, stays, mix, prng, i))
        # Passers-by at roadside stops: outside the bus, heard through its body.
        for bus in self.sc.buses:
            for ti, trip in enumerate(bus.trips):
                depart = self.day0 + parse_clock(trip.depart)
                for si, stop in enumerate(trip.stops):
                    t0 = depart + stop.at_min * 60
                    t1 = t0 + stop.dwell_min * 60
                    for k in range(stop.passers_by):
                        prng = random.Random(rng.getrandbits(64))
                        stay = Stay(
                            None,
                            t0,
                            t1,
                            bus=bus.zone,
                            distance_m=stop.distance_m + prng.uniform(-1.0, 1.5),
                        )
                        name = f"passer-{bus.zone}-{ti + 1}-{si + 1}-{k + 1}"
                        person = self._person(
                            name, "passer-by", [stay], DeviceMix(), prng, k
                        )
                        self.people.append(person)
        self.people.sort(key=lambda p: p.stays[0].t0 if p.stays else math.inf)

    def _person(
        self,
        name: str,
        role: str,
        stays: list[Stay],
        mix: DeviceMix,
        prng: random.Random,
        index: int,
    ) -> Person:
        pocket = prng.random() < mix.pocket
        draw = prng.random()
        devices: list[Device] = []
        if draw < mix.bluezone_android:
            devices.append(self._new_device("bluezone_android", name, pocket, prng))
        elif draw < mix.bluezone_android + mix.bluezone_ios:
            fg = prng.random() < mix.ios_foreground
            devices.append(self._new_device("bluezone_ios", name, pocket, prng, fg))
        elif draw < mix.bluezone_android + mix.bluezone_ios + mix.gaen:
            devices.append(self._new_device("gaen", name, pocket, prng))
        if not devices or prng.random() < mix.tag:
            devices.append(self._new_device(mix.tag_kind, name, False, prng))
        person = Person(name, role, stays, devices, index=index)
        person.calib_err_db = prng.gauss(0.0, physics.EN_CALIBRATION_SIGMA_DB)
        return person

    def gatt_value(self, addr: str) -> bytes | None:
        """The ID a GATT read of an iPhone at `addr` returns at the current time."""
        for person in self.people:
            for dev in person.devices:
                if dev.kind == "bluezone_ios" and dev.addr == addr and dev.gatt_id:
                    return dev.gatt_id
        return None

    def gatt_value_at(self, addr: str, t: float) -> bytes | None:
        """`gatt_value` with the `GattTable.lookup` signature (t: the current time)."""
        del t
        return self.gatt_value(addr)

    # ------------------------------------------------------------------ running

    def _place(self, person: Person, stay: Stay, t: float) -> None:
        """Choose the person's spot in the zone (site plan metres)."""
        rng = self.rng
        self._epoch += 1
        person.spot_epoch = self._epoch
        if stay.zone is None:
            return
        zone = self.zones[stay.zone]
        if zone.kind == "bus":
            # Seats: two columns by rows along the bus.
            seat = person.index % max(int(zone.length / 0.8) * 2, 1)
            person.spot = (
                zone.x + (0.6 if seat % 2 == 0 else zone.width - 0.6),
                zone.y + 0.8 * (seat // 2) + 0.5,
            )
            return
        if zone.crew > 1:
            epoch = (
                int((t - self.t_start) // max(zone.move_min * 60, 1.0))
                if zone.move_min
                else 0
            )
            crew_id = person.index // zone.crew
            key = (zone.name, crew_id, epoch)
            centre = self._crew_spots.get(key)
            if centre is None:
                centre = (
                    zone.x + rng.uniform(2, zone.width - 2),
                    zone.y + rng.uniform(2, zone.length - 2),
                )
                self._crew_spots[key] = centre
                if len(self._crew_spots) > 10_000:
                    self._crew_spots.clear()
                    self._crew_spots[key] = centre
            angle = rng.uniform(0, 2 * math.pi)
            r = zone.crew_radius_m * math.sqrt(rng.random())
            person.spot = (
                centre[0] + r * math.cos(angle),
                centre[1] + r * math.sin(angle),
            )
            return
        person.spot = (
            zone.x + rng.uniform(0.3, zone.width - 0.3),
            zone.y + rng.uniform(0.3, zone.length - 0.3),
        )

    def reports(self) -> Iterator[Report]:
        """Every gateway's reports in time order; truth files complete at the end."""
        sc = self.sc
        step = sc.receiver.report_interval_s
        sens = sc.receiver.sensitivity_dbm
        rng = self.rng
        pending = list(self.people)  # sorted by first arrival
        present: list[Person] = []
        next_minute = self.t_start
        next_en = self.t_start + EN_SCAN_INTERVAL_S / 2
        bus_gw = {
            gw.zone: gw for gw in self.gateways if self.zones[gw.zone].kind == "bus"
        }
        t = self.t_start
        while t < self.t_end:
            t1 = min(t + step, self.t_end)
            while pending and pending[0].stays[0].t0 < t1:
                present.append(pending.pop(0))
            # Who is where in this tick (a stay counts from the tick it starts in).
            by_zone: dict[str, list[Person]] = {}
            outside: list[tuple[Person, Stay]] = []
            still: list[Person] = []
            for person in present:
                while (
                    person.stay_i < len(person.stays)
                    and person.stays[person.stay_i].t1 <= t
                ):
                    stay = person.stays[person.stay_i]
                    self.truth.presence(
                        person.name,
                        person.role,
                        stay.zone,
                        self.zones[stay.zone].kind if stay.zone else "outside",
                        max(stay.t0, self.t_start),  # truth covers the simulated span
                        stay.t1,
                    )
                    person.stay_i += 1
                    person.link.clear()
                    person.spot_epoch = -1
                if person.stay_i >= len(person.stays):
                    for dev in person.devices:
                        dev.finish(t)
                    continue
                still.append(person)
                stay = person.stays[person.stay_i]
                if stay.t0 >= t1:
                    continue
                if person.spot_epoch < 0 or stay.t0 >= t:
                    self._place(person, stay, t)
                elif stay.zone is not None:
                    zone = self.zones[stay.zone]
                    if zone.move_min and rng.random() < step / (zone.move_min * 60):
                        self._place(person, stay, t)
                        person.link.clear()
                if stay.zone is None:
                    outside.append((person, stay))
                else:
                    by_zone.setdefault(stay.zone, []).append(person)
            present = still
            if t >= next_minute:
                self._minute(by_zone, min(60.0, self.t_end - t))
                next_minute += 60.0
            if t >= next_en:
                self._en_scan(by_zone)
                next_en += EN_SCAN_INTERVAL_S
            # Advertisers in range of each gateway (for collisions).
            crowd: dict[str, int] = {}
            for zone_name, people in by_zone.items():
                n = sum(len(p.devices) for p in people)
                for gw in self.hearing[zone_name]:
                    crowd[gw.id] = crowd.get(gw.id, 0) + n
            out: list[Report] = []
            p_cache: dict[tuple[int, float, float], float] = {}
            for zone_name, people in by_zone.items():
                zone = self.zones[zone_name]
                links = [
                    (
                        gw,
                        0.0
                        if gw.zone == zone_name
                        else zone.wall + self.zones[gw.zone].wall,
                        crowd.get(gw.id, 1),
                        None,
                    )
                    for gw in self.hearing[zone_name]
                ]
                for person in people:
                    self._emit(person, links, t, t1, sens, out, p_cache)
            for person, stay in outside:
                bus_gateway = bus_gw.get(stay.bus or "")
                if bus_gateway is None:
                    continue
                bus = self.zones[bus_gateway.zone]
                # The passer-by stands `distance_m` from the bus side; its gateway
                # is inside behind the metal body.
                link = (
                    bus_gateway,
                    bus.wall,
                    crowd.get(bus_gateway.id, 1),
                    stay.distance_m + bus.width / 2,
                )
                self._emit(person, [link], t, t1, sens, out, p_cache)
            out.sort(key=lambda r: r.t)
            yield from out
            t = t1
        for person in present + pending:
            for stay in person.stays[person.stay_i :]:
                if stay.t0 < self.t_end:
                    self.truth.presence(
                        person.name,
                        person.role,
                        stay.zone,
                        self.zones[stay.zone].kind if stay.zone else "outside",
                        max(stay.t0, self.t_start),
                        min(stay.t1, self.t_end),
                    )
            for dev in person.devices:
                if dev.key is not None or dev.gatt_id:
                    dev.finish(self.t_end)
        self.truth.close({z.name: z.kind for z in sc.zones})

    def _emit(
        self,
        person: Person,
        links: Sequence[tuple[GatewayPos, float, int, float | None]],
        t: float,
        t1: float,
        sens: float,
        out: list[Report],
        p_cache: dict[tuple[int, float, float], float],
    ) -> None:
        """Reports of one person's devices at every gateway in `links` for [t, t1)."""
        radio = self.radio
        random_ = self.rng.random
        receiver = self.sc.receiver
        tick = t1 - t
        max_fade = radio.max_fading_db
        for i, dev in enumerate(person.devices):
            on_s = dev.on_time(t, t1) if dev.kind == "bluezone_android" else tick
            if on_s <= 0:
                continue
            dev.advance(t)
            events = on_s / dev.interval_s
            connectable = dev.kind in ("bluezone_android", "bluezone_ios")
            for gw, walls, n_crowd, distance_m in links:
                cached = person.link.get((i, gw.id))
                if cached is None or cached[0] != person.spot_epoch:
                    d = (
                        distance_m
                        if distance_m is not None
                        else math.hypot(person.spot[0] - gw.x, person.spot[1] - gw.y)
                    )
                    loss = walls + physics.pocket_loss_draw(self.rng, dev.pocket)
                    mean = radio.link_mean_dbm(gw.env, d, dev.tx_offset_db, loss)
                    person.link[(i, gw.id)] = (person.spot_epoch, mean)
                else:
                    mean = cached[1]
                if mean + max_fade[gw.env] < sens:
                    continue  # no fade in the table lifts it to the sensitivity
                ck = (n_crowd, dev.interval_s, events)
                p_report = p_cache.get(ck)
                if p_report is None:
                    p = physics.packet_success(
                        receiver.scan_duty,
                        receiver.packet_error,
                        n_crowd,
                        AIRTIME_S,
                        dev.interval_s,
                    )
                    p_report = 1.0 - (1.0 - p) ** events
                    p_cache[ck] = p_report
                if random_() >= p_report:
                    continue
                rssi = radio.sample_rssi(gw.env, mean)
                if rssi < sens:
                    continue
                if on_s < tick:
                    when = self._on_instant(dev, t, t1)
                else:
                    when = t + random_() * tick
                rssi_i = max(-127, min(20, round(rssi)))
                out.append(
                    Report(
                        when,
                        dev.addr,
                        AddrType.RANDOM,
                        rssi_i,
                        dev.data,
                        False,
                        gw.id,
                        connectable,
                    )
                )
                if dev.rsp is not None:
                    out.append(
                        Report(
                            when + 0.002,
                            dev.addr,
                            AddrType.RANDOM,
                            rssi_i,
                            dev.rsp,
                            True,
                            gw.id,
                            True,
                        )
                    )

    def _on_instant(self, dev: Device, t: float, t1: float) -> float:
        """A uniformly random instant of [t, t1) at which the device advertises."""
        spans: list[tuple[float, float]] = []
        c = (
            math.floor((t - dev.restart_offset) / BLUEZONE_CYCLE_S) * BLUEZONE_CYCLE_S
            + dev.restart_offset
        )
        while c < t1:
            lo, hi = max(t, c), min(t1, c + BLUEZONE_ON_S)
            if hi > lo:
                spans.append((lo, hi))
            c += BLUEZONE_CYCLE_S
        total = sum(hi - lo for lo, hi in spans)
        pick = self.rng.random() * total
        for lo, hi in spans:
            if pick < hi - lo:
                return lo + pick
            pick -= hi - lo
        return spans[-1][0] if spans else t

    def _minute(self, by_zone: dict[str, list[Person]], seconds: float) -> None:
        """Credit `seconds` of closeness to every pair in one zone within 2 m."""
        for zone_name, people in by_zone.items():
            n = len(people)
            for a in range(n):
                pa = people[a]
                for b in range(a + 1, n):
                    pb = people[b]
                    if (pa.spot[0] - pb.spot[0]) ** 2 + (
                        pa.spot[1] - pb.spot[1]
                    ) ** 2 <= CLOSE_M**2:
                        self.truth.close_seconds(pa.name, pb.name, zone_name, seconds)

    def _en_scan(self, by_zone: dict[str, list[Person]]) -> None:
        """One EN scan of every phone: attenuation to every phone in its zone, each
        credited 5 minutes (phones in other rooms are not simulated here)."""
        minutes = EN_SCAN_INTERVAL_S / 60.0
        rng = self.rng
        for zone_name, people in by_zone.items():
            zone = self.zones[zone_name]
            env = physics.ZONE_ENV[zone.kind]
            phones = [p for p in people if p.phone is not None]
            for rx in phones:
                for tx in phones:
                    if rx is tx:
                        continue
                    d = math.hypot(rx.spot[0] - tx.spot[0], rx.spot[1] - tx.spot[1])
                    loss = physics.pocket_loss_draw(
                        rng, rx.phone.pocket if rx.phone else False
                    )
                    loss += physics.pocket_loss_draw(
                        rng, tx.phone.pocket if tx.phone else False
                    )
                    att = self.radio.attenuation_db(env, d, loss, rx.calib_err_db)
                    if att <= 100:
                        self.truth.en_sighting(
                            rx.name, tx.name, zone_name, att, minutes
                        )


def with_overrides(
    scenario: Scenario, *, hours: float | None, seed: int | None
) -> Scenario:
    changes: dict[str, object] = {}
    if hours is not None:
        changes["hours"] = hours
    if seed is not None:
        changes["seed"] = seed
    return dataclasses.replace(scenario, **changes) if changes else scenario  # type: ignore[arg-type]


__all__ = ["Simulator", "with_overrides"]
