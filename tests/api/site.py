"""A replayed site for the ops tests: advertisement traces of one morning at mine-a run
through the REAL edge pipeline (gateway.pipeline.EdgePipeline: decode, presence
stays, gate passages, occupancy), signed as the gateway signs its batches, and fed
through central's real ingest processor (central.ingest.MessageProcessor), with
status and health messages as the gateways publish them.

The morning (UTC, 2026-03-02), worker tags are iBeacons:
- 05:50 W001..W006 walk through the main gate (gw-gate); visitor tag V at 07:55.
- 06:00-06:40 bus-07 (gw-bus-07): W001, W002, W003 ride together (F1 of W001).
- 07:00-09:00 shift room room-a (gw-room-a): W001 and W004 (F1); W005 drops in
  07:00-07:10 only (10 min, below the 15-min rule: not a contact).
- 10:00-11:00 room-a: W004 with W006 (F2 of W001 through W004).
- 09:30 W001 walks out of the gate.
- gw-room-a skips one batch (a sequence gap); gw-yard-3 went offline (last will).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from central import refdata
from central.ingest import MessageProcessor
from central.store import SqlStore
from gateway.config import GatewayConfig, ZoneConfig
from gateway.envelope import encode_batch, make_body
from gateway.models import AddrType, Report
from gateway.pipeline import EdgePipeline

DAY = dt.date(2026, 3, 2)
T0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC).timestamp()
UUID = "11223344-5566-7788-9900-aabbccddeeff"
SITE = "mine-a"


def at(hhmm: str) -> float:
    h, m = hhmm.split(":")
    return T0 + int(h) * 3600 + int(m) * 60


def tag_key(major: int, minor: int) -> str:
    return f"ibeacon:{UUID}:{major}:{minor}"


def ibeacon(major: int, minor: int) -> bytes:
    uuid = bytes.fromhex(UUID.replace("-", ""))
    return (
        bytes.fromhex("0201061aff4c000215")
        + uuid
        + major.to_bytes(2, "big")
        + minor.to_bytes(2, "big")
        + b"\xc5"
    )


BEACON_BASE_KEY = bytes(range(32))
WORKERS = {f"W00{i}": (1, i) for i in range(1, 7)}
VISITOR_TAG = (2, 1)


def addr(major: int, minor: int) -> str:
    return f"C0:00:00:00:{major:02X}:{minor:02X}"


def stay(
    gateway: str,
    who: tuple[int, int],
    a: float,
    b: float,
    rng: random.Random,
    rssi: int = -62,
) -> list[Report]:
    """A tag advertising every 2 s while in a zone (the scanner hears most of it)."""
    out = []
    t = a
    while t < b:
        if rng.random() < 0.9:
            out.append(
                Report(
                    t=round(t + rng.random() * 0.2, 3),
                    addr=addr(*who),
                    addr_type=AddrType.PUBLIC,
                    rssi=rssi + rng.randint(-4, 4),
                    data=ibeacon(*who),
                    gateway=gateway,
                )
            )
        t += 2.0
    return out


def walk(gateway: str, who: tuple[int, int], t: float) -> list[Report]:
    """Approach, pass the gate antenna, walk away (one passage)."""
    out = []
    for i, rssi in enumerate(
        (-88, -82, -75, -68, -60, -55, -52, -55, -62, -75, -85, -92)
    ):
        out.append(
            Report(
                t=t + i,
                addr=addr(*who),
                addr_type=AddrType.PUBLIC,
                rssi=rssi,
                data=ibeacon(*who),
                gateway=gateway,
            )
        )
    return out


@dataclass
class Gateway:
    name: str
    zone: str
    kind: str
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    reports: list[Report] = field(default_factory=list)

    def public_pem(self) -> str:
        return (
            self.key.public_key()
            .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )


REFDATA = """
sites: [{site: mine-a, name: Mine A, tz: Asia/Ho_Chi_Minh}]
zones:
  - {zone: bus-07, site: mine-a, kind: bus, enclosed: true, capacity: 45}
  - {zone: room-a, site: mine-a, kind: shift_room, enclosed: true, capacity: 30}
  - {zone: gate-main, site: mine-a, kind: entrance, enclosed: true}
  - {zone: yard-3, site: mine-a, kind: yard, enclosed: false}
gateways:
  - {gateway: gw-bus-07, site: mine-a, zones: [{zone: bus-07, from: 2026-01-01}]}
  - {gateway: gw-room-a, site: mine-a, zones: [{zone: room-a, from: 2026-01-01}]}
  - {gateway: gw-gate, site: mine-a, zones: [{zone: gate-main, from: 2026-01-01}]}
  - {gateway: gw-yard-3, site: mine-a, zones: [{zone: yard-3, from: 2026-01-01}]}
people:
  - {person: W001, kind: worker, name: Nguyen Van An, employer: ACME Mining, phone: "+84 90 000 0001"}
  - {person: W002, kind: worker, name: Tran Thi Binh, employer: ACME Mining, phone: "+84 90 000 0002"}
  - {person: W003, kind: worker, name: Le Van Cuong, employer: ACME Mining, phone: "+84 90 000 0003"}
  - {person: W004, kind: worker, name: Pham Thi Dung, employer: ACME Mining, phone: "+84 90 000 0004"}
  - {person: W005, kind: contractor, name: Hoang Van Em, employer: Drill Co, phone: "+84 90 000 0005"}
  - {person: W006, kind: worker, name: Vu Thi Giang, employer: ACME Mining, phone: "+84 90 000 0006"}
