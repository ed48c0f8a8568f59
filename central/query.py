"""The queries ops run besides contacts (central-reference.md 5.1 Q1, Q2, Q5, Q8, Q9).

Each function takes the store and plain parameters (times as Unix seconds, `now`
passed in) and returns a JSON-ready dict, so the CLI prints it and the HTTP layer
serves it unchanged. Zone and person resolution is the contact rule's
(`central.rules.RefData`): reference data over time first, then what the gateway
reported.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from central import rules
from central.contacts import zone_gateways
from central.rules import RefData, Resolved, Seed
from central.store import SqlStore


def _union_seconds(spans: Sequence[tuple[float, float]]) -> float:
    total = 0.0
    cur_a = cur_b = None
    for a, b in sorted(spans):
        if cur_b is None or a > cur_b:
            if cur_b is not None and cur_a is not None:
                total += cur_b - cur_a
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    if cur_a is not None and cur_b is not None:
        total += cur_b - cur_a
    return total


def _people(store: SqlStore, ids: set[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for person in sorted(ids):
        found = store.person(person)
        if found is not None:
            out[person] = found
    return out


def roster(
    store: SqlStore,
    *,
    t0: float,
    t1: float,
    zone: str | None = None,
    gateway: str | None = None,
) -> dict[str, Any]:
    """Who was in a zone (or at a gateway) in [t0, t1): the bus manifest, the room roster."""
    if (zone is None) == (gateway is None):
        raise ValueError("give exactly one of zone or gateway")
    ref = store.refdata()
    if zone is not None:
        gateways = zone_gateways(store, ref, zone, t0, t1, store.max_presence_s())
    else:
        gateways = {gateway} if gateway else set()
    rows = store.presence_at_gateways(sorted(gateways), t0, t1)
    items = [
        r
        for r in rules.resolve(rows, ref, t0, t1)
        if zone is None or r.zone.zone == zone
    ]
    groups: dict[str, list[Resolved]] = defaultdict(list)
    for item in items:
        groups[rules.identity(item)].append(item)
    people = _people(store, {i.person for i in items if i.person})
    entries = []
    for ident, group in groups.items():
        first = min(group, key=lambda g: g.start)
        person = first.person
        entries.append(
            {
                "person": person,
                "name": people.get(person, {}).get("name") if person else None,
                "kind": people.get(person, {}).get("kind") if person else None,
                "key": first.row.key,
                "keys": sorted({k for g in group for k in g.row.all_keys}),
                "gateways": sorted({g.row.gateway for g in group}),
                "first": rules.iso(min(g.start for g in group)),
                "last": rules.iso(max(g.end for g in group)),
                "minutes": round(
                    _union_seconds([(g.start, g.end) for g in group]) / 60, 2
                ),
                "_id": ident,
            }
        )
    entries.sort(key=lambda e: (e["first"], e["_id"]))
    for e in entries:
        del e["_id"]
    return {
        "query": {
            "roster": {"zone": zone, "gateway": gateway},
            "from": rules.iso(t0),
            "to": rules.iso(t1),
        },
        "gateways": sorted(gateways),
        "count": len(entries),
        "entries": entries,
    }


def timeline(
    store: SqlStore,
    *,
    t0: float,
    t1: float,
    device: str | None = None,
    person: str | None = None,
    merge_gap_s: float = 120.0,
) -> dict[str, Any]:
    """Where a device (all its chained keys) or a person (through tags) was, in order."""
    if (device is None) == (person is None):
        raise ValueError("give exactly one of device or person")
    ref = store.refdata()
    seed = Seed("device", device) if device else Seed("person", person or "")
    from central.contacts import seed_candidates

    rule = rules.Rule(merge_gap_s=merge_gap_s)
    items = rules.resolve(seed_candidates(store, seed, ref, t0, t1, rule), ref, t0, t1)
    items.sort(key=lambda i: (i.start, i.row.gateway))
    entries: list[dict[str, Any]] = []
    open_: dict[tuple[str, str], dict[str, Any]] = {}
    for item in items:
        k = (item.zone.zone, item.row.gateway)
        cur = open_.get(k)
        if cur is not None and item.start <= cur["_b"] + merge_gap_s:
            cur["_b"] = max(cur["_b"], item.end)
            cur["_spans"].append((item.start, item.end))
            cur["keys"] |= set(item.row.all_keys)
            continue
        cur = {
            "zone": item.zone.zone,
            "zone_kind": item.zone.kind,
            "gateway": item.row.gateway,
            "_a": item.start,
            "_b": item.end,
            "_spans": [(item.start, item.end)],
            "keys": set(item.row.all_keys),
        }
        open_[k] = cur
        entries.append(cur)
    out = []
    for e in sorted(entries, key=lambda e: (e["_a"], e["gateway"])):
        out.append(  # noqa: PERF401 - readability
            {
                "zone": e["zone"],
                "zone_kind": e["zone_kind"],
                "gateway": e["gateway"],
                "from": rules.iso(e["_a"]),
                "to": rules.iso(e["_b"]),
                "minutes": round(_union_seconds(e["_spans"]) / 60, 2),
                "keys": sorted(e["keys"]),
            }
        )
    return {
        "query": {
            "timeline": {"device": device, "person": person},
            "from": rules.iso(t0),
            "to": rules.iso(t1),
        },
        "entries": out,
    }


def gatelog(store: SqlStore, *, site: str, day: dt.date, now: float) -> dict[str, Any]:
    """Entries and exits at a site's gates on a UTC day, with visitors and hosts, and the
    headcount on site at `now` (everyone whose last passage before `now` was `in`)."""
    t0 = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
    t1 = t0 + 86_400
    events = store.gate_events(site, t0, t1)
    last = store.last_gate_direction(site, now)
    keys = {e["key"] for e in events if e["key"]} | {k for k, _d in last}
    ref = store.refdata(tag_keys=sorted(keys))
    persons = {ref.person_of(e["key"], e["t"]) for e in events if e["key"]}
    on_site_keys = [k for k, d in last if d == "in"]
    on_site_people = {ref.person_of(k, now) for k in on_site_keys}
    people = _people(store, {p for p in persons | on_site_people if p})
    rows = []
    for e in events:
        person = ref.person_of(e["key"], e["t"]) if e["key"] else None
        info = people.get(person or "", {})
        rows.append(
            {
                "t": rules.iso(e["t"]),
                "direction": e["direction"],
                "gateway": e["gateway"],
                "key": e["key"],
                "person": person,
                "name": info.get("name"),
                "kind": info.get("kind"),
                "employer": info.get("employer"),
                "host": info.get("host"),
            }
        )
    on_site: list[dict[str, Any]] = []
    for key in on_site_keys:
        person = ref.person_of(key, now)
        info = people.get(person or "", {})
        on_site.append(
            {
                "key": key,
                "person": person,
                "name": info.get("name"),
                "kind": info.get("kind"),
                "host": info.get("host"),
            }
        )
    identities = {(o["person"] or "key:" + o["key"]) for o in on_site}
    return {
        "query": {
            "gatelog": {"site": site, "day": day.isoformat()},
            "now": rules.iso(now),
        },
        "events": rows,
        "entries": sum(1 for r in rows if r["direction"] == "in"),
        "exits": sum(1 for r in rows if r["direction"] == "out"),
        "visitors": sorted(
            {r["person"] for r in rows if r["kind"] == "visitor" and r["person"]}
        ),
        "headcount": len(identities),
        "on_site": on_site,
    }


def occupancy(
    store: SqlStore, *, zone: str, t0: float, t1: float, bucket_s: float = 900.0
) -> dict[str, Any]:
    """Per time bucket: distinct devices/people present (from presence records) and the
    largest count a gateway of the zone reported (occupancy records)."""
    if bucket_s <= 0:
        raise ValueError("bucket_s must be positive")
    ref: RefData = store.refdata()
    gateways = zone_gateways(store, ref, zone, t0, t1, store.max_presence_s())
    items = [
        r
        for r in rules.resolve(
            store.presence_at_gateways(sorted(gateways), t0, t1), ref, t0, t1
        )
        if r.zone.zone == zone
    ]
    first_bucket = int(t0 // bucket_s)
    last_bucket = math.ceil(t1 / bucket_s) - 1
    present: dict[int, set[str]] = defaultdict(set)
    for item in items:
        for b in range(int(item.start // bucket_s), math.ceil(item.end / bucket_s)):
            present[b].add(rules.identity(item))
    reported: dict[int, int] = defaultdict(int)
    for _gw, start, count in store.occupancy(sorted(gateways), t0, t1, bucket_s):
        b = round(start / bucket_s)
        reported[b] = max(reported[b], count)
    buckets: list[dict[str, Any]] = []
    for b in range(first_bucket, last_bucket + 1):
        buckets.append(  # noqa: PERF401 - readability
            {
                "t": rules.iso(b * bucket_s),
                "present": len(present.get(b, ())),
                "reported": reported.get(b),
            }
        )
    return {
        "query": {
            "occupancy": {"zone": zone},
            "from": rules.iso(t0),
            "to": rules.iso(t1),
            "bucket_s": bucket_s,
        },
        "gateways": sorted(gateways),
        "peak": max((x["present"] for x in buckets), default=0),
        "buckets": buckets,
    }


def fleet(
    store: SqlStore, *, now: float, silent_after_s: float = 600.0
) -> dict[str, Any]:
    """Every gateway's status, last health and batch, sequence gaps; silent ones flagged."""
    gaps = store.sequence_gaps()
    by_gw: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for g in gaps:
        by_gw[g["gateway"]].append(g)
    out = []
    for s in store.gateway_status():
        last = max(
            x
            for x in (s["status_at"], s["health_at"], s["last_batch_at"], 0.0)
            if x is not None
        )
        out.append(
            {
                **s,
                "sequence_gaps": by_gw.get(s["gateway"], []),
                "silent": (now - last) > silent_after_s,
            }
        )
    return {"now": rules.iso(now), "gateways": out}
