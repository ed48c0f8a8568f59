"""Fleet health: every gateway and beacon, what its last messages say, and what needs a
technician (central-reference.md Q9).

Sources, all already in the store: the retained `status` topic (``online``, or
``offline`` when the broker published the unit's last will), the periodic `health`
message (JSON; the fields read here are listed in `HEALTH_FIELDS`), the accepted
batches (last batch time, sequence gaps), the enrolled signing keys, the reference
data (gateways registered but never heard) and the registered beacons.

A unit is *silent* when nothing (status, health or batch) arrived for
`silent_after_s`: a gateway on a bus out of coverage is silent without being
broken, which is why the flag says silent, and "offline" is reserved for the last
will. `state` condenses it for the table: ``down`` (offline or silent), ``warn``
(sequence gaps, an outbox that is not draining, dropped records, an unsynchronised
clock, no site beacon heard), ``ok``.

`assess` is pure (rows in, JSON-ready dict out); `fleet` reads the store.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Final

from central import rules
from central.beacon_check import beacon_index, check_presence, radio_status
from central.store import SqlStore

# Health message fields read (all optional; a unit that sends none is "unknown"):
HEALTH_FIELDS: Final = {
    "outbox.depth": "records not yet acknowledged by the broker",
    "outbox.oldest_age_s": "age of the oldest of them",
    "outbox.dropped_size": "records dropped by the outbox size bound, ever",
    "outbox.dropped_retention": "records dropped by the outbox retention, ever",
    "clock": '"synced"/"unsynced", or {"synced": bool, "held": n, ...}',
    "radio.site_beacons": "site beacons heard in the last interval",
    "radio.site_beacons_expected": "site beacons this gateway should hear",
    "radio.beacon_age_s": "seconds since a site beacon was last heard",
}
DEFAULT_SILENT_AFTER_S: Final = 600.0
# An outbox whose oldest record waits longer than this is not draining (5 batches
# of the default 60 s flush interval, plus reconnect back-off).
OUTBOX_STUCK_S: Final = 900.0
# The radio check: a site beacon advertises several times a second, so one not
# heard for 5 minutes means the radio (or the beacon) is broken.
BEACON_STALE_S: Final = 300.0
# Central's own radio check looks at the last hour of presence records: a gateway
# flushes a stay when it closes, so a beacon heard continuously shows up late.
RADIO_LOOKBACK_S: Final = 3600.0


def _num(obj: Any, *path: str) -> float | None:
    for part in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)
    if isinstance(obj, bool) or not isinstance(obj, int | float):
        return None
    return float(obj)


def clock_state(health: Mapping[str, Any] | None) -> str:
    """synced | unsynced | unknown, from the health message."""
    if not health:
        return "unknown"
    clock = health.get("clock")
    if isinstance(clock, str):
        return clock if clock in ("synced", "unsynced") else "unknown"
    if isinstance(clock, Mapping):
        synced = clock.get("synced")
        if isinstance(synced, bool):
            return "synced" if synced else "unsynced"
        state = clock.get("state")
        if state in ("synced", "unsynced"):
            return str(state)
    return "unknown"


def radio_check(health: Mapping[str, Any] | None) -> str:
    """ok | no-beacon | not-configured | unknown: the site beacon as radio proof."""
    if not health or not isinstance(health.get("radio"), Mapping):
        return "unknown"
    expected = _num(health, "radio", "site_beacons_expected")
    heard = _num(health, "radio", "site_beacons")
    age = _num(health, "radio", "beacon_age_s")
    if expected is not None and expected <= 0:
        return "not-configured"
    if age is not None:
        return "ok" if age <= BEACON_STALE_S else "no-beacon"
    if heard is not None:
        return "ok" if heard > 0 else "no-beacon"
    return "unknown"


def assess(
    status_rows: Sequence[Mapping[str, Any]],
    gaps: Sequence[Mapping[str, Any]],
    registered: Sequence[Mapping[str, Any]],
    enrolled: Sequence[Mapping[str, Any]],
    zones_seen: Sequence[Mapping[str, Any]],
    beacons: Sequence[Mapping[str, Any]],
    *,
    now: float,
    silent_after_s: float = DEFAULT_SILENT_AFTER_S,
    beacon_radio: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Pure: the fleet table. `beacon_radio` is `central.beacon_check.radio_status`
    over recent presence (central's own evidence, preferred to the health message)."""
    beacon_radio = beacon_radio or {}
    gaps_by: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for g in gaps:
        gaps_by[g["gateway"]].append(g)
    status_by = {s["gateway"]: s for s in status_rows}
    enrolled_ids = {e["gateway"] for e in enrolled}
    zone_by: dict[str, tuple[float, str]] = {}
    for z in zones_seen:
        last = float(z["last"] or 0.0)
        if z["gateway"] not in zone_by or last > zone_by[z["gateway"]][0]:
            zone_by[z["gateway"]] = (last, z["zone"])
    beacon_ids = {b["beacon"] for b in beacons}
    names = sorted(
        (
            {s["gateway"] for s in status_rows}
            | {r["gateway"] for r in registered}
            | enrolled_ids
        )
        - beacon_ids
    )
    reg_site = {r["gateway"]: r.get("site") for r in registered}
    gateways = []
    for name in names:
        s = status_by.get(name, {})
        health = s.get("health") if isinstance(s.get("health"), Mapping) else None
        heard = [
            float(x)
            for x in (s.get("status_at"), s.get("health_at"), s.get("last_batch_at"))
            if x is not None
        ]
        last_heard = max(heard) if heard else None
        silent = last_heard is None or now - last_heard > silent_after_s
        depth = _num(health, "outbox", "depth")
        oldest = _num(health, "outbox", "oldest_age_s")
        dropped = sum(
            v
            for v in (
                _num(health, "outbox", "dropped_size"),
                _num(health, "outbox", "dropped_retention"),
            )
            if v is not None
        )
        g_list = gaps_by.get(name, [])
        missing = sum(int(g["missing"]) for g in g_list)
        clock = clock_state(health)
        radio = radio_check(health)
        evidence = beacon_radio.get(name)
        foreign: list[str] = []
        if evidence is not None:
            radio = "ok" if evidence.get("own_beacon_heard") else "no-beacon"
            foreign = list(evidence.get("foreign") or [])
        problems = []
        if s.get("status") == "offline":
            problems.append("offline (last will)")
        if last_heard is None:
            problems.append("never heard")
        elif silent:
            problems.append(f"silent for {int((now - last_heard) // 60)} min")
        if missing:
            problems.append(f"{missing} records missing (sequence gaps)")
        if oldest is not None and oldest > OUTBOX_STUCK_S:
            problems.append(f"outbox not draining (oldest {int(oldest // 60)} min)")
        if dropped:
            problems.append(f"{int(dropped)} records dropped at the gateway")
        if clock == "unsynced":
            problems.append("clock not synchronised")
        if radio == "no-beacon":
            problems.append("site beacon not heard (radio check)")
        if foreign:
            problems.append("hears beacons of another zone: " + ", ".join(foreign))
        if name not in enrolled_ids:
            problems.append("signing key not enrolled")
        down = s.get("status") == "offline" or silent
        gateways.append(
            {
                "gateway": name,
                "site": s.get("site") or reg_site.get(name),
                "zone": zone_by[name][1] if name in zone_by else None,
                "status": s.get("status") or "unknown",
                "status_at": _iso(s.get("status_at")),
                "last_heard": _iso(last_heard),
                "last_heard_age_s": None
                if last_heard is None
                else round(now - last_heard, 1),
                "last_batch": _iso(s.get("last_batch_at")),
                "health_at": _iso(s.get("health_at")),
                "health": health,
                "outbox_depth": None if depth is None else int(depth),
                "outbox_oldest_age_s": oldest,
                "dropped": int(dropped),
                "sequence_gaps": len(g_list),
                "missing_records": missing,
                "clock": clock,
                "radio": radio,
                "radio_last": _iso(evidence.get("last")) if evidence else None,
                "enrolled": name in enrolled_ids,
                "silent": silent,
                "state": "down" if down else ("warn" if problems else "ok"),
                "problems": problems,
            }
        )
    radio_by_zone: dict[str, list[str]] = defaultdict(list)
    for g in gateways:
        if g["radio"] == "ok" and g["zone"]:
            radio_by_zone[str(g["zone"])].append(g["gateway"])
    beacon_rows = []
    for b in beacons:
        s = status_by.get(b["beacon"], {})
        heard_by = radio_by_zone.get(str(b["zone"]), [])
        at = [
            float(x) for x in (s.get("status_at"), s.get("health_at")) if x is not None
        ]
        beacon_last = max(at) if at else None
        problems = []
        if s.get("status") == "offline":
            problems.append("offline (last will)")
        if not heard_by:
            problems.append("no gateway of its zone heard it recently")
        beacon_rows.append(
            {
                "beacon": b["beacon"],
                "site": b["site"],
                "zone": b["zone"],
                "scheme": b["scheme"],
                "retired": _iso(b.get("retired")),
                "status": s.get("status") or "unknown",
                "last_heard": _iso(beacon_last),
                "heard_by": heard_by,
                "state": "down"
                if s.get("status") == "offline"
                else ("warn" if problems else "ok"),
                "problems": problems,
            }
        )
    summary = {
        "gateways": len(gateways),
        "ok": sum(1 for g in gateways if g["state"] == "ok"),
        "warn": sum(1 for g in gateways if g["state"] == "warn"),
        "down": sum(1 for g in gateways if g["state"] == "down"),
        "beacons": len(beacon_rows),
    }
    return {
        "now": rules.iso(now),
        "silent_after_s": silent_after_s,
        "summary": summary,
        "gateways": gateways,
        "beacons": beacon_rows,
    }