tags:
"""


def refdata_yaml() -> str:
    lines = [REFDATA.rstrip()]
    for person, (major, minor) in WORKERS.items():
        lines.append(
            f'  - {{key: "{tag_key(major, minor)}", person: {person}, from: 2026-01-01}}'
        )
    return "\n".join(lines) + "\n"


def build_reports(seed: int = 7) -> dict[str, Gateway]:
    rng = random.Random(seed)
    gws = {
        "gw-bus-07": Gateway("gw-bus-07", "bus-07", "bus"),
        "gw-room-a": Gateway("gw-room-a", "room-a", "shift_room"),
        "gw-gate": Gateway("gw-gate", "gate-main", "entrance"),
        "gw-yard-3": Gateway("gw-yard-3", "yard-3", "yard"),
    }
    w = WORKERS
    for i, person in enumerate(sorted(w)):
        gws["gw-gate"].reports += walk("gw-gate", w[person], at("05:50") + 20 * i)
    gws["gw-gate"].reports += walk("gw-gate", VISITOR_TAG, at("07:55"))
    gws["gw-gate"].reports += walk("gw-gate", w["W001"], at("09:30"))
    for person in ("W001", "W002", "W003"):
        gws["gw-bus-07"].reports += stay(
            "gw-bus-07", w[person], at("06:00"), at("06:40"), rng
        )
    room = gws["gw-room-a"]
    room.reports += stay("gw-room-a", w["W001"], at("07:00"), at("09:00"), rng)
    room.reports += stay("gw-room-a", w["W004"], at("07:00"), at("11:00"), rng)
    room.reports += stay("gw-room-a", w["W005"], at("07:00"), at("07:10"), rng)
    room.reports += stay("gw-room-a", w["W006"], at("10:00"), at("11:00"), rng)
    gws["gw-yard-3"].reports += stay(
        "gw-yard-3", w["W002"], at("08:00"), at("08:20"), rng, -80
    )
    for g in gws.values():
        g.reports.sort(key=lambda r: r.t)
    return gws


def records_of(gw: Gateway) -> list[dict[str, Any]]:
    cfg = GatewayConfig(
        site=SITE, gateway=gw.name, zone=ZoneConfig(name=gw.zone, kind=gw.kind)
    )  # type: ignore[arg-type]
    pipeline = EdgePipeline(cfg)
    pipeline.feed(gw.reports)
    records = pipeline.close()
    for seq, r in enumerate(records, start=1):
        r["seq"] = seq
    return records


@dataclass
class Replayed:
    records: dict[str, list[dict[str, Any]]]
    processor_counters: dict[str, Any]
    skipped_seq: tuple[str, int, int]


def replay_site(
    store: SqlStore, *, batch_size: int = 40, now: float | None = None
) -> Replayed:
    """Reference data, enrolment, then every gateway's batches, status and health."""
    refdata.import_items(store, list(refdata.read_yaml("site.yaml", refdata_yaml())))
    # A Bluezone beacon stands in room-a (registered with its base key, as
    # `bluegate-central beacon register` does): locations of interest in room-a
    # carry its F0 exposure key.
    store.add_beacon(
        "room-a-beacon",
        SITE,
        "room-a",
        base_key=BEACON_BASE_KEY.hex(),
        created=T0 - 10 * 86_400,
    )
    gws = build_reports()
    wall = now if now is not None else time.time()
    proc = MessageProcessor(store, require_signatures=True, now=lambda: wall)
    all_records: dict[str, list[dict[str, Any]]] = {}
    skipped = ("", 0, 0)
    for gw in gws.values():
        store.enroll_gateway(gw.name, gw.public_pem(), wall)
        records = records_of(gw)
        all_records[gw.name] = records
        batches = [
            records[i : i + batch_size] for i in range(0, len(records), batch_size)
        ]
        for index, chunk in enumerate(batches):
            if gw.name == "gw-room-a" and index == 1 and len(batches) > 2:
                skipped = (gw.name, chunk[0]["seq"], chunk[-1]["seq"])
                continue  # lost on the way: central must report the gap
            body = make_body(site=SITE, gateway=gw.name, boot=1, records=chunk, sent=T0)
            proc.process(
                f"bluegate/v1/{SITE}/{gw.name}/records", encode_batch(body, gw.key)
            )
        status = b"offline" if gw.name == "gw-yard-3" else b"online"
        proc.process(f"bluegate/v1/{SITE}/{gw.name}/status", status)
        health = {
            "outbox": {
                "depth": 0 if gw.name != "gw-bus-07" else 12,
                "oldest_age_s": None if gw.name != "gw-bus-07" else 35.0,
                "dropped_size": 0,
                "dropped_retention": 0,
                "inflight": 0,
                "boot": 1,
            },
            "clock": "synced" if gw.name != "gw-gate" else "unsynced",
        }
        proc.process(
            f"bluegate/v1/{SITE}/{gw.name}/health", json.dumps(health).encode()
        )
    return Replayed(all_records, proc.counters.as_dict(), skipped)
