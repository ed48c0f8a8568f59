"""The HTTP API end to end: a replayed site, the real server, real HTTP.

Every route is called without a token, with a bad token, with the wrong role and
with the right one; the audit log grows with each call and cannot be changed."""

from __future__ import annotations

import csv
import io
import logging
import sqlite3

import pytest

from beacon import bluezone
from central import api, audit
from central.store import open_store
from tests.api.conftest import Live
from tests.api.site import BEACON_BASE_KEY, T0, tag_key

pytestmark = pytest.mark.integration

CASE_BODY = {
    "subject_kind": "person",
    "subject": "W001",
    "onset_date": "2026-03-02",
    "isolation": "2026-03-02",
    "label": "bus-07 cluster",
}


@pytest.fixture(scope="module")
def case(live: Live) -> dict:
    status, body, _ = live.call("POST", "/api/v1/cases", CASE_BODY)
    assert status == 201, body
    return body


@pytest.fixture(scope="module")
def samples(live: Live, case: dict) -> dict[tuple[str, str], tuple[str, object]]:
    """One valid request (path with ids filled in, body) for every route."""
    status, visitor, _ = live.call(
        "POST",
        "/api/v1/visitors",
        {
            "site": "mine-a",
            "name": "Dang Van Khach",
            "company": "Audit Ltd",
            "host": "W004",
            "phone": "+84 91 111 2222",
            "key": tag_key(2, 1),
            "from": "2026-03-02T07:30:00Z",
            "to": "2026-03-02T12:00:00Z",
        },
    )
    assert status == 201, visitor
    status, spare, _ = live.call(
        "POST", "/api/v1/tokens", {"role": "ops", "label": "spare"}, token="admin"
    )
    assert status == 201
    cid = case["id"]
    contact = case["contacts"][0]["id"]
    location = case["locations"][0]["id"]
    w = "from=2026-03-02T00:00:00Z&to=2026-03-03T00:00:00Z"
    p = "/api/v1"
    return {
        ("GET", p + "/me"): (p + "/me", None),
        ("GET", p + "/contacts"): (p + f"/contacts?person=W001&{w}&depth=2", None),
        ("POST", p + "/contacts/bluezone"): (
            p + "/contacts/bluezone",
            {
                "daily_key": "ab" * 32,
                "key_date": "2026-03-02",
                "from": "2026-03-02T00:00:00Z",
                "to": "2026-03-03T00:00:00Z",
            },
        ),
        ("GET", p + "/roster"): (p + f"/roster?zone=bus-07&{w}", None),
        ("GET", p + "/timeline"): (p + f"/timeline?person=W001&{w}", None),
        ("GET", p + "/gatelog"): (
            p + "/gatelog?site=mine-a&day=2026-03-02&now=2026-03-02T12:00:00Z",
            None,
        ),
        ("GET", p + "/headcount"): (p + "/headcount?site=mine-a", None),
        ("GET", p + "/occupancy"): (
            p + f"/occupancy?zone=room-a&{w}&bucket_min=30",
            None,
        ),
        ("GET", p + "/stats"): (p + "/stats", None),
        ("GET", p + "/zones"): (p + "/zones", None),
        ("GET", p + "/fleet"): (p + "/fleet", None),
        ("GET", p + "/cases"): (p + "/cases?status=open", None),
        ("POST", p + "/cases"): (
            p + "/cases",
            {**CASE_BODY, "subject": "W002", "label": "matrix"},
        ),
        ("GET", p + "/cases/{case_id}"): (p + f"/cases/{cid}", None),
        ("POST", p + "/cases/{case_id}/trace"): (p + f"/cases/{cid}/trace", {}),
        ("POST", p + "/cases/{case_id}/expand"): (p + f"/cases/{cid}/expand", None),
        ("PUT", p + "/cases/{case_id}/contacts/{contact_id}/status"): (
            p + f"/cases/{cid}/contacts/{contact}/status",
            {"status": "quarantined", "note": "called, at home"},
        ),
        ("POST", p + "/cases/{case_id}/notes"): (
            p + f"/cases/{cid}/notes",
            {"text": "case called"},
        ),
        (
            "POST",
            p + "/cases/{case_id}/close",
        ): None,  # tested on its own (closes the case)
        ("GET", p + "/cases/{case_id}/export.csv"): (
            p + f"/cases/{cid}/export.csv",
            None,
        ),
        ("GET", p + "/cases/{case_id}/print"): (p + f"/cases/{cid}/print", None),
        ("GET", p + "/cases/{case_id}/network"): (p + f"/cases/{cid}/network", None),
        ("PUT", p + "/cases/{case_id}/locations/{location_id}"): (
            p + f"/cases/{cid}/locations/{location}",
            {"state": "published"},
        ),
        ("GET", p + "/locations"): (p + "/locations?site=mine-a", None),
        ("GET", p + "/visitors"): (p + "/visitors?site=mine-a&day=2026-03-02", None),
        ("POST", p + "/visitors"): (
            p + "/visitors",
            {"site": "mine-a", "name": "Second Visitor", "key": tag_key(2, 9)},
        ),
        ("GET", p + "/visitors/{visitor_id}"): (p + f"/visitors/{visitor['id']}", None),
        ("POST", p + "/visitors/{visitor_id}/checkout"): None,  # tested on its own
        ("GET", p + "/audit"): (p + "/audit?limit=5", None),
        ("GET", p + "/tokens"): (p + "/tokens", None),
        ("POST", p + "/tokens"): (p + "/tokens", {"role": "ops", "label": "matrix"}),
        ("DELETE", p + "/tokens/{token_id}"): (p + f"/tokens/{spare['id']}", None),
        ("GET", p + "/refdata/{table}"): (p + "/refdata/zones", None),
        ("POST", p + "/refdata"): (
            p + "/refdata",
            {
                "zones": [
                    {
                        "zone": "canteen",
                        "site": "mine-a",
                        "kind": "shift_room",
                        "enclosed": True,
                    }
                ]
            },
        ),
    }


