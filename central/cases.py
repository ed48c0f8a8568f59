"""Case management: open a case, trace and keep its contacts with a status each,
expand to F2, take notes, close, export (central-reference.md 4.3, Q3, Q4, Q11).

A case is a person or a device with an onset date (symptomatic) or a test date
(asymptomatic). Its window follows the window rule: from `days_before` days before
the reference date (onset if known, else the test's sample date; MoH and CDC use 2
days) until isolation (the end of the isolation day, or an exact time; still open:
until the time the case is traced). The rule parameters and the window rule are
snapshotted into the case (`params`), so the same answer can be reproduced later
whatever the configuration says then.

Contacts come from `central.contacts.contacts` (the rule, through the store's
indexes). Each keeps a status (to_contact, quarantined, tested_negative, positive)
across re-tracing: a contact that no longer meets the rule after a correction stays
listed with ``current = false`` rather than vanishing with its history.

The window arithmetic (`case_window`) and the export renderers are pure; the rest
reads and writes the ops tables (`central.opsstore`).
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import logging
from dataclasses import dataclass
from typing import Any, Final

from central import contacts as contacts_mod
from central import opsstore, rules
from central.rules import Rule, Seed
from central.store import SqlStore

_LOGGER = logging.getLogger(__name__)

STATUSES: Final = ("to_contact", "quarantined", "tested_negative", "positive")
SUBJECT_KINDS: Final = ("person", "device")
DAY_S: Final = 86_400.0
DEFAULT_DAYS_BEFORE: Final = 2.0
MAX_DAYS_BEFORE: Final = 21.0
# A case window longer than the raw-record retention cannot find anything more.
MAX_WINDOW_DAYS: Final = 60.0


class CaseError(Exception):
    """A request about a case that cannot be done (the API maps `status`)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Window:
    start: float
    end: float
    basis: str  # "onset" | "test"
    reference: dt.date


def _midnight(day: dt.date) -> float:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


def parse_when(text: str, name: str, *, end_of_day: bool = False) -> float:
    """ISO date or date-time (no zone: UTC) -> Unix seconds; a date alone is its
    midnight, or the next midnight with `end_of_day`."""
    value = text.strip()
    if len(value) == 10:
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            raise CaseError(f"{name}: not a date (YYYY-MM-DD): {text!r}") from None
        return _midnight(day) + (DAY_S if end_of_day else 0.0)
    try:
        stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CaseError(f"{name}: not an ISO date or time: {text!r}") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.timestamp()


