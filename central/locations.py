"""Locations of interest: the zones and windows where a case was seen, reviewed by ops,
then published to workers (central-reference.md Q7; NHS risky-venue list style).

Derived from a case's exposures: per zone, the windows merged across the zone's
gateways with the case rule's `merge_gap_s`. Each starts as a ``draft``; ops
publish it (workers see zone, site and window, never the case) or withdraw it.
Re-tracing a case replaces its drafts and keeps what was published or withdrawn.

Where the zone has a registered Bluezone beacon, the location also carries the
beacon's exposure key in Bluezone's F0 format (protocols.md 1.6: ``{"daily_key",
"time_start", "time_end", "max"}``): a worker's Bluezone app that logged the beacon's
rotating IDs in that window matches it exactly as it matches a sick person's key.
The export is `central.beacon_export` (the beacon side's code). Publishing a key
reveals every later ID of that beacon: the beacon must be rekeyed afterwards.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
from collections import defaultdict
from typing import Any, Final

from central import opsstore, rules
from central.beacon_export import export_window, f0_payload
from central.store import SqlStore

_LOGGER = logging.getLogger(__name__)

STATES: Final = ("draft", "published", "withdrawn")
_COLS: Final = (
    "id, case_id, zone, site, t_from, t_to, gateways, status, created, published, "
    "published_by, withdrawn, withdrawn_by"
)


class LocationError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _t(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def windows(
    exposures: list[dict[str, Any]], merge_gap_s: float
) -> list[dict[str, Any]]:
    """Pure: exposures (zone, gateway, from, to) -> per-zone merged windows."""
    by_zone: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for e in exposures:
        by_zone[e["zone"]].append((_t(e["from"]), _t(e["to"]), e["gateway"]))
    out: list[dict[str, Any]] = []
    for zone, spans in by_zone.items():
        spans.sort()
        a, b, gws = spans[0][0], spans[0][1], {spans[0][2]}
        for s0, s1, g in spans[1:]:
            if s0 <= b + merge_gap_s:
                b = max(b, s1)
                gws.add(g)
            else:
                out.append({"zone": zone, "from": a, "to": b, "gateways": sorted(gws)})
                a, b, gws = s0, s1, {g}
        out.append({"zone": zone, "from": a, "to": b, "gateways": sorted(gws)})
    out.sort(key=lambda w: (w["from"], w["zone"]))
    return out


def _site_of(store: SqlStore, zone: str) -> str | None:
    rows = store._query("SELECT site FROM zones WHERE zone = ?", (zone,))
    if rows and rows[0][0]:
        return str(rows[0][0])
    rows = store._query(
        "SELECT site FROM gateway_zones_seen WHERE zone = ? ORDER BY last_t DESC",
        (zone,),
    )
    return str(rows[0][0]) if rows and rows[0][0] else None


def derive(store: SqlStore, case_id: int, answer: dict[str, Any], *, now: float) -> int:
    """Bring the case's drafts in line with `answer`; published and withdrawn stay."""
    opsstore.ensure_schema(store)
    gap = float(answer.get("case", {}).get("rule", {}).get("merge_gap_s", 120.0))
    found = windows(answer.get("exposures", []), gap)
    keep = {(w["zone"], w["from"]) for w in found}
    with store.transaction():
        # Drafts that the new answer no longer has go; the others keep their id.
        for loc_id, zone, t_from in store._query(
            "SELECT id, zone, t_from FROM ops_locations WHERE case_id = ? "
            "AND status = 'draft'",
            (case_id,),
        ):
            if (zone, float(t_from)) not in keep:
                store._execute("DELETE FROM ops_locations WHERE id = ?", (loc_id,))
        for w in found:
            store._execute(
                "UPDATE ops_locations SET t_to = ?, gateways = ? WHERE case_id = ? "
                "AND zone = ? AND t_from = ? AND status = 'draft'",
                (w["to"], json.dumps(w["gateways"]), case_id, w["zone"], w["from"]),
            )
            store._execute(
                "INSERT INTO ops_locations (case_id, zone, site, t_from, t_to, "
                "gateways, status, created) VALUES (?,?,?,?,?,?,'draft',?) "
                "ON CONFLICT (case_id, zone, t_from) DO NOTHING",
                (
                    case_id,
                    w["zone"],
                    _site_of(store, w["zone"]),
                    w["from"],
                    w["to"],
                    json.dumps(w["gateways"]),
                    now,
                ),
            )
    return len(found)