ROUTE_IDS = [f"{r.method} {r.template}" for r in api.ROUTES]


@pytest.mark.parametrize("route", api.ROUTES, ids=ROUTE_IDS)
def test_every_route_needs_a_token_and_its_role(live: Live, samples, route: api.Route):
    assert (route.method, route.template) in samples, (
        "a new route needs a sample request"
    )
    sample = samples[(route.method, route.template)]
    if sample is None:
        path = route.template.replace("{case_id}", "1").replace("{visitor_id}", "1")
        body = {} if route.body is not None else None
    else:
        path, body = sample
    count_before = len(_audit_rows(live))
    status, reply, _ = live.call(route.method, path, body, token=None)
    assert status == 401
    assert "token" in reply["error"]
    status, reply, _ = live.call(route.method, path, body, token="bgt_" + "x" * 43)
    assert status == 401
    assert "not valid" in reply["error"]
    # Unauthenticated calls are refused before anything is read; not audited.
    assert len(_audit_rows(live)) == count_before
    if route.role == "admin":
        status, reply, _ = live.call(route.method, path, body, token="ops")
        assert status == 403
        assert "admin" in reply["error"]
        rows = _audit_rows(live)
        assert rows[0]["action"] == f"{route.method} {route.template}"
        assert rows[0]["params"]["_status"] == 403
    if sample is None:
        return
    status, reply, _ = live.call(route.method, path, body, token=route.role)
    assert status in (200, 201), (status, reply)
    rows = _audit_rows(live)
    assert rows[0]["action"] == f"{route.method} {route.template}"
    assert rows[0]["params"]["_status"] == status
    if route.role == "ops":  # admin may do what ops may
        status, reply, _ = live.call(route.method, path, body, token="admin")
        assert status < 500, (status, reply)
        assert status not in (401, 403), (status, reply)


def _audit_rows(live: Live) -> list[dict]:
    store = open_store(live.storage, migrate=False)
    try:
        return store.list_audit(100_000)
    finally:
        store.close()