def parse_day(text: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise CaseError(f"{name}: not a date (YYYY-MM-DD): {text!r}") from None


def case_window(
    *,
    onset: dt.date | None,
    test: dt.date | None,
    days_before: float,
    isolation: float | None,
    now: float,
) -> Window:
    """Pure: the window rule. Onset wins over test; ends at isolation or `now`."""
    if onset is None and test is None:
        raise CaseError("give an onset_date or a test_date")
    if not 0 <= days_before <= MAX_DAYS_BEFORE:
        raise CaseError(f"days_before must be between 0 and {MAX_DAYS_BEFORE:g}")
    basis, reference = ("onset", onset) if onset is not None else ("test", test)
    assert reference is not None
    start = _midnight(reference) - days_before * DAY_S
    end = isolation if isolation is not None else now
    if end <= start:
        raise CaseError("the isolation time must be after the window's start")
    if end - start > MAX_WINDOW_DAYS * DAY_S:
        raise CaseError(f"a case window is at most {MAX_WINDOW_DAYS:g} days")
    return Window(start, end, basis, reference)


def rule_from(base: Rule, overrides: dict[str, Any]) -> Rule:
    """`base` (central's configured rule) with per-case overrides, validated."""
    fields: dict[str, Any] = base.as_dict()
    for name in ("min_minutes", "window_h", "clock_error_s", "merge_gap_s"):
        if overrides.get(name) is not None:
            fields[name] = float(overrides[name])
    if overrides.get("near_bands") is not None:
        bands = overrides["near_bands"]
        if not bands or any(b not in rules.BANDS for b in bands):
            raise CaseError("near_bands: a non-empty list of immediate, near, far")
        fields["near_bands"] = tuple(bands)
    rule = Rule(
        float(fields["min_minutes"]),
        float(fields["window_h"]),
        tuple(fields["near_bands"]),
        float(fields["clock_error_s"]),
        int(fields["slots_per_day"]),
        float(fields["merge_gap_s"]),
        bool(fields.get("strongest_zone", True)),
        float(fields.get("handover_s", Rule().handover_s)),
    )
    if not (0 <= rule.min_minutes <= 1440 and 1 <= rule.window_h <= 24 * 14):
        raise CaseError("min_minutes must be 0..1440 and window_h 1..336")
    if not (0 <= rule.clock_error_s <= 3600 and 0 <= rule.merge_gap_s <= 86_400):
        raise CaseError("clock_error_s must be 0..3600 and merge_gap_s 0..86400")
    return rule


def _rule_of(params: dict[str, Any]) -> Rule:
    r = params["rule"]
    return Rule(
        float(r["min_minutes"]),
        float(r["window_h"]),
        tuple(r["near_bands"]),
        float(r["clock_error_s"]),
        int(r["slots_per_day"]),
        float(r["merge_gap_s"]),
        # Cases saved before these existed: today's defaults.
        bool(r.get("strongest_zone", True)),
        float(r.get("handover_s", Rule().handover_s)),
    )


def identity(contact: dict[str, Any]) -> str:
    """A contact's identity within a case (as `central.rules.identity`)."""
    if contact.get("person"):
        return "person:" + str(contact["person"])
    return "key:" + str(contact["key"])


# ------------------------------------------------------------------------ storage

_CASE_COLS: Final = (
    "id, subject_kind, subject, label, onset_date, test_date, isolation_date, "
    "window_from, window_to, depth, params, answer, computed_at, status, created, "
    "created_by, closed, closed_by, close_reason"
)
_CONTACT_COLS: Final = (
    "id, case_id, ident, level, key, keys, person, zone, first_t, last_t, minutes, "
    "class, via, status, status_at, status_by, current"
)


def _case_dict(r: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "id": int(r[0]),
        "subject_kind": r[1],
        "subject": r[2],
        "label": r[3],
        "onset_date": r[4],
        "test_date": r[5],
        "isolation": r[6],
        "from": rules.iso(float(r[7])),
        "to": rules.iso(float(r[8])),
        "depth": int(r[9]),
        "params": json.loads(r[10]),
        "_answer": json.loads(r[11]) if r[11] else None,
        "computed_at": rules.iso(float(r[12])) if r[12] is not None else None,
        "status": r[13],
        "created": rules.iso(float(r[14])),
        "created_by": r[15],
        "closed": rules.iso(float(r[16])) if r[16] is not None else None,
        "closed_by": r[17],
        "close_reason": r[18],
        "_window": (float(r[7]), float(r[8])),
    }


def _contact_dict(r: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "id": int(r[0]),
        "level": int(r[3]),
        "key": r[4],
        "keys": json.loads(r[5]),
        "person": r[6],
        "zone": r[7],
        "first": r[8],
        "last": r[9],
        "minutes": float(r[10]),
        "class": r[11],
        "via": json.loads(r[12]) if r[12] else [],
        "status": r[13],
        "status_at": rules.iso(float(r[14])) if r[14] is not None else None,
        "status_by": r[15],
        "current": bool(r[16]),
    }


def get_case_row(store: SqlStore, case_id: int) -> dict[str, Any]:
    opsstore.ensure_schema(store)
    rows = store._query(
        f"SELECT {_CASE_COLS} FROM ops_cases WHERE id = ?",  # noqa: S608 - constant SQL
        (case_id,),
    )
    if not rows:
        raise CaseError(f"no case {case_id}", 404)
    return _case_dict(rows[0])


def list_cases(
    store: SqlStore, *, status: str | None = None, subject: str | None = None
) -> list[dict[str, Any]]:
    opsstore.ensure_schema(store)
    where, params = [], []
    if status is not None:
        where.append("c.status = ?")
        params.append(status)
    if subject is not None:
        where.append("c.subject = ?")
        params.append(subject)
    sql = (
        "SELECT c.id, c.subject_kind, c.subject, c.label, c.status, c.created, "  # noqa: S608 - constant SQL, values bound
        "c.window_from, c.window_to, c.depth, "
        "(SELECT COUNT(*) FROM ops_case_contacts k WHERE k.case_id = c.id "
        "AND k.current = 1) FROM ops_cases c"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY c.id DESC"
    )
    return [
        {
            "id": int(r[0]),
            "subject_kind": r[1],
            "subject": r[2],
            "label": r[3],
            "status": r[4],
            "created": rules.iso(float(r[5])),
            "from": rules.iso(float(r[6])),
            "to": rules.iso(float(r[7])),
            "depth": int(r[8]),
            "contacts": int(r[9]),
        }
        for r in store._query(sql, params)
    ]


def open_case(
    store: SqlStore,
    *,
    base_rule: Rule,
    subject_kind: str,
    subject: str,
    now: float,
    actor: str,
    label: str | None = None,
    onset_date: str | None = None,
    test_date: str | None = None,
    isolation: str | None = None,
    days_before: float = DEFAULT_DAYS_BEFORE,
    depth: int = 1,
    rule_overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Open a case, trace it at once, and return it (with contacts)."""
    opsstore.ensure_schema(store)
    if subject_kind not in SUBJECT_KINDS:
        raise CaseError("subject_kind is person or device")
    subject = subject.strip()
    if subject_kind == "device":
        subject = subject.lower()
    if not subject:
        raise CaseError("subject is empty")
    if depth not in (1, 2):
        raise CaseError("depth is 1 or 2")
    onset = parse_day(onset_date, "onset_date") if onset_date else None
    test = parse_day(test_date, "test_date") if test_date else None
    iso_t = parse_when(isolation, "isolation", end_of_day=True) if isolation else None
    window = case_window(
        onset=onset, test=test, days_before=days_before, isolation=iso_t, now=now
    )
    rule = rule_from(base_rule, rule_overrides or {})
    params = {
        "window_rule": {
            "basis": window.basis,
            "reference_date": window.reference.isoformat(),
            "days_before": days_before,
            "until": "isolation" if iso_t is not None else "traced_at",
        },
        "rule": rule.as_dict(),
    }
    with store.transaction():
        case_id = store._insert_id(
            "INSERT INTO ops_cases (subject_kind, subject, label, onset_date, "
            "test_date, isolation_date, window_from, window_to, depth, params, "
            "status, created, created_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                subject_kind,
                subject,
                label,
                onset.isoformat() if onset else None,
                test.isoformat() if test else None,
                isolation,
                window.start,
                window.end,
                depth,
                json.dumps(params, sort_keys=True),
                "open",
                now,
                actor,
            ),
        )
    trace(store, case_id, now=now)
    return get_case(store, case_id)


def trace(
    store: SqlStore, case_id: int, *, now: float, depth: int | None = None
) -> int:
    """(Re)run the rule for the case with its snapshotted parameters; keep statuses.
    Returns the number of current contacts."""
    case = get_case_row(store, case_id)
    if case["status"] != "open":
        raise CaseError(f"case {case_id} is closed", 409)
    depth = depth or case["depth"]
    t0, t1 = case["_window"]
    seed = Seed(case["subject_kind"], case["subject"])
    answer = contacts_mod.contacts(
        store, seed, t0, t1, _rule_of(case["params"]), depth=depth
    )
    with store.transaction():
        store._execute(
            "UPDATE ops_case_contacts SET current = 0 WHERE case_id = ?", (case_id,)
        )
        for c in answer["contacts"]:
            store._execute(
                "INSERT INTO ops_case_contacts (case_id, ident, level, key, keys, "
                "person, zone, first_t, last_t, minutes, class, via, status, current) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,1) ON CONFLICT (case_id, ident) DO "
                "UPDATE SET level = excluded.level, key = excluded.key, keys = "
                "excluded.keys, person = excluded.person, zone = excluded.zone, "
                "first_t = excluded.first_t, last_t = excluded.last_t, minutes = "
                "excluded.minutes, class = excluded.class, via = excluded.via, "
                "current = 1",
                (
                    case_id,
                    identity(c),
                    c["level"],
                    c["key"],
                    json.dumps(c["keys"]),
                    c["person"],
                    c["zone"],
                    c["first"],
                    c["last"],
                    c["minutes"],
                    c["class"],
                    json.dumps(c.get("via", [])),
                    "to_contact",
                ),
            )
        store._execute(
            "UPDATE ops_cases SET answer = ?, computed_at = ?, depth = ? WHERE id = ?",
            (json.dumps(answer, sort_keys=True), now, depth, case_id),
        )
    from central import locations

    locations.derive(store, case_id, answer, now=now)
    return len(answer["contacts"])


def get_case(store: SqlStore, case_id: int) -> dict[str, Any]:
    """The case with its exposures, contacts (with names), notes and locations."""
    case = get_case_row(store, case_id)
    answer = case.pop("_answer") or {}
    t0, t1 = case.pop("_window")
    contacts = [
        _contact_dict(r)
        for r in store._query(
            f"SELECT {_CONTACT_COLS} FROM ops_case_contacts WHERE case_id = ? "  # noqa: S608 - constant SQL
            "ORDER BY current DESC, level, minutes DESC, id",
            (case_id,),
        )
    ]
    people: dict[str, dict[str, Any] | None] = {}
    for c in contacts:
        p = c["person"]
        if p and p not in people:
            people[p] = store.person(p)
        info = people.get(p) if p else None
        c["name"] = info.get("name") if info else None
        c["employer"] = info.get("employer") if info else None
        c["phone"] = info.get("phone") if info else None
        c["person_kind"] = info.get("kind") if info else None
    subject_name = None
    if case["subject_kind"] == "person":
        info = store.person(case["subject"])
        subject_name = info.get("name") if info else None
    from central import locations

    exposures = answer.get("exposures", [])
    gateways = {e["gateway"] for e in exposures}
    warnings = [
        {
            "gateway": g["gateway"],
            "message": f"sequence gap of {g['missing']} records (boot {g['boot']}): "
            "missing data is not the same as no contact",
        }
        for g in store.sequence_gaps()
        if g["gateway"] in gateways
    ]
    return {
        **case,
        "subject_name": subject_name,
        "exposures": exposures,
        "contacts": contacts,
        "notes": list_notes(store, case_id),
        "locations": locations.for_case(store, case_id),
        "warnings": warnings,
        "window_s": t1 - t0,
    }


def set_status(
    store: SqlStore,
    case_id: int,
    contact_id: int,
    status: str,
    *,
    now: float,
    actor: str,
    note: str | None = None,
) -> dict[str, Any]:
    if status not in STATUSES:
        raise CaseError(f"status must be one of {', '.join(STATUSES)}")
    case = get_case_row(store, case_id)
    if case["status"] != "open":
        raise CaseError(f"case {case_id} is closed", 409)
    with store.transaction():
        n = store._execute(
            "UPDATE ops_case_contacts SET status = ?, status_at = ?, status_by = ? "
            "WHERE id = ? AND case_id = ?",
            (status, now, actor, contact_id, case_id),
        )
        if n == 0:
            raise CaseError(f"case {case_id} has no contact {contact_id}", 404)
        store._execute(
            "INSERT INTO ops_case_notes (case_id, t, author, contact_id, text) "
            "VALUES (?,?,?,?,?)",
            (
                case_id,
                now,
                actor,
                contact_id,
                f"status -> {status}" + (f": {note}" if note else ""),
            ),
        )
    rows = store._query(
        f"SELECT {_CONTACT_COLS} FROM ops_case_contacts WHERE id = ?",  # noqa: S608 - constant SQL
        (contact_id,),
    )
    return _contact_dict(rows[0])


def add_note(
    store: SqlStore, case_id: int, text: str, *, now: float, actor: str
) -> dict[str, Any]:
    get_case_row(store, case_id)
    text = text.strip()
    if not text:
        raise CaseError("a note needs text")
    with store.transaction():
        note_id = store._insert_id(
            "INSERT INTO ops_case_notes (case_id, t, author, text) VALUES (?,?,?,?)",
            (case_id, now, actor, text[:4000]),
        )
    return {"id": note_id, "t": rules.iso(now), "author": actor, "text": text[:4000]}


def list_notes(store: SqlStore, case_id: int) -> list[dict[str, Any]]:
    return [
        {
            "id": int(r[0]),
            "t": rules.iso(float(r[1])),
            "author": r[2],
            "contact_id": r[3],
            "text": r[4],
        }
        for r in store._query(
            "SELECT id, t, author, contact_id, text FROM ops_case_notes "
            "WHERE case_id = ? ORDER BY t, id",
            (case_id,),
        )
    ]


def close_case(
    store: SqlStore, case_id: int, *, now: float, actor: str, reason: str | None
) -> dict[str, Any]:
    case = get_case_row(store, case_id)
    if case["status"] != "open":
        raise CaseError(f"case {case_id} is already closed", 409)
    with store.transaction():
        store._execute(
            "UPDATE ops_cases SET status = 'closed', closed = ?, closed_by = ?, "
            "close_reason = ? WHERE id = ?",
            (now, actor, reason, case_id),
        )
    return get_case(store, case_id)


def network(case: dict[str, Any]) -> dict[str, Any]:
    """Pure: the contact network of a case as nodes and edges (case -> F1 -> F2).

    An F2 edge starts at every F1 it came through (`via` names the F1 by person,
    else by key)."""
    root = "case"
    nodes: list[dict[str, Any]] = [
        {
            "id": root,
            "level": 0,
            "label": case.get("subject_name") or case["subject"],
            "status": "positive",
        }
    ]
    edges: list[dict[str, Any]] = []
    by_ref: dict[str, str] = {}
    current = [c for c in case["contacts"] if c["current"]]
    for c in current:
        node_id = f"c{c['id']}"
        nodes.append(
            {
                "id": node_id,
                "level": c["level"],
                "label": c.get("name") or c["person"] or c["key"],
                "status": c["status"],
                "zone": c["zone"],
                "minutes": c["minutes"],
            }
        )
        if c["level"] == 1:
            by_ref[c["person"] or c["key"]] = node_id
            by_ref[c["key"]] = node_id
            edges.append({"from": root, "to": node_id, "minutes": c["minutes"]})
    for c in current:
        if c["level"] != 2:
            continue
        sources = [by_ref[v] for v in c["via"] if v in by_ref] or [root]
        edges.extend(
            {"from": s, "to": f"c{c['id']}", "minutes": c["minutes"]}
            for s in dict.fromkeys(sources)
        )
    return {"case_id": case["id"], "nodes": nodes, "edges": edges}


# ------------------------------------------------------------------------ exports

EXPORT_COLUMNS: Final = (
    "case_id",
    "level",
    "class",
    "status",
    "person",
    "name",
    "employer",
    "phone",
    "key",
    "zone",
    "first",
    "last",
    "minutes",
    "via",
    "current",
)


def export_csv(case: dict[str, Any]) -> str:
    """Pure: one row per contact (Q11), header first."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for c in case["contacts"]:
        row = []
        for col in EXPORT_COLUMNS:
            value = case["id"] if col == "case_id" else c.get(col)
            if isinstance(value, list):
                value = " ".join(str(v) for v in value)
            if isinstance(value, bool):
                value = "yes" if value else "no"
            text = "" if value is None else str(value)
            # A cell starting with = + - @ is a formula in a spreadsheet (CSV injection).
            if text[:1] in ("=", "+", "-", "@") and col not in ("minutes", "level"):
                text = "'" + text
            row.append(text)
        writer.writerow(row)
    return buf.getvalue()


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _when(iso: str | None) -> str:
    """'2026-03-02T07:00:00.074Z' -> '2026-03-02 07:00' (UTC; the page says so)."""
    return "" if not iso else html.escape(iso[:10] + " " + iso[11:16])


def export_html(case: dict[str, Any]) -> str:
    """Pure: a printable page of the case (A4, no script, no external resource)."""
    rule = case["params"]["rule"]
    wr = case["params"]["window_rule"]
    contacts = [c for c in case["contacts"] if c["current"]]
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Case {case['id']}</title><style>",
        "body{font:11pt/1.35 system-ui,sans-serif;margin:1.5cm;color:#000}",
        "h1{font-size:16pt;margin:0 0 .3em}h2{font-size:12.5pt;margin:1.2em 0 .3em}",
        "table{border-collapse:collapse;width:100%}th,td{border:1px solid #999;",
        "padding:2px 5px;text-align:left;vertical-align:top;font-size:9.5pt}",
        "th{background:#eee}.meta td{border:none;padding:1px 8px 1px 0}",
        "@page{size:A4;margin:1.2cm}@media print{body{margin:0}}",
        "tr{page-break-inside:avoid}</style></head><body>",
        f"<h1>Case {case['id']}: {_esc(case['subject_name'] or case['subject'])}</h1>",
        "<table class='meta'>",
        f"<tr><td>Subject</td><td>{_esc(case['subject_kind'])} {_esc(case['subject'])}</td></tr>",
        f"<tr><td>Label</td><td>{_esc(case['label'])}</td></tr>",
        f"<tr><td>Status</td><td>{_esc(case['status'])}</td></tr>",
        f"<tr><td>Window</td><td>{_when(case['from'])} to {_when(case['to'])} "
        f"({_esc(wr['days_before'])} days before {_esc(wr['basis'])} date "
        f"{_esc(wr['reference_date'])}, until {_esc(wr['until'])})</td></tr>",
        f"<tr><td>Rule</td><td>F1: {_esc(rule['min_minutes'])} min cumulative in "
        f"{_esc(rule['window_h'])} h; open zones need bands "
        f"{_esc(', '.join(rule['near_bands']))}; depth {_esc(case['depth'])}</td></tr>",
        f"<tr><td>Traced</td><td>{_when(case['computed_at'])} (all times UTC)</td></tr>",
        "</table>",
    ]
    for w in case.get("warnings", []):
        out.append(  # noqa: PERF401 - readability
            f"<p><b>Warning</b> {_esc(w['gateway'])}: {_esc(w['message'])}</p>"
        )
    out.append(f"<h2>Places and times ({len(case['exposures'])})</h2>")
    out.append("<table><tr><th>Zone</th><th>Gateway</th><th>From</th><th>To</th></tr>")
    for e in case["exposures"]:
        out.append(  # noqa: PERF401 - readability
            f"<tr><td>{_esc(e['zone'])}</td><td>{_esc(e['gateway'])}</td>"
            f"<td>{_when(e['from'])}</td><td>{_when(e['to'])}</td></tr>"
        )
    out.append("</table>")
    out.append(f"<h2>Contacts ({len(contacts)})</h2>")
    out.append(
        "<table><tr><th>Level</th><th>Name / person</th><th>Employer</th>"
        "<th>Phone</th><th>Zone</th><th>First</th><th>Last</th><th>Min</th>"
        "<th>Class</th><th>Status</th><th>Via</th></tr>"
    )
    for c in contacts:
        who = c["name"] or c["person"] or c["key"]
        sub = (
            f"<br><small>{_esc(c['person'])}</small>"
            if c["person"] and c["name"]
            else ""
        )
        out.append(
            f"<tr><td>F{c['level']}</td><td>{_esc(who)}{sub}</td>"
            f"<td>{_esc(c['employer'])}</td><td>{_esc(c['phone'])}</td>"
            f"<td>{_esc(c['zone'])}</td><td>{_when(c['first'])}</td>"
            f"<td>{_when(c['last'])}</td><td>{c['minutes']:.0f}</td>"
            f"<td>{_esc(c['class'])}</td><td>{_esc(c['status'])}</td>"
            f"<td>{_esc(' '.join(c['via']))}</td></tr>"
        )
    out.append("</table>")
    if case["notes"]:
        out.append(
            "<h2>Notes</h2><table><tr><th>Time</th><th>By</th><th>Note</th></tr>"
        )
        for n in case["notes"]:
            out.append(  # noqa: PERF401 - readability
                f"<tr><td>{_when(n['t'])}</td><td>{_esc(n['author'])}</td>"
                f"<td>{_esc(n['text'])}</td></tr>"
            )
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)
