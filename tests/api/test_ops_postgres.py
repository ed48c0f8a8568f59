"""The ops tables and flows on both stores: SQLite and a real PostgreSQL server.

Same replayed site, same answers: a case with statuses, F2, notes, close; a visitor
linked to gate passages; locations of interest; the audit log append-only."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from central import audit, cases, locations, opsstore, visitors
from central.rules import Rule
from central.store import open_store
from tests.api.site import T0, at, replay_site, tag_key
from tests.central.conftest import fresh_pg_database


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)]
)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path}/ops.sqlite"
    return fresh_pg_database(request.getfixturevalue("postgres"))


def test_ops_flows_on_both_stores(url: str):
    store = open_store(url)
    try:
        assert opsstore.ensure_schema(store) == opsstore.OPS_VERSION
        assert opsstore.ensure_schema(store) == opsstore.OPS_VERSION  # idempotent
        replay_site(store, now=T0 + 86_400)
        case = cases.open_case(
            store,
            base_rule=Rule(),
            subject_kind="person",
            subject="W001",
            now=T0 + 86_400,
            actor="test",
            onset_date="2026-03-02",
            isolation="2026-03-02",
        )
        assert sorted(c["person"] for c in case["contacts"]) == ["W002", "W003", "W004"]
        w004 = next(c for c in case["contacts"] if c["person"] == "W004")
        cases.set_status(
            store, case["id"], w004["id"], "positive", now=T0 + 86_500, actor="test"
        )
        cases.trace(store, case["id"], now=T0 + 86_600, depth=2)
        again = cases.get_case(store, case["id"])
        assert (
            next(c for c in again["contacts"] if c["person"] == "W004")["status"]
            == "positive"
        )
        assert [c["person"] for c in again["contacts"] if c["level"] == 2] == ["W006"]
        assert {loc["zone"] for loc in again["locations"]} >= {"bus-07", "room-a"}
        bus = next(loc for loc in again["locations"] if loc["zone"] == "bus-07")
        locations.set_state(
            store, case["id"], bus["id"], "published", now=T0 + 86_700, actor="t"
        )
        assert [p["zone"] for p in locations.published(store, site="mine-a")] == [
            "bus-07"
        ]
        cases.add_note(store, case["id"], "done", now=T0 + 86_800, actor="test")
        closed = cases.close_case(
            store, case["id"], now=T0 + 86_900, actor="test", reason=None
        )
        assert closed["status"] == "closed"
        with pytest.raises(cases.CaseError):
            cases.trace(store, case["id"], now=T0 + 87_000)

        v = visitors.register(
            store,
            site="mine-a",
            name="Visitor One",
            key=tag_key(2, 1),
            now=at("07:50"),
            actor="gate",
            company="Inspect Co",
            host="W004",
            valid_to=at("12:00"),
        )
        assert [p["direction"] for p in v["passages"]] == ["in"]
        log = visitors.gate_log(
            store, site="mine-a", day=dt.date(2026, 3, 2), now=at("10:00")
        )
        assert log["headcount"] == 6  # W001 left at 09:30; the visitor is in
        assert any(
            e["kind"] == "visitor" and e["host"] == "W004" for e in log["events"]
        )
        with pytest.raises(visitors.VisitorError):
            visitors.register(
                store,
                site="mine-a",
                name="Other",
                key=tag_key(2, 1),
                now=at("08:00"),
                actor="gate",
            )

        audit.record(
            store,
            now=T0,
            actor="t",
            action="GET x",
            params={"person": "W001"},
            rows=1,
            status=200,
        )
        entry = store.list_audit(1)[0]
        assert entry["params"]["person"].startswith("h:")
        with pytest.raises(Exception, match="append-only"):
            store._execute("DELETE FROM audit_log")
    finally:
        store.close()