def test_case_contacts_statuses_f2_notes_and_close(live: Live, case: dict):
    by_person = {c["person"]: c for c in case["contacts"]}
    # The morning as replayed: bus-07 riders and the room-a colleague are F1;
    # W005 dropped into room-a for 10 minutes (below the 15-minute rule).
    assert {p for p, c in by_person.items() if c["level"] == 1} == {
        "W002",
        "W003",
        "W004",
    }
    assert "W005" not in by_person
    assert by_person["W002"]["zone"] == "bus-07"
    assert by_person["W002"]["minutes"] >= 35
    assert by_person["W002"]["name"] == "Tran Thi Binh"
    assert by_person["W002"]["phone"] == "+84 90 000 0002"
    assert all(c["status"] == "to_contact" for c in case["contacts"])
    # The lost batch of gw-room-a is a warning on the case.
    assert any(w["gateway"] == "gw-room-a" for w in case["warnings"])
    # Every rule parameter and the window rule are snapshotted.
    assert case["params"]["rule"]["min_minutes"] == 15.0
    assert case["params"]["window_rule"] == {
        "basis": "onset",
        "reference_date": "2026-03-02",
        "days_before": 2.0,
        "until": "isolation",
    }
    assert case["from"] == "2026-02-28T00:00:00Z"
    assert case["to"] == "2026-03-03T00:00:00Z"

    new = live.call("POST", "/api/v1/cases", {**CASE_BODY, "label": "for close"})[1]
    cid = new["id"]
    w004 = next(c for c in new["contacts"] if c["person"] == "W004")
    status, updated, _ = live.call(
        "PUT",
        f"/api/v1/cases/{cid}/contacts/{w004['id']}/status",
        {"status": "positive"},
    )
    assert status == 200
    assert updated["status"] == "positive"
    status, expanded, _ = live.call("POST", f"/api/v1/cases/{cid}/expand")
    assert status == 200
    assert expanded["depth"] == 2
    f2 = [c for c in expanded["contacts"] if c["level"] == 2]
    assert [c["person"] for c in f2] == ["W006"]
    assert f2[0]["via"] == ["W004"]
    # The status survives re-tracing.
    assert (
        next(c for c in expanded["contacts"] if c["person"] == "W004")["status"]
        == "positive"
    )
    net = live.call("GET", f"/api/v1/cases/{cid}/network")[1]
    w004_node = next(n["id"] for n in net["nodes"] if n["label"] == "Pham Thi Dung")
    w006_node = next(n["id"] for n in net["nodes"] if n["label"] == "Vu Thi Giang")
    assert {"from": "case", "to": w004_node, "minutes": w004["minutes"]} in net["edges"]
    assert any(e["from"] == w004_node and e["to"] == w006_node for e in net["edges"])
    assert (
        live.call("POST", f"/api/v1/cases/{cid}/notes", {"text": "W004 isolated"})[0]
        == 201
    )
    status, closed, _ = live.call(
        "POST", f"/api/v1/cases/{cid}/close", {"reason": "all traced"}
    )
    assert status == 200
    assert closed["status"] == "closed"
    texts = [n["text"] for n in closed["notes"]]
    assert "status -> positive" in texts
    assert "W004 isolated" in texts
    # A closed case is read-only.
    status, err, _ = live.call(
        "PUT",
        f"/api/v1/cases/{cid}/contacts/{w004['id']}/status",
        {"status": "to_contact"},
    )
    assert status == 409
    assert "closed" in err["error"]
    assert live.call("POST", f"/api/v1/cases/{cid}/close", {})[0] == 409


def test_exports_csv_and_printable_page(live: Live, case: dict):
    status, text, headers = live.call("GET", f"/api/v1/cases/{case['id']}/export.csv")
    assert status == 200
    assert headers["Content-Type"].startswith("text/csv")
    assert "attachment" in headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["person"] for r in rows} >= {"W002", "W003", "W004"}
    assert all(r["case_id"] == str(case["id"]) for r in rows)
    status, page, headers = live.call("GET", f"/api/v1/cases/{case['id']}/print")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "Tran Thi Binh" in page
    assert "bus-07" in page
    assert "<script" not in page


def test_locations_of_interest_publish_and_public_list(live: Live):
    new = live.call("POST", "/api/v1/cases", {**CASE_BODY, "label": "loi"})[1]
    zones = {loc["zone"] for loc in new["locations"]}
    assert {"bus-07", "room-a"} <= zones
    bus = next(loc for loc in new["locations"] if loc["zone"] == "bus-07")
    assert bus["status"] == "draft"
    assert bus["site"] == "mine-a"
    assert bus["from"].startswith("2026-03-02T06:00")
    # room-a has a registered Bluezone beacon: its F0 key, from the window's day.
    room = next(loc for loc in new["locations"] if loc["zone"] == "room-a")
    assert [b["beacon"] for b in room["beacon_keys"]] == ["room-a-beacon"]
    f0 = room["beacon_keys"][0]["f0"]["data"][0]
    assert f0["daily_key"] == bluezone.daily_key_from_base(BEACON_BASE_KEY, 10).hex()
    assert f0["time_start"] == int(T0)
    assert f0["max"] == 96
    assert bus["beacon_keys"] == []
    status, pub, _ = live.call(
        "PUT",
        f"/api/v1/cases/{new['id']}/locations/{bus['id']}",
        {"state": "published"},
    )
    assert status == 200
    assert pub["status"] == "published"
    status, listed, _ = live.call("GET", "/api/v1/locations")
    assert any(
        item["zone"] == "bus-07" and item["id"] == bus["id"]
        for item in listed["locations"]
    )
    # Workers see the place and window, never the case or who published.
    assert all(
        "case_id" not in item and "published_by" not in item
        for item in listed["locations"]
    )
    status, text, _ = live.call("GET", "/api/v1/locations?format=csv")
    assert text.splitlines()[0] == "venue_id,start,end,message_type,param"
    assert (
        live.call(
            "PUT",
            f"/api/v1/cases/{new['id']}/locations/{bus['id']}",
            {"state": "withdrawn"},
        )[0]
        == 200
    )
    status, err, _ = live.call(
        "PUT",
        f"/api/v1/cases/{new['id']}/locations/{bus['id']}",
        {"state": "published"},
    )
    assert status == 409