def _iso(t: Any) -> str | None:
    return None if t is None else rules.iso(float(t))


def beacon_radio(
    store: SqlStore, *, now: float, lookback_s: float = RADIO_LOOKBACK_S
) -> dict[str, dict[str, Any]]:
    """Per gateway of a zone with a registered beacon: was that beacon heard lately?"""
    from central.commands.beacon import registered

    beacons = registered(store, include_retired=False)
    if not beacons:
        return {}
    start = now - lookback_s
    index = beacon_index(beacons, start, now)
    records = store.presence_by_keys(sorted(index), start, now) if index else []
    own_zones = {b.zone for b in beacons}
    gateway_zones = {
        str(r["gateway"]): r["zone"]
        for r in store.zones_seen()
        if r["zone"] in own_zones
    }
    return radio_status(check_presence(index, records), gateway_zones)


def fleet(
    store: SqlStore, *, now: float, silent_after_s: float = DEFAULT_SILENT_AFTER_S
) -> dict[str, Any]:
    return assess(
        store.gateway_status(),
        store.sequence_gaps(),
        store.list_table("gateways"),
        store.list_gateway_keys(),
        store.zones_seen(),
        store.list_beacons(include_retired=False),
        now=now,
        silent_after_s=silent_after_s,
        beacon_radio=beacon_radio(store, now=now),
    )
