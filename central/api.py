"""Shell: the HTTP API under /api/v1/ and the ops web page at / (design.md).

Plain `http.server.ThreadingHTTPServer`: the load is a handful of ops staff, and
nothing here needs more than the standard library. Every route is declared once in
`ROUTES` with its role, its query parameters and its JSON body schema; the same
declarations validate requests here and generate the OpenAPI document
(`central.openapi`), so the two cannot drift apart.

Rules the handler keeps:
- Authentication: ``Authorization: Bearer <token>`` (`central.auth`); ``ops`` may
  query and work cases, ``admin`` may also read the audit log and manage tokens and
  reference data. 401 without a valid token, 403 with the wrong role.
- Every authenticated request is written to the audit log with its parameters
  pseudonymised (`central.audit`), its row count and status. Nothing in the API
  can change or delete an audit entry.
- Bad input is a 4xx with ``{"error": "..."}`` naming the parameter; an unexpected
  failure is a 500 with a generic message. Nothing a client sends can make it raise
  past the handler.
- Server logs carry the method, the route *template*, the status and the duration:
  never a path with an identifier in it, never a parameter.

Each request borrows a store connection from a small pool (SQLite: one connection
per thread at a time; PostgreSQL: one session each).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from central import audit, auth, cases, fleet, locations, opsstore, query, visitors
from central import contacts as contacts_mod
from central.config import CentralConfig
from central.rules import Rule, Seed
from central.store import SqlStore, StoreError, open_store
from gateway.errors import BlueGateError

_LOGGER = logging.getLogger(__name__)

PREFIX: Final = "/api/v1"
MAX_BODY_BYTES: Final = 1 << 20
DRAIN_MAX_BYTES: Final = 8 << 20
# The longest window a query may ask for: raw records live 21 days by default.
MAX_QUERY_DAYS: Final = 62.0
MAX_BUCKETS: Final = 5000
WEB_DIR: Final = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web")
STATIC: Final = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
# The page loads only its own script and style, and talks only to this server.
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; frame-src blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

# ------------------------------------------------------------------ declarations

NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
KEY_PATTERN: Final = r"^[a-z][a-z0-9-]{0,23}:[A-Za-z0-9:._-]{1,200}$"
TEXT_PATTERN: Final = r"^[^\x00-\x1f\x7f]*$"
NOTE_PATTERN: Final = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
HEX64_PATTERN: Final = r"^[0-9a-fA-F]{64}$"
MAX_ID: Final = 2**53 - 1


@dataclass(frozen=True, slots=True)
class Param:
    """One query or path parameter: its JSON-schema and how to parse it."""

    name: str
    schema: Mapping[str, Any]
    required: bool = False
    description: str = ""
    where: str = "query"


def p_name(name: str, desc: str, *, required: bool = False) -> Param:
    return Param(name, {"type": "string", "pattern": NAME_PATTERN}, required, desc)


def p_key(name: str, desc: str, *, required: bool = False) -> Param:
    return Param(
        name,
        {"type": "string", "pattern": KEY_PATTERN, "maxLength": 230},
        required,
        desc,
    )


def p_time(name: str, desc: str, *, required: bool = True) -> Param:
    return Param(name, {"type": "string", "format": "date-time"}, required, desc)


def p_date(name: str, desc: str, *, required: bool = True) -> Param:
    return Param(name, {"type": "string", "format": "date"}, required, desc)


def p_num(name: str, desc: str, lo: float, hi: float) -> Param:
    return Param(name, {"type": "number", "minimum": lo, "maximum": hi}, False, desc)


def p_int(name: str, desc: str, lo: int, hi: int, *, where: str = "query") -> Param:
    return Param(
        name,
        {"type": "integer", "minimum": lo, "maximum": hi},
        where == "path",
        desc,
        where,
    )


def p_enum(
    name: str, desc: str, values: tuple[str, ...], *, where: str = "query"
) -> Param:
    return Param(
        name, {"type": "string", "enum": list(values)}, where == "path", desc, where
    )


def p_id(name: str, desc: str) -> Param:
    return p_int(name, desc, 1, MAX_ID, where="path")


WINDOW: Final = (
    p_time("from", "window start (ISO 8601; no zone means UTC)"),
    p_time("to", "window end, after `from`; at most 62 days later"),
)
RULE_PARAMS: Final = (
    p_num(
        "min_minutes", "F1 threshold: cumulative minutes in the worst window", 0, 1440
    ),
    p_num("window_h", "hours of the rolling window for the cumulative minutes", 1, 336),
)


def obj(props: Mapping[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "object",
        "properties": dict(props),
        "additionalProperties": False,
    }
    if required:
        out["required"] = list(required)
    return out


def s_text(
    max_len: int, *, nullable: bool = False, pattern: str = TEXT_PATTERN
) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", "maxLength": max_len, "pattern": pattern}
    if nullable:
        out["nullable"] = True
    return out


S_NAME: Final = {"type": "string", "pattern": NAME_PATTERN}
S_KEY: Final = {"type": "string", "pattern": KEY_PATTERN, "maxLength": 230}
S_DATE: Final = {"type": "string", "format": "date"}
S_TIME: Final = {"type": "string", "format": "date-time"}
S_RULE: Final = obj(
    {
        "min_minutes": {"type": "number", "minimum": 0, "maximum": 1440},
        "window_h": {"type": "number", "minimum": 1, "maximum": 336},
        "near_bands": {
            "type": "array",
            "items": {"type": "string", "enum": ["immediate", "near", "far"]},
            "minItems": 1,
            "maxItems": 3,
            "uniqueItems": True,
        },
        "clock_error_s": {"type": "number", "minimum": 0, "maximum": 3600},
        "merge_gap_s": {"type": "number", "minimum": 0, "maximum": 86400},
    }
)
BODY_CASE: Final = obj(
    {
        "subject_kind": {"type": "string", "enum": list(cases.SUBJECT_KINDS)},
        "subject": {
            "type": "string",
            "minLength": 1,
            "maxLength": 230,
            "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$",
        },
        "label": s_text(200, nullable=True),
        "onset_date": {**S_DATE, "nullable": True},
        "test_date": {**S_DATE, "nullable": True},
        "isolation": {
            "type": "string",
            "maxLength": 40,
            "nullable": True,
            "description": "date or date-time",
        },
        "days_before": {"type": "number", "minimum": 0, "maximum": 21},
        "depth": {"type": "integer", "minimum": 1, "maximum": 2},
        "rule": S_RULE,
    },
    ("subject_kind", "subject"),
)
BODY_BLUEZONE: Final = obj(
    {
        "daily_key": {
            "type": "string",
            "pattern": HEX64_PATTERN,
            "description": "the case's disclosed Bluezone daily key; never stored or logged",
        },
        "key_date": S_DATE,
        "from": S_TIME,
        "to": S_TIME,
        "depth": {"type": "integer", "minimum": 1, "maximum": 2},
        "rule": S_RULE,
    },
    ("daily_key", "key_date", "from", "to"),
)
BODY_STATUS: Final = obj(
    {
        "status": {"type": "string", "enum": list(cases.STATUSES)},
        "note": s_text(2000, nullable=True, pattern=NOTE_PATTERN),
    },
    ("status",),
)
BODY_NOTE: Final = obj(
    {"text": {**s_text(4000, pattern=NOTE_PATTERN), "minLength": 1}}, ("text",)
)
BODY_CLOSE: Final = obj({"reason": s_text(500, nullable=True, pattern=NOTE_PATTERN)})
BODY_TRACE: Final = obj({"depth": {"type": "integer", "minimum": 1, "maximum": 2}})
BODY_LOCATION: Final = obj(
    {"state": {"type": "string", "enum": ["published", "withdrawn"]}}, ("state",)
)
BODY_VISITOR: Final = obj(
    {
        "site": S_NAME,
        "name": {**s_text(200), "minLength": 1},
        "company": s_text(200, nullable=True),
        "host": s_text(200, nullable=True),
        "phone": {
            "type": "string",
            "pattern": r"^[0-9+() .-]{0,40}$",
            "nullable": True,
        },
        "key": S_KEY,
        "from": {**S_TIME, "nullable": True},
        "to": {**S_TIME, "nullable": True},
    },
    ("site", "name", "key"),
)
BODY_TOKEN: Final = obj(
    {
        "role": {"type": "string", "enum": list(auth.ROLES)},
        "label": s_text(100, nullable=True),
    },
    ("role",),
)
_REF_ROW: Final = {
    "type": "object",
    "additionalProperties": {
        "nullable": True,
        "oneOf": [
            {"type": "string", "maxLength": 300, "pattern": TEXT_PATTERN},
            {"type": "number"},
            {"type": "boolean"},
            {
                "type": "array",
                "maxItems": 100,
                "items": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "string",
                        "maxLength": 300,
                        "pattern": TEXT_PATTERN,
                    },
                },
            },
        ],
    },
}
BODY_REFDATA: Final = obj(
    {
        t: {"type": "array", "maxItems": 10000, "items": _REF_ROW}
        for t in ("sites", "zones", "gateways", "people", "tags")
    }
)
REF_TABLES: Final = (
    "sites",
    "zones",
    "gateways",
    "gateway_zones",
    "people",
    "tag_assignments",
)


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class Request:
    method: str
    template: str
    path: dict[str, Any]
    args: dict[str, Any]
    body: dict[str, Any]
    principal: auth.Principal
    store: SqlStore
    now: float
    config: CentralConfig


@dataclass(slots=True)
class Response:
    body: Any
    rows: int = 0
    status: int = 200
    content_type: str = "application/json"
    filename: str | None = None


Handler = Callable[[Request], Response]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    template: str
    handler: Handler
    role: str
    summary: str
    params: tuple[Param, ...] = ()
    body: Mapping[str, Any] | None = None
    produces: str = "application/json"
    tag: str = "queries"
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template)
        object.__setattr__(self, "regex", re.compile("^" + pattern + "$"))


# ---------------------------------------------------------------------- parsing


def parse_time(text: str, name: str) -> float:
    """RFC 3339 / ISO 8601 date-time or date -> Unix seconds (no zone: UTC)."""
    value = text.strip().upper()
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            stamp = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        else:
            stamp = dt.datetime.fromisoformat(value)
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=dt.UTC)
        t = stamp.timestamp()
    except (ValueError, OverflowError):
        raise ApiError(
            400, f"{name}: not an ISO 8601 date-time: {text[:40]!r}"
        ) from None
    return t


def parse_date(text: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ApiError(400, f"{name}: not a date (YYYY-MM-DD): {text[:40]!r}") from None


def check_value(value: Any, schema: Mapping[str, Any], name: str) -> Any:
    """Validate `value` against the small JSON-schema subset the routes use."""
    if value is None:
        if schema.get("nullable"):
            return None
        raise ApiError(400, f"{name}: must not be null")
    if "oneOf" in schema:
        for option in schema["oneOf"]:
            try:
                return check_value(value, option, name)
            except ApiError:
                continue
        raise ApiError(400, f"{name}: not an accepted value")
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            raise ApiError(400, f"{name}: must be an object")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for req in schema.get("required", ()):
            if req not in value:
                raise ApiError(400, f"{name}.{req}: is required")
        out = {}
        for k, v in value.items():
            if k in props:
                out[k] = check_value(v, props[k], f"{name}.{k}")
            elif extra is False:
                raise ApiError(400, f"{name}.{k}: unknown field")
            elif isinstance(extra, Mapping):
                out[k] = check_value(v, extra, f"{name}.{k}")
            else:
                out[k] = v
        return out
    if kind == "array":
        if not isinstance(value, list):
            raise ApiError(400, f"{name}: must be a list")
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get(
            "maxItems", 10**9
        ):
            raise ApiError(400, f"{name}: wrong number of items")
        items = [
            check_value(v, schema.get("items", {}), f"{name}[{i}]")
            for i, v in enumerate(value)
        ]
        if schema.get("uniqueItems") and len({json.dumps(i) for i in items}) != len(
            items
        ):
            raise ApiError(400, f"{name}: items must be unique")
        return items
    if kind == "string":
        if not isinstance(value, str):
            raise ApiError(400, f"{name}: must be a string")
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get(
            "maxLength", 10**6
        ):
            raise ApiError(400, f"{name}: wrong length")
        if "enum" in schema and value not in schema["enum"]:
            raise ApiError(400, f"{name}: must be one of {', '.join(schema['enum'])}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise ApiError(
                400, f"{name}: has characters or a shape that is not allowed"
            )
        if schema.get("format") == "date":
            parse_date(value, name)
        elif schema.get("format") == "date-time":
            parse_time(value, name)
        return value
    if kind in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ApiError(400, f"{name}: must be a number")
        if kind == "integer" and not (
            isinstance(value, int) or float(value).is_integer()
        ):
            raise ApiError(400, f"{name}: must be a whole number")
        if isinstance(value, float) and not math.isfinite(value):
            raise ApiError(400, f"{name}: must be finite")
        if value < schema.get("minimum", -math.inf) or value > schema.get(
            "maximum", math.inf
        ):
            raise ApiError(400, f"{name}: out of range")
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ApiError(400, f"{name}: must be true or false")
        return value
    return value


def parse_param(text: str, param: Param) -> Any:
    schema = param.schema
    kind = schema.get("type")
    if kind in ("integer", "number"):
        try:
            number: float = int(text) if kind == "integer" else float(text)
        except ValueError:
            raise ApiError(400, f"{param.name}: must be a {kind}") from None
        return check_value(number, schema, param.name)
    return check_value(text, schema, param.name)


def window(req: Request, *, max_days: float = MAX_QUERY_DAYS) -> tuple[float, float]:
    t0 = parse_time(req.args["from"], "from")
    t1 = parse_time(req.args["to"], "to")
    if t1 <= t0:
        raise ApiError(400, "to: must be after from")
    if t1 - t0 > max_days * 86_400:
        raise ApiError(400, f"the window is at most {max_days:g} days")
    return t0, t1


def base_rule(config: CentralConfig) -> Rule:
    r = config.rules
    return Rule(
        r.min_minutes,
        r.window_h,
        tuple(r.near_bands),
        r.clock_error_s,
        r.slots_per_day,
        r.merge_gap_s,
    )


def one_of(req: Request, *names: str) -> tuple[str, str]:
    given = [(n, req.args[n]) for n in names if req.args.get(n) is not None]
    if len(given) != 1:
        raise ApiError(400, f"give exactly one of {', '.join(names)}")
    return given[0]


# --------------------------------------------------------------------- handlers


def h_me(req: Request) -> Response:
    p = req.principal
    return Response({"token_id": p.token_id, "role": p.role, "label": p.label}, 1)


def _rule_for(req: Request, overrides: Mapping[str, Any]) -> Rule:
    try:
        return cases.rule_from(base_rule(req.config), dict(overrides))
    except cases.CaseError as exc:
        raise ApiError(exc.status, str(exc)) from None


def _contacts_reply(req: Request, answer: dict[str, Any], fmt: str) -> Response:
    rows = len(answer["contacts"])
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerows(contacts_mod.csv_rows(answer))
        return Response(
            buf.getvalue(), rows, content_type="text/csv", filename="contacts.csv"
        )
    return Response(answer, rows)


def h_contacts(req: Request) -> Response:
    kind, value = one_of(req, "device", "person")
    t0, t1 = window(req)
    rule = _rule_for(req, {k: req.args.get(k) for k in ("min_minutes", "window_h")})
    seed = Seed(kind, value.lower() if kind == "device" else value)
    answer = contacts_mod.contacts(
        req.store, seed, t0, t1, rule, depth=int(req.args.get("depth") or 1)
    )
    return _contacts_reply(req, answer, req.args.get("format") or "json")


def h_contacts_bluezone(req: Request) -> Response:
    b = req.body
    t0 = parse_time(b["from"], "from")
    t1 = parse_time(b["to"], "to")
    if t1 <= t0 or t1 - t0 > MAX_QUERY_DAYS * 86_400:
        raise ApiError(400, "to: must be after from, at most 62 days")
    rule = _rule_for(req, b.get("rule") or {})
    key_date = parse_date(b["key_date"], "key_date")
    if key_date > dt.datetime.fromtimestamp(t1, tz=dt.UTC).date():
        raise ApiError(400, "key_date: after the window")
    try:
        seed = contacts_mod.bluezone_seed(b["daily_key"], key_date, t0, t1, rule)
    except ValueError as exc:
        raise ApiError(400, f"daily_key: {exc}") from None
    answer = contacts_mod.contacts(
        req.store, seed, t0, t1, rule, depth=int(b.get("depth") or 1)
    )
    return Response(answer, len(answer["contacts"]))


def h_roster(req: Request) -> Response:
    kind, value = one_of(req, "zone", "gateway")
    t0, t1 = window(req)
    if kind == "zone":
        out = query.roster(req.store, t0=t0, t1=t1, zone=value)
    else:
        out = query.roster(req.store, t0=t0, t1=t1, gateway=value)
    return Response(out, out["count"])


def h_timeline(req: Request) -> Response:
    kind, value = one_of(req, "device", "person")
    t0, t1 = window(req)
    if kind == "device":
        out = query.timeline(req.store, t0=t0, t1=t1, device=value.lower())
    else:
        out = query.timeline(req.store, t0=t0, t1=t1, person=value)
    return Response(out, len(out["entries"]))


def h_gatelog(req: Request) -> Response:
    day = parse_date(req.args["day"], "day")
    at = parse_time(req.args["now"], "now") if req.args.get("now") else req.now
    out = visitors.gate_log(req.store, site=req.args["site"], day=day, now=at)
    return Response(out, len(out["events"]))


def h_headcount(req: Request) -> Response:
    out = visitors.headcount(req.store, site=req.args["site"], now=req.now)
    return Response(out, len(out["on_site"]))


def h_occupancy(req: Request) -> Response:
    t0, t1 = window(req, max_days=31)
    bucket_s = float(req.args.get("bucket_min") or 15.0) * 60.0
    if (t1 - t0) / bucket_s > MAX_BUCKETS:
        raise ApiError(
            400, f"bucket_min: too small for the window (at most {MAX_BUCKETS} buckets)"
        )
    out = query.occupancy(
        req.store, zone=req.args["zone"], t0=t0, t1=t1, bucket_s=bucket_s
    )
    return Response(out, len(out["buckets"]))


def h_stats(req: Request) -> Response:
    return Response(req.store.stats(), 1)


def h_zones(req: Request) -> Response:
    zones: dict[str, dict[str, Any]] = {}
    for z in req.store.list_table("zones"):
        zones[z["zone"]] = {
            "zone": z["zone"],
            "site": z["site"],
            "kind": z["kind"],
            "name": z["name"],
            "gateways": [],
        }
    for z in req.store.zones_seen():
        entry = zones.setdefault(
            z["zone"],
            {
                "zone": z["zone"],
                "site": z["site"],
                "kind": z["zone_kind"],
                "name": None,
                "gateways": [],
            },
        )
        if z["gateway"] not in entry["gateways"]:
            entry["gateways"].append(z["gateway"])
    sites = sorted(
        {str(z["site"]) for z in zones.values() if z["site"]}
        | {s["site"] for s in req.store.list_table("sites")}
    )
    items = sorted(zones.values(), key=lambda z: z["zone"])
    return Response({"zones": items, "sites": sites}, len(items))


def h_fleet(req: Request) -> Response:
    silent = float(req.args.get("silent_after_s") or fleet.DEFAULT_SILENT_AFTER_S)
    out = fleet.fleet(req.store, now=req.now, silent_after_s=silent)
    return Response(out, len(out["gateways"]) + len(out["beacons"]))


def _case_call(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except (cases.CaseError, locations.LocationError, visitors.VisitorError) as exc:
        raise ApiError(exc.status, str(exc)) from None


def h_cases_list(req: Request) -> Response:
    subject = req.args.get("subject")
    if subject is not None and ":" in subject:
        subject = subject.lower()  # device keys are stored lower-case
    out = cases.list_cases(req.store, status=req.args.get("status"), subject=subject)
    return Response({"cases": out}, len(out))


def h_case_open(req: Request) -> Response:
    b = req.body
    case = _case_call(
        lambda: cases.open_case(
            req.store,
            base_rule=base_rule(req.config),
            subject_kind=b["subject_kind"],
            subject=b["subject"],
            now=req.now,
            actor=req.principal.actor,
            label=b.get("label"),
            onset_date=b.get("onset_date"),
            test_date=b.get("test_date"),
            isolation=b.get("isolation"),
            days_before=float(b["days_before"])
            if b.get("days_before") is not None
            else cases.DEFAULT_DAYS_BEFORE,
            depth=int(b.get("depth") or 1),
            rule_overrides=b.get("rule") or {},
        )
    )
    return Response(case, len(case["contacts"]), status=201)


def h_case_get(req: Request) -> Response:
    case = _case_call(lambda: cases.get_case(req.store, req.path["case_id"]))
    return Response(case, len(case["contacts"]))


def h_case_trace(req: Request) -> Response:
    case_id = req.path["case_id"]
    _case_call(
        lambda: cases.trace(
            req.store, case_id, now=req.now, depth=req.body.get("depth")
        )
    )
    case = cases.get_case(req.store, case_id)
    return Response(case, len(case["contacts"]))


def h_case_expand(req: Request) -> Response:
    case_id = req.path["case_id"]
    _case_call(lambda: cases.trace(req.store, case_id, now=req.now, depth=2))
    case = cases.get_case(req.store, case_id)
    return Response(case, len(case["contacts"]))


def h_case_status(req: Request) -> Response:
    out = _case_call(
        lambda: cases.set_status(
            req.store,
            req.path["case_id"],
            req.path["contact_id"],
            req.body["status"],
            now=req.now,
            actor=req.principal.actor,
            note=req.body.get("note"),
        )
    )
    return Response(out, 1)


def h_case_note(req: Request) -> Response:
    out = _case_call(
        lambda: cases.add_note(
            req.store,
            req.path["case_id"],
            req.body["text"],
            now=req.now,
            actor=req.principal.actor,
        )
    )
    return Response(out, 1, status=201)


def h_case_close(req: Request) -> Response:
    out = _case_call(
        lambda: cases.close_case(
            req.store,
            req.path["case_id"],
            now=req.now,
            actor=req.principal.actor,
            reason=req.body.get("reason"),
        )
    )
    return Response(out, len(out["contacts"]))


def h_case_csv(req: Request) -> Response:
    case = _case_call(lambda: cases.get_case(req.store, req.path["case_id"]))
    return Response(
        cases.export_csv(case),
        len(case["contacts"]),
        content_type="text/csv",
        filename=f"case-{case['id']}.csv",
    )


def h_case_print(req: Request) -> Response:
    case = _case_call(lambda: cases.get_case(req.store, req.path["case_id"]))
    return Response(
        cases.export_html(case), len(case["contacts"]), content_type="text/html"
    )


def h_case_network(req: Request) -> Response:
    case = _case_call(lambda: cases.get_case(req.store, req.path["case_id"]))
    out = cases.network(case)
    return Response(out, len(out["nodes"]) - 1)


def h_location_state(req: Request) -> Response:
    out = _case_call(
        lambda: locations.set_state(
            req.store,
            req.path["case_id"],
            req.path["location_id"],
            req.body["state"],
            now=req.now,
            actor=req.principal.actor,
        )
    )
    return Response(out, 1)


def h_locations(req: Request) -> Response:
    items = locations.published(req.store, site=req.args.get("site"))
    if (req.args.get("format") or "json") == "csv":
        return Response(
            locations.published_csv(items),
            len(items),
            content_type="text/csv",
            filename="locations.csv",
        )
    return Response({"locations": items}, len(items))


def h_visitors(req: Request) -> Response:
    day = parse_date(req.args["day"], "day")
    out = _case_call(
        lambda: visitors.list_visitors(
            req.store, site=req.args["site"], day=day, now=req.now
        )
    )
    return Response({"visitors": out}, len(out))


def h_visitor_register(req: Request) -> Response:
    b = req.body
    t_from = parse_time(b["from"], "from") if b.get("from") else None
    t_to = parse_time(b["to"], "to") if b.get("to") else None
    out = _case_call(
        lambda: visitors.register(
            req.store,
            site=b["site"],
            name=b["name"],
            key=b["key"],
            now=req.now,
            actor=req.principal.actor,
            company=b.get("company"),
            host=b.get("host"),
            phone=b.get("phone"),
            valid_from=t_from,
            valid_to=t_to,
        )
    )
    return Response(out, 1, status=201)


def h_visitor_get(req: Request) -> Response:
    out = _case_call(
        lambda: visitors.get(req.store, req.path["visitor_id"], now=req.now)
    )
    return Response(out, 1)


def h_visitor_checkout(req: Request) -> Response:
    out = _case_call(
        lambda: visitors.checkout(req.store, req.path["visitor_id"], now=req.now)
    )
    return Response(out, 1)


def h_audit(req: Request) -> Response:
    out = audit.read(
        req.store,
        limit=int(req.args.get("limit") or 200),
        identifier=req.args.get("identifier"),
        action=req.args.get("action"),
    )
    return Response({"entries": out}, len(out))


def h_tokens(req: Request) -> Response:
    out = req.store.list_tokens()
    return Response({"tokens": out}, len(out))


def h_token_create(req: Request) -> Response:
    token_id, token = auth.create_token(
        req.store, req.body["role"], req.body.get("label"), req.now
    )
    return Response(
        {
            "id": token_id,
            "role": req.body["role"],
            "label": req.body.get("label"),
            "token": token,
        },
        1,
        status=201,
    )


def h_token_revoke(req: Request) -> Response:
    token_id = req.path["token_id"]
    if token_id == req.principal.token_id:
        raise ApiError(409, "a token cannot revoke itself; use another admin token")
    if not req.store.revoke_token(token_id, req.now):
        raise ApiError(404, f"no active token {token_id}")
    return Response({"revoked": token_id}, 1)


def h_refdata_get(req: Request) -> Response:
    rows = req.store.list_table(req.path["table"])
    return Response({"table": req.path["table"], "rows": rows}, len(rows))


def h_refdata_import(req: Request) -> Response:
    from central import refdata

    try:
        items = list(refdata.read_yaml("request", json.dumps(req.body)))
        counts = refdata.import_items(req.store, items)
    except BlueGateError as exc:
        raise ApiError(400, str(exc)) from None
    return Response({"imported": counts}, len(items))


ID = p_id
ROUTES: Final[tuple[Route, ...]] = (
    Route(
        "GET",
        PREFIX + "/me",
        h_me,
        "ops",
        "who the token is (role, label)",
        tag="session",
    ),
    Route(
        "GET",
        PREFIX + "/contacts",
        h_contacts,
        "ops",
        "contacts of a case by device key or person",
        (
            p_key("device", "the case's device key"),
            p_name("person", "the case's person id"),
            *WINDOW,
            *RULE_PARAMS,
            p_int("depth", "1: F1; 2: also F2", 1, 2),
            p_enum("format", "answer format", ("json", "csv")),
        ),
    ),
    Route(
        "POST",
        PREFIX + "/contacts/bluezone",
        h_contacts_bluezone,
        "ops",
        "contacts of a case by a disclosed Bluezone daily key (key in the body, never stored)",
        body=BODY_BLUEZONE,
    ),
    Route(
        "GET",
        PREFIX + "/roster",
        h_roster,
        "ops",
        "who was in a zone or at a gateway in a window",
        (p_name("zone", "zone id"), p_name("gateway", "gateway id"), *WINDOW),
    ),
    Route(
        "GET",
        PREFIX + "/timeline",
        h_timeline,
        "ops",
        "where a device or person was, in order",
        (p_key("device", "device key"), p_name("person", "person id"), *WINDOW),
    ),
    Route(
        "GET",
        PREFIX + "/gatelog",
        h_gatelog,
        "ops",
        "entries and exits of a site on a UTC day, visitors, headcount",
        (
            p_name("site", "site id", required=True),
            p_date("day", "UTC day"),
            p_time("now", "headcount at this time (default: now)", required=False),
        ),
        tag="gate",
    ),
    Route(
        "GET",
        PREFIX + "/headcount",
        h_headcount,
        "ops",
        "people on site now (last passage in)",
        (p_name("site", "site id", required=True),),
        tag="gate",
    ),
    Route(
        "GET",
        PREFIX + "/occupancy",
        h_occupancy,
        "ops",
        "people present in a zone per time bucket",
        (
            p_name("zone", "zone id", required=True),
            *WINDOW,
            p_num("bucket_min", "bucket length in minutes", 1, 1440),
        ),
    ),
    Route(
        "GET",
        PREFIX + "/stats",
        h_stats,
        "ops",
        "counts: batches, records by kind, quarantined, gateways",
    ),
    Route(
        "GET",
        PREFIX + "/zones",
        h_zones,
        "ops",
        "zones (reference data and as reported) and sites",
    ),
    Route(
        "GET",
        PREFIX + "/fleet",
        h_fleet,
        "ops",
        "every gateway and beacon with its health",
        (
            p_num(
                "silent_after_s",
                "flag a unit silent after this many seconds",
                10,
                604800,
            ),
        ),
        tag="fleet",
    ),
    Route(
        "GET",
        PREFIX + "/cases",
        h_cases_list,
        "ops",
        "cases, newest first",
        (
            p_enum("status", "open or closed", ("open", "closed")),
            p_name("subject", "person id or device key"),
        ),
        tag="cases",
    ),
    Route(
        "POST",
        PREFIX + "/cases",
        h_case_open,
        "ops",
        "open a case (traced at once)",
        body=BODY_CASE,
        tag="cases",
    ),
    Route(
        "GET",
        PREFIX + "/cases/{case_id}",
        h_case_get,
        "ops",
        "a case with exposures, contacts, notes, locations",
        (ID("case_id", "case id"),),
        tag="cases",
    ),
    Route(
        "POST",
        PREFIX + "/cases/{case_id}/trace",
        h_case_trace,
        "ops",
        "re-run the rule (statuses kept)",
        (ID("case_id", "case id"),),
        BODY_TRACE,
        tag="cases",
    ),
    Route(
        "POST",
        PREFIX + "/cases/{case_id}/expand",
        h_case_expand,
        "ops",
        "expand to F2",
        (ID("case_id", "case id"),),
        tag="cases",
    ),
    Route(
        "PUT",
        PREFIX + "/cases/{case_id}/contacts/{contact_id}/status",
        h_case_status,
        "ops",
        "set a contact's status",
        (ID("case_id", "case id"), ID("contact_id", "contact id")),
        BODY_STATUS,
        tag="cases",
    ),
    Route(
        "POST",
        PREFIX + "/cases/{case_id}/notes",
        h_case_note,
        "ops",
        "add a note",
        (ID("case_id", "case id"),),
        BODY_NOTE,
        tag="cases",
    ),
    Route(
        "POST",
        PREFIX + "/cases/{case_id}/close",
        h_case_close,
        "ops",
        "close a case",
        (ID("case_id", "case id"),),
        BODY_CLOSE,
        tag="cases",
    ),
    Route(
        "GET",
        PREFIX + "/cases/{case_id}/export.csv",
        h_case_csv,
        "ops",
        "the case's contacts as CSV",
        (ID("case_id", "case id"),),
        produces="text/csv",
        tag="cases",
    ),
    Route(
        "GET",
        PREFIX + "/cases/{case_id}/print",
        h_case_print,
        "ops",
        "the case as a printable page",
        (ID("case_id", "case id"),),
        produces="text/html",
        tag="cases",
    ),
    Route(
        "GET",
        PREFIX + "/cases/{case_id}/network",
        h_case_network,
        "ops",
        "the contact network: case, F1, F2",
        (ID("case_id", "case id"),),
        tag="cases",
    ),
    Route(
        "PUT",
        PREFIX + "/cases/{case_id}/locations/{location_id}",
        h_location_state,
        "ops",
        "publish or withdraw a location of interest",
        (ID("case_id", "case id"), ID("location_id", "location id")),
        BODY_LOCATION,
        tag="cases",
    ),
    Route(
        "GET",
        PREFIX + "/locations",
        h_locations,
        "ops",
        "published locations of interest (no case, no person)",
        (
            p_name("site", "site id"),
            p_enum("format", "json or NHS-style CSV", ("json", "csv")),
        ),
        tag="cases",
    ),
    Route(
        "GET",
        PREFIX + "/visitors",
        h_visitors,
        "ops",
        "visitors of a site on a UTC day with their passages",
        (p_name("site", "site id", required=True), p_date("day", "UTC day")),
        tag="gate",
    ),
    Route(
        "POST",
        PREFIX + "/visitors",
        h_visitor_register,
        "ops",
        "register a visitor and the tag they carry",
        body=BODY_VISITOR,
        tag="gate",
    ),
    Route(
        "GET",
        PREFIX + "/visitors/{visitor_id}",
        h_visitor_get,
        "ops",
        "a visitor with their passages",
        (ID("visitor_id", "visitor id"),),
        tag="gate",
    ),
    Route(
        "POST",
        PREFIX + "/visitors/{visitor_id}/checkout",
        h_visitor_checkout,
        "ops",
        "end a visit (and the tag assignment) now",
        (ID("visitor_id", "visitor id"),),
        tag="gate",
    ),
    Route(
        "GET",
        PREFIX + "/audit",
        h_audit,
        "admin",
        "the audit log, newest first (read only)",
        (
            p_int("limit", "entries", 1, 5000),
            Param(
                "identifier",
                {"type": "string", "maxLength": 230, "pattern": TEXT_PATTERN},
                False,
                "entries whose parameters name this person id or device key",
            ),
            Param(
                "action",
                {"type": "string", "maxLength": 100, "pattern": TEXT_PATTERN},
                False,
                "substring of the action",
            ),
        ),
        tag="admin",
    ),
    Route(
        "GET",
        PREFIX + "/tokens",
        h_tokens,
        "admin",
        "API tokens (never the token itself)",
        tag="admin",
    ),
    Route(
        "POST",
        PREFIX + "/tokens",
        h_token_create,
        "admin",
        "create a token (shown once)",
        body=BODY_TOKEN,
        tag="admin",
    ),
    Route(
        "DELETE",
        PREFIX + "/tokens/{token_id}",
        h_token_revoke,
        "admin",
        "revoke a token",
        (ID("token_id", "token id"),),
        tag="admin",
    ),
    Route(
        "GET",
        PREFIX + "/refdata/{table}",
        h_refdata_get,
        "admin",
        "a reference-data table",
        (p_enum("table", "table", REF_TABLES, where="path"),),
        tag="admin",
    ),
    Route(
        "POST",
        PREFIX + "/refdata",
        h_refdata_import,
        "admin",
        "import reference data (the YAML import's sections as JSON; all or nothing)",
        body=BODY_REFDATA,
        tag="admin",
    ),
)


def match(method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
    """(route, path values, allowed methods for the path)."""
    allowed: list[str] = []
    for route in ROUTES:
        m = route.regex.match(path)
        if m is None:
            continue
        allowed.append(route.method)
        if route.method == method:
            return route, m.groupdict(), allowed
    return None, {}, allowed


# ---------------------------------------------------------------------- the app


class StorePool:
    """Store connections lent to one request at a time."""

    def __init__(self, url: str, size: int = 4) -> None:
        self.url = url
        self._idle: queue.LifoQueue[SqlStore] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)

    @contextmanager
    def borrow(self) -> Iterator[SqlStore]:
        self._slots.acquire()
        store: SqlStore | None = None
        try:
            try:
                store = self._idle.get_nowait()
            except queue.Empty:
                store = open_store(self.url, migrate=False)
            yield store
        except BaseException:
            if store is not None:
                store.close()
                store = None
            raise
        finally:
            if store is not None:
                self._idle.put(store)
            self._slots.release()

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


@dataclass(slots=True)
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _json(status: int, obj: Any, extra: list[tuple[str, str]] | None = None) -> Reply:
    data = json.dumps(obj, default=str, separators=(",", ":")).encode()
    return Reply(status, [("Content-Type", "application/json"), *(extra or [])], data)


def _error(
    status: int, message: str, extra: list[tuple[str, str]] | None = None
) -> Reply:
    return _json(status, {"error": message}, extra)


class OpsApi:
    """Request in, reply out: routing, auth, validation, audit. No sockets here."""

    def __init__(
        self,
        config: CentralConfig,
        *,
        now: Callable[[], float] = time.time,
        pool_size: int = 4,
    ) -> None:
        self.config = config
        self.now = now
        self.pool = StorePool(config.storage, pool_size)
        with self.pool.borrow() as store:
            store.migrate()
            opsstore.ensure_schema(store)

    def close(self) -> None:
        self.pool.close()

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[Reply, str]:
        """The reply and the route template (for the log line)."""
        split = urlsplit(target)
        path = split.path
        if method in ("GET", "HEAD") and path in STATIC:
            return self._static(path), path
        if path in (PREFIX + "/openapi.json", PREFIX + "/openapi.json/"):
            if method not in ("GET", "HEAD"):
                return _error(405, "method not allowed", [("Allow", "GET")]), path
            from central import openapi

            return _json(200, openapi.document()), PREFIX + "/openapi.json"
        if path == PREFIX + "/health":
            return _json(200, {"ok": True}), path
        route, values, allowed = match(method, path)
        if route is None:
            if allowed:
                return _error(
                    405, "method not allowed", [("Allow", ", ".join(allowed))]
                ), "(405)"
            return _error(404, "no such route"), "(unmatched)"
        try:
            return self._dispatch(
                route, values, split.query, headers, body
            ), route.template
        except ApiError as exc:
            return _error(exc.status, exc.message), route.template

    def _static(self, path: str) -> Reply:
        name, ctype = STATIC[path]
        try:
            with open(os.path.join(WEB_DIR, name), "rb") as handle:
                data = handle.read()
        except OSError:
            return _error(404, "the ops page is not installed")
        return Reply(
            200, [("Content-Type", ctype), ("Cache-Control", "no-cache")], data
        )

    def _parse(
        self,
        route: Route,
        values: Mapping[str, str],
        query_text: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        path_args: dict[str, Any] = {}
        for p in route.params:
            if p.where == "path":
                path_args[p.name] = parse_param(values[p.name], p)
        try:
            raw = parse_qs(
                query_text,
                keep_blank_values=True,
                strict_parsing=False,
                max_num_fields=50,
            )
        except ValueError:
            raise ApiError(400, "too many query parameters") from None
        known = {p.name: p for p in route.params if p.where == "query"}
        args: dict[str, Any] = {}
        for name, vals in raw.items():
            if name not in known:
                raise ApiError(400, f"{name[:40]}: unknown parameter")
            if len(vals) != 1:
                raise ApiError(400, f"{name}: give it once")
            args[name] = parse_param(vals[0], known[name])
        for p in known.values():
            if p.required and p.name not in args:
                raise ApiError(400, f"{p.name}: is required")
        parsed_body: dict[str, Any] = {}
        if route.body is not None:
            if body.strip():
                ctype = headers.get("content-type", "").split(";")[0].strip().lower()
                if ctype != "application/json":
                    raise ApiError(415, "the body must be application/json")
                try:
                    data = json.loads(body)
                except (ValueError, RecursionError):
                    raise ApiError(400, "the body is not valid JSON") from None
            else:
                data = {}
            parsed_body = check_value(data, route.body, "body")
        elif body.strip():
            raise ApiError(400, "this route takes no body")
        return path_args, args, parsed_body

    def _dispatch(
        self,
        route: Route,
        values: Mapping[str, str],
        query_text: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> Reply:
        token = auth.bearer(headers.get("authorization"))
        if token is None:
            raise ApiError(
                401, "a bearer token is required (Authorization: Bearer <token>)"
            )
        now = self.now()
        with self.pool.borrow() as store:
            principal = auth.authenticate(store, token)
            if principal is None:
                raise ApiError(401, "the token is not valid (unknown or revoked)")
            audit_params: dict[str, Any] = {}
            status = 500
            rows = 0
            try:
                if not principal.allows(route.role):
                    status = 403
                    raise ApiError(403, f"this needs the {route.role} role")
                path_args, args, parsed_body = self._parse(
                    route, values, query_text, headers, body
                )
                audit_params = {**path_args, **args, **parsed_body}
                req = Request(
                    route.method,
                    route.template,
                    path_args,
                    args,
                    parsed_body,
                    principal,
                    store,
                    now,
                    self.config,
                )
                try:
                    resp = route.handler(req)
                except (ValueError, KeyError) as exc:
                    # The query layer's own checks (e.g. "give exactly one of ...").
                    raise ApiError(400, str(exc).strip("'\"")[:300]) from None
                status, rows = resp.status, resp.rows
                return self._render(resp)
            except ApiError as exc:
                status = exc.status
                raise
            except StoreError as exc:
                status = 503
                _LOGGER.error(
                    "api: storage failure on %s %s: %s",
                    route.method,
                    route.template,
                    type(exc).__name__,
                )
                raise ApiError(503, "storage unavailable, try again") from None
            except Exception as exc:
                status = 500
                _LOGGER.error(
                    "api: %s on %s %s", type(exc).__name__, route.method, route.template
                )
                _LOGGER.debug("api: traceback", exc_info=True)
                raise ApiError(500, "internal error (logged)") from None
            finally:
                self._audit(store, principal, route, audit_params, rows, status, now)

    def _audit(
        self,
        store: SqlStore,
        principal: auth.Principal,
        route: Route,
        params: dict[str, Any],
        rows: int,
        status: int,
        now: float,
    ) -> None:
        try:
            audit.record(
                store,
                now=now,
                actor=principal.actor,
                action=f"{route.method} {route.template}",
                params=params,
                rows=rows,
                status=status,
            )
        except Exception as exc:  # noqa: BLE001 - never hide the reply; say the audit failed
            _LOGGER.error("api: audit write failed: %s", type(exc).__name__)

    def _render(self, resp: Response) -> Reply:
        headers: list[tuple[str, str]] = []
        if resp.filename:
            headers.append(
                ("Content-Disposition", f'attachment; filename="{resp.filename}"')
            )
        if resp.content_type == "application/json":
            return _json(resp.status, resp.body, headers)
        ctype = resp.content_type + "; charset=utf-8"
        return Reply(
            resp.status, [("Content-Type", ctype), *headers], str(resp.body).encode()
        )


# ---------------------------------------------------------------- HTTP server


class _Handler(BaseHTTPRequestHandler):
    server_version = "bluegate-central"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 30
    app: OpsApi

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the stdlib line carries the full path (identifiers)."""

    def _serve(self) -> None:
        started = time.monotonic()
        template = "(unparsed)"
        try:
            length_text = self.headers.get("Content-Length")
            if self.headers.get("Transfer-Encoding"):
                reply = _error(411, "send a Content-Length, not chunked")
                self.close_connection = True
            else:
                try:
                    length = int(length_text) if length_text else 0
                except ValueError:
                    length = -1
                if length < 0:
                    reply = _error(400, "bad Content-Length")
                    self.close_connection = True
                elif length > MAX_BODY_BYTES:
                    # Read (a bounded amount of) what the client is sending, so it
                    # sees the 413 instead of a connection reset mid-upload.
                    left = min(length, DRAIN_MAX_BYTES)
                    while left > 0:
                        chunk = self.rfile.read(min(left, 65536))
                        if not chunk:
                            break
                        left -= len(chunk)
                    reply = _error(
                        413, f"the body is limited to {MAX_BODY_BYTES} bytes"
                    )
                    self.close_connection = True
                else:
                    body = self.rfile.read(length) if length else b""
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    reply, template = self.app.handle(
                        self.command, self.path, headers, body
                    )
        except Exception as exc:  # noqa: BLE001 - a request must never kill the server
            _LOGGER.error("api: %s while serving a request", type(exc).__name__)
            reply = _error(500, "internal error (logged)")
        self._send(reply)
        _LOGGER.info(
            "%s %s %d %.1f ms",
            self.command,
            template,
            reply.status,
            (time.monotonic() - started) * 1000,
        )

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        if not any(n == "Cache-Control" for n, _v in reply.headers):
            self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    do_GET = _serve
    do_HEAD = _serve
    do_POST = _serve
    do_PUT = _serve
    do_DELETE = _serve
    do_PATCH = _serve
    do_OPTIONS = _serve
    do_TRACE = _serve
    do_CONNECT = _serve

    def __getattr__(self, name: str) -> Any:
        # Any other method (QUERY, PROPFIND, ...): routed too, so it gets a JSON
        # 405/404 rather than the stdlib's HTML 501.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


class HttpComponent:
    """The HTTP API and ops page as a `central.service` component."""

    name = "http"

    def __init__(
        self, config: CentralConfig, *, now: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.now = now
        self.app: OpsApi | None = None
        self.server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def start(self) -> None:
        self.app = OpsApi(self.config, now=self.now)
        handler = type("Handler", (_Handler,), {"app": self.app})
        try:
            self.server = _Server(
                (self.config.http.bind, self.config.http.port), handler
            )
        except OSError as exc:
            self.app.close()
            raise BlueGateError(
                f"http: cannot listen on {self.config.http.bind}:{self.config.http.port}: {exc.strerror}"
            ) from None
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="http", daemon=True
        )
        self._thread.start()
        _LOGGER.info(
            "http: API and ops page on http://%s:%d/", self.config.http.bind, self.port
        )

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.app is not None:
            self.app.close()
        self.server = self._thread = self.app = None


def make_components(config: CentralConfig) -> list[HttpComponent]:
    """`central.service` hook: serve runs the HTTP API beside ingest."""
    return [HttpComponent(config)]