def test_gate_log_visitors_and_headcount(live: Live):
    status, v, _ = live.call(
        "POST",
        "/api/v1/visitors",
        {
            "site": "mine-a",
            "name": "Visitor Gate",
            "company": "Inspect Co",
            "host": "W004",
            "phone": "+84 92 333 4444",
            "key": tag_key(2, 1),
            "from": "2026-03-02T07:50:00Z",
            "to": "2026-03-02T07:59:00Z",
        },
    )
    # The tag is already lent to another visitor of that morning (samples fixture) or free.
    assert status in (201, 409)
    status, log, _ = live.call(
        "GET", "/api/v1/gatelog?site=mine-a&day=2026-03-02&now=2026-03-02T12:00:00Z"
    )
    assert status == 200
    assert log["entries"] == 7
    assert log["exits"] == 1
    w001 = [e for e in log["events"] if e["person"] == "W001"]
    assert [e["direction"] for e in w001] == ["in", "out"]
    assert log["headcount"] == 6
    visitor_in = [e for e in log["events"] if e["key"] == tag_key(2, 1)]
    assert visitor_in
    assert visitor_in[0]["t"].startswith("2026-03-02T07:55")
    hourly = {h["hour"]: h for h in log["hourly"]}
    assert hourly[5]["in"] == 6
    assert hourly[9]["out"] == 1
    regs = log["registered_visitors"]
    linked = [r for r in regs if r["key"] == tag_key(2, 1)]
    assert linked
    assert linked[0]["passages"][0]["direction"] == "in"
    assert visitor_in[0]["kind"] == "visitor"
    assert visitor_in[0]["host"] == "W004"
    # Checking a visitor out ends the tag's assignment; twice is a conflict.
    status, out, _ = live.call("POST", f"/api/v1/visitors/{linked[0]['id']}/checkout")
    assert status in (200, 409)
    assert live.call("POST", f"/api/v1/visitors/{linked[0]['id']}/checkout")[0] == 409
    status, hc, _ = live.call("GET", "/api/v1/headcount?site=mine-a")
    assert status == 200
    assert hc["site"] == "mine-a"
    assert isinstance(hc["headcount"], int)


def test_fleet_flags(live: Live):
    status, f, _ = live.call("GET", "/api/v1/fleet")
    assert status == 200
    gws = {g["gateway"]: g for g in f["gateways"]}
    assert set(gws) == {"gw-bus-07", "gw-room-a", "gw-gate", "gw-yard-3"}
    assert gws["gw-yard-3"]["state"] == "down"
    assert "offline (last will)" in gws["gw-yard-3"]["problems"]
    assert gws["gw-room-a"]["state"] == "warn"
    assert gws["gw-room-a"]["missing_records"] == 40
    assert gws["gw-gate"]["clock"] == "unsynced"
    assert gws["gw-gate"]["state"] == "warn"
    assert gws["gw-bus-07"]["state"] == "ok"
    assert gws["gw-bus-07"]["outbox_depth"] == 12
    assert gws["gw-bus-07"]["zone"] == "bus-07"
    # The registered beacon of room-a was not heard in the last hour (the replayed
    # day is long past): the radio check says so for the beacon and its gateway.
    assert [b["beacon"] for b in f["beacons"]] == ["room-a-beacon"]
    assert f["beacons"][0]["state"] == "warn"
    assert gws["gw-room-a"]["radio"] == "no-beacon"
    assert gws["gw-bus-07"]["radio"] == "unknown"
    # Seen as silent when nothing arrives for longer than the threshold.
    status, later, _ = live.call("GET", "/api/v1/fleet?silent_after_s=10")
    assert status == 200