def _row(store: SqlStore, r: tuple[Any, ...], *, with_case: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": int(r[0]),
        "zone": r[2],
        "site": r[3],
        "from": rules.iso(float(r[4])),
        "to": rules.iso(float(r[5])),
        "gateways": json.loads(r[6]),
        "status": r[7],
        "published": rules.iso(float(r[9])) if r[9] is not None else None,
        "withdrawn": rules.iso(float(r[11])) if r[11] is not None else None,
    }
    if with_case:
        out["case_id"] = int(r[1])
        out["published_by"] = r[10]
        out["withdrawn_by"] = r[12]
    out["beacon_keys"] = beacon_keys(store, r[2], float(r[4]), float(r[5]))
    return out


def for_case(store: SqlStore, case_id: int) -> list[dict[str, Any]]:
    opsstore.ensure_schema(store)
    rows = store._query(
        f"SELECT {_COLS} FROM ops_locations WHERE case_id = ? ORDER BY t_from, zone",  # noqa: S608 - constant SQL
        (case_id,),
    )
    return [_row(store, r, with_case=True) for r in rows]


def set_state(
    store: SqlStore, case_id: int, loc_id: int, state: str, *, now: float, actor: str
) -> dict[str, Any]:
    """Publish or withdraw one location of a case."""
    opsstore.ensure_schema(store)
    if state not in ("published", "withdrawn"):
        raise LocationError("state is published or withdrawn")
    rows = store._query(
        "SELECT status FROM ops_locations WHERE id = ? AND case_id = ?",
        (loc_id, case_id),
    )
    if not rows:
        raise LocationError(f"case {case_id} has no location {loc_id}", 404)
    if rows[0][0] == "withdrawn":
        raise LocationError("a withdrawn location stays withdrawn", 409)
    column = "published" if state == "published" else "withdrawn"
    with store.transaction():
        store._execute(
            f"UPDATE ops_locations SET status = ?, {column} = ?, {column}_by = ? "  # noqa: S608 - column from a fixed pair
            "WHERE id = ?",
            (state, now, actor, loc_id),
        )
    found = store._query(
        f"SELECT {_COLS} FROM ops_locations WHERE id = ?",  # noqa: S608 - constant SQL
        (loc_id,),
    )
    return _row(store, found[0], with_case=True)


def published(store: SqlStore, *, site: str | None = None) -> list[dict[str, Any]]:
    """What workers see: published, not withdrawn; no case, no person."""
    opsstore.ensure_schema(store)
    sql = f"SELECT {_COLS} FROM ops_locations WHERE status = 'published'"  # noqa: S608 - constant SQL
    params: tuple[Any, ...] = ()
    if site is not None:
        sql += " AND site = ?"
        params = (site,)
    rows = store._query(sql + " ORDER BY t_from, zone", params)
    return [_row(store, r, with_case=False) for r in rows]


def published_csv(items: list[dict[str, Any]]) -> str:
    """Pure: NHS risky-venue form ``venue_id,start,end,message_type,param``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["venue_id", "start", "end", "message_type", "param"])
    for item in items:
        w.writerow([item["zone"], item["from"], item["to"], "M1", item["site"] or ""])
    return buf.getvalue()


# ------------------------------------------------------------------ beacon keys


def beacon_keys(
    store: SqlStore, zone: str, t_from: float, t_to: float
) -> list[dict[str, Any]]:
    """F0 exposure keys (`central.beacon_export`) of the Bluezone beacons registered
    in `zone` over the window: one entry per base key the beacon used in it."""
    from central.commands.beacon import registered

    out = []
    for beacon in registered(store, include_retired=True):
        if beacon.zone != zone:
            continue
        try:
            entries = export_window(beacon.keys, t_from, t_to, beacon.slots_per_day)
        except ValueError:
            continue
        if entries:
            out.append(
                {
                    "beacon": beacon.beacon,
                    "f0": f0_payload(entries),
                    # Phones match from the first day's UTC midnight (the format
                    # cannot start mid-day; central.beacon_export).
                    "matches_from": rules.iso(entries[0].time_start),
                }
            )
    return out
