"""Gate and visitor log: entries and exits per site and day, visitors registered at the
gate and linked to their passages, headcount on site now (central-reference.md Q5).

Registering a visitor creates a `people` row (kind ``visitor``, with host) and a tag
assignment of the tag or device key they were given for the visit's interval. That
one link is all the rest needs: the gate log resolves their passages to them, and the
contact rule treats them like any worker (a visitor who tests positive is a case; a
visitor who shared the bus is a contact with a phone number). Checking a visitor out
ends the assignment, so the tag can be handed to the next visitor.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Final

from central import opsstore, query, rules
from central.store import SqlStore

_SITE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_COLS: Final = (
    "id, site, person, name, company, host, phone, key, valid_from, valid_to, "
    "registered, registered_by"
)


class VisitorError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _dict(r: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "id": int(r[0]),
        "site": r[1],
        "person": r[2],
        "name": r[3],
        "company": r[4],
        "host": r[5],
        "phone": r[6],
        "key": r[7],
        "from": rules.iso(float(r[8])),
        "to": rules.iso(float(r[9])) if r[9] is not None else None,
        "registered": rules.iso(float(r[10])),
        "registered_by": r[11],
        "_from": float(r[8]),
        "_to": float(r[9]) if r[9] is not None else None,
    }


def register(
    store: SqlStore,
    *,
    site: str,
    name: str,
    key: str,
    now: float,
    actor: str,
    company: str | None = None,
    host: str | None = None,
    phone: str | None = None,
    valid_from: float | None = None,
    valid_to: float | None = None,
) -> dict[str, Any]:
    """Register a visitor with the tag/device key they carry from `valid_from` (now)."""
    opsstore.ensure_schema(store)
    if not _SITE.match(site):
        raise VisitorError("site: not a valid identifier")
    name = name.strip()
    key = key.strip().lower()
    if not name or not key:
        raise VisitorError("name and key are required")
    start = now if valid_from is None else valid_from
    if valid_to is not None and valid_to <= start:
        raise VisitorError("valid_to must be after valid_from")
    overlapping = store._query(
        "SELECT v.id FROM ops_visitors v WHERE v.key = ? AND v.valid_from < ? "
        "AND (v.valid_to IS NULL OR v.valid_to > ?)",
        (key, valid_to if valid_to is not None else 1e18, start),
    )
    if overlapping:
        raise VisitorError(
            "that tag is still assigned to another visitor; check them out first", 409
        )
    with store.transaction():
        visitor_id = store._insert_id(
            "INSERT INTO ops_visitors (site, person, name, company, host, phone, key, "
            "valid_from, valid_to, registered, registered_by) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                site,
                "pending",
                name,
                company,
                host,
                phone,
                key,
                start,
                valid_to,
                now,
                actor,
            ),
        )
        person = f"visitor-{visitor_id}"
        store._execute(
            "UPDATE ops_visitors SET person = ? WHERE id = ?", (person, visitor_id)
        )
        store.upsert_person(person, "visitor", name, company, phone, host)
        store.assign_tag(key, person, start, valid_to)
    return get(store, visitor_id, now=now)


def checkout(store: SqlStore, visitor_id: int, *, now: float) -> dict[str, Any]:
    """End the visit (and the tag assignment) at `now`."""
    v = _row(store, visitor_id)
    if v["_to"] is not None and v["_to"] <= now:
        raise VisitorError("the visitor has already left", 409)
    end = max(now, v["_from"] + 1.0)
    with store.transaction():
        store._execute(
            "UPDATE ops_visitors SET valid_to = ? WHERE id = ?", (end, visitor_id)
        )
        store.assign_tag(v["key"], v["person"], v["_from"], end)
    return get(store, visitor_id, now=now)


def _row(store: SqlStore, visitor_id: int) -> dict[str, Any]:
    opsstore.ensure_schema(store)
    rows = store._query(
        f"SELECT {_COLS} FROM ops_visitors WHERE id = ?",  # noqa: S608 - constant SQL
        (visitor_id,),
    )
    if not rows:
        raise VisitorError(f"no visitor {visitor_id}", 404)
    return _dict(rows[0])


def _with_passages(store: SqlStore, v: dict[str, Any], now: float) -> dict[str, Any]:
    end = v["_to"] if v["_to"] is not None else max(now, v["_from"]) + 1.0
    passages = [
        {"t": rules.iso(e["t"]), "direction": e["direction"], "gateway": e["gateway"]}
        for e in store.gate_events(v["site"], v["_from"], end)
        if e["key"] == v["key"]
    ]
    last = passages[-1]["direction"] if passages else None
    out = {k: val for k, val in v.items() if not k.startswith("_")}
    out["passages"] = passages
    out["on_site"] = last == "in" and (v["_to"] is None or v["_to"] > now)
    out["checked_out"] = v["_to"] is not None and v["_to"] <= now
    return out


def get(store: SqlStore, visitor_id: int, *, now: float) -> dict[str, Any]:
    return _with_passages(store, _row(store, visitor_id), now)


def _day_bounds(day: dt.date) -> tuple[float, float]:
    t0 = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
    return t0, t0 + 86_400.0


def list_visitors(
    store: SqlStore, *, site: str, day: dt.date, now: float
) -> list[dict[str, Any]]:
    """Visitors whose visit overlaps the UTC day, with their passages."""
    opsstore.ensure_schema(store)
    t0, t1 = _day_bounds(day)
    rows = store._query(
        f"SELECT {_COLS} FROM ops_visitors WHERE site = ? AND valid_from < ? "  # noqa: S608 - constant SQL
        "AND (valid_to IS NULL OR valid_to > ?) ORDER BY valid_from, id",
        (site, t1, t0),
    )
    return [_with_passages(store, _dict(r), now) for r in rows]


def gate_log(store: SqlStore, *, site: str, day: dt.date, now: float) -> dict[str, Any]:
    """The day's passages (with names and hosts), the registered visitors with their
    passages, and who is on site at `now`."""
    if not _SITE.match(site):
        raise VisitorError("site: not a valid identifier")
    log = query.gatelog(store, site=site, day=day, now=now)
    log["registered_visitors"] = list_visitors(store, site=site, day=day, now=now)
    # Hourly entries/exits for the page's bar chart.
    t0, _t1 = _day_bounds(day)
    hours = [{"hour": h, "in": 0, "out": 0} for h in range(24)]
    for e in log["events"]:
        h = int((rules_t(e["t"]) - t0) // 3600)
        if 0 <= h < 24:
            hours[h]["in" if e["direction"] == "in" else "out"] += 1
    log["hourly"] = hours
    return log


def rules_t(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def headcount(store: SqlStore, *, site: str, now: float) -> dict[str, Any]:
    """Everyone whose last gate passage at `site` before `now` was in."""
    if not _SITE.match(site):
        raise VisitorError("site: not a valid identifier")
    today = dt.datetime.fromtimestamp(now, tz=dt.UTC).date()
    log = query.gatelog(store, site=site, day=today, now=now)
    return {
        "site": site,
        "now": rules.iso(now),
        "headcount": log["headcount"],
        "visitors": sum(1 for o in log["on_site"] if o["kind"] == "visitor"),
        "on_site": log["on_site"],
    }