def test_bad_input_is_a_clear_4xx(live: Live):
    cases = [
        (
            "GET",
            "/api/v1/contacts?person=W001&from=2026-03-02&to=2026-03-01",
            None,
            "to: must be after from",
        ),
        (
            "GET",
            "/api/v1/contacts?person=W001&device=ibeacon:a:1:1&from=2026-03-02&to=2026-03-03",
            None,
            "exactly one",
        ),
        (
            "GET",
            "/api/v1/contacts?person=W001&from=yesterday&to=2026-03-03",
            None,
            "from",
        ),
        (
            "GET",
            "/api/v1/contacts?person=W001&from=2026-01-01&to=2026-06-01",
            None,
            "62 days",
        ),
        (
            "GET",
            "/api/v1/roster?zone=bus-07&from=2026-03-02&to=2026-03-03&zone=x",
            None,
            "once",
        ),
        (
            "GET",
            "/api/v1/roster?zone=bus%2007&from=2026-03-02&to=2026-03-03",
            None,
            "zone",
        ),
        ("GET", "/api/v1/stats?x=1", None, "unknown parameter"),
        (
            "GET",
            "/api/v1/occupancy?zone=room-a&from=2026-03-02&to=2026-03-20&bucket_min=1",
            None,
            "bucket_min",
        ),
        ("GET", "/api/v1/cases/0", None, "case_id"),
        ("GET", "/api/v1/cases/abc", None, "case_id"),
        ("GET", "/api/v1/cases/99999", None, "no case"),
        ("POST", "/api/v1/cases", {"subject_kind": "person"}, "subject"),
        (
            "POST",
            "/api/v1/cases",
            {**CASE_BODY, "onset_date": None, "isolation": None},
            "onset_date or a test_date",
        ),
        ("POST", "/api/v1/cases", {**CASE_BODY, "extra": 1}, "unknown field"),
        ("POST", "/api/v1/cases", {**CASE_BODY, "subject": "W0\u00001"}, "subject"),
        (
            "POST",
            "/api/v1/contacts/bluezone",
            {
                "daily_key": "zz",
                "key_date": "2026-03-02",
                "from": "2026-03-02",
                "to": "2026-03-03",
            },
            "daily_key",
        ),
    ]
    for method, path, body, needle in cases:
        status, reply, headers = live.call(method, path, body)
        assert 400 <= status < 500, (path, status, reply)
        assert headers["Content-Type"] == "application/json"
        assert needle in reply["error"], (path, reply)
    status, reply, _ = live.call(
        "POST",
        "/api/v1/cases",
        raw_body=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert status == 400
    assert "JSON" in reply["error"]
    status, reply, _ = live.call(
        "POST", "/api/v1/cases", raw_body=b"{}", headers={"Content-Type": "text/plain"}
    )
    assert status == 415
    status, reply, _ = live.call("PATCH", "/api/v1/cases")
    assert status == 405
    status, reply, _ = live.call("GET", "/api/v1/nothing")
    assert status == 404
    assert reply["error"]
    status, reply, _ = live.call(
        "POST",
        "/api/v1/notes",
        raw_body=b"x" * (api.MAX_BODY_BYTES + 1),
        headers={"Content-Type": "application/json"},
    )
    assert status == 413


def test_audit_grows_pseudonymises_and_cannot_be_edited(
    live: Live, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG, logger="central")
    before = live.call("GET", "/api/v1/audit?limit=5000", token="admin")[1]["entries"]
    for _ in range(3):
        assert (
            live.call(
                "GET",
                "/api/v1/timeline?device="
                + tag_key(1, 2)
                + "&from=2026-03-02&to=2026-03-03",
            )[0]
            == 200
        )
    assert (
        live.call(
            "POST",
            "/api/v1/contacts/bluezone",
            {
                "daily_key": "cd" * 32,
                "key_date": "2026-03-02",
                "from": "2026-03-02T00:00:00Z",
                "to": "2026-03-03T00:00:00Z",
            },
        )[0]
        == 200
    )
    after = live.call("GET", "/api/v1/audit?limit=5000", token="admin")[1]["entries"]
    # Three timelines, one Bluezone query and the first audit read itself.
    assert len(after) == len(before) + 5
    timeline = [e for e in after if e["action"] == "GET /api/v1/timeline"][0]
    assert timeline["actor"] == "token:1 (ops desk)" or timeline["actor"].endswith(
        "(ops desk)"
    )
    assert timeline["params"]["device"].startswith("h:")
    assert tag_key(1, 2) not in str(after)
    assert timeline["rows"] >= 1
    bz = [e for e in after if e["action"] == "POST /api/v1/contacts/bluezone"][0]
    assert bz["params"]["daily_key"] == "(given, not recorded)"
    assert "cd" * 32 not in str(after)
    # An admin finds who looked a device up, by the identifier itself.
    found = live.call(
        "GET", "/api/v1/audit?identifier=" + tag_key(1, 2), token="admin"
    )[1]["entries"]
    assert len(found) >= 3
    assert all(e["action"] == "GET /api/v1/timeline" for e in found)
    # No route edits or deletes the log...
    for method in ("PUT", "DELETE", "PATCH", "POST"):
        status, _, _ = live.call(
            method, "/api/v1/audit", {} if method != "DELETE" else None, token="admin"
        )
        assert status == 405
    # ...and the database refuses it too.
    conn = sqlite3.connect(live.storage[len("sqlite://") :])
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM audit_log")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE audit_log SET actor = 'x'")
    conn.close()
    # Server logs: method, route template, status, duration; never an identifier.
    text = caplog.text
    assert "GET /api/v1/timeline 200" in text
    assert tag_key(1, 2) not in text
    assert "W001" not in text
    assert "cd" * 32 not in text


def test_tokens_hashed_role_admin_and_revocation(live: Live):
    status, made, _ = live.call(
        "POST",
        "/api/v1/tokens",
        {"role": "admin", "label": "second admin"},
        token="admin",
    )
    assert status == 201
    assert made["token"].startswith("bgt_")
    store = open_store(live.storage, migrate=False)
    try:
        stored = store._query(
            "SELECT token_hash FROM api_tokens WHERE id = ?", (made["id"],)
        )[0][0]
    finally:
        store.close()
    assert made["token"] not in stored
    assert len(stored) == 64
    listed = live.call("GET", "/api/v1/tokens", token="admin")[1]["tokens"]
    assert all("token" not in t and "token_hash" not in t for t in listed)
    assert live.call("GET", "/api/v1/me", token=made["token"])[1]["role"] == "admin"
    me = live.call("GET", "/api/v1/me", token=made["token"])[1]
    assert (
        live.call("DELETE", f"/api/v1/tokens/{me['token_id']}", token=made["token"])[0]
        == 409
    )
    assert live.call("DELETE", f"/api/v1/tokens/{made['id']}", token="admin")[0] == 200
    assert live.call("GET", "/api/v1/me", token=made["token"])[0] == 401
    assert live.call("DELETE", f"/api/v1/tokens/{made['id']}", token="admin")[0] == 404


def test_a_token_from_the_cli_works(live: Live, tmp_path):
    from central.commands.token import new_token, token_hash

    token = new_token()
    store = open_store(live.storage, migrate=False)
    try:
        store.add_token(token_hash(token), "ops", "cli", 0.0)
    finally:
        store.close()
    assert live.call("GET", "/api/v1/me", token=token)[1]["label"] == "cli"


def test_openapi_describes_every_route(live: Live):
    status, doc, _ = live.call("GET", "/api/v1/openapi.json", token=None)
    assert status == 200
    assert doc["openapi"].startswith("3.0")
    for route in api.ROUTES:
        op = doc["paths"][route.template][route.method.lower()]
        assert "401" in op["responses"]
        assert "403" in op["responses"]
        assert "400" in op["responses"]
        names = {p["name"] for p in op.get("parameters", [])}
        assert names == {p.name for p in route.params}
        assert ("requestBody" in op) == (route.body is not None)
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_static_page_is_served_with_a_strict_policy(live: Live):
    status, page, headers = live.call("GET", "/", token=None)
    assert status == 200
    assert '<script src="/app.js"' in page
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "http://" not in page
    assert "https://" not in page
    for asset in ("/app.js", "/style.css"):
        status, text, _ = live.call("GET", asset, token=None)
        assert status == 200
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")


def test_pseudonyms_are_keyed_and_stable(live: Live):
    store = open_store(live.storage, migrate=False)
    try:
        a = audit.pseudonym(store, "W001")
        assert a == audit.pseudonym(store, "W001")
        assert a != audit.pseudonym(store, "W002")
        import hashlib

        assert hashlib.sha256(b"W001").hexdigest()[:16] not in a
    finally:
        store.close()
