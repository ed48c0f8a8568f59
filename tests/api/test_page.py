"""The ops page in a real headless Chromium (Debian's /usr/bin/chromium driven by
playwright; nothing is downloaded): sign in with a token, look up a case of the
replayed site, check contacts, the network picture, the occupancy chart, the gate
log and the fleet table; screenshots at desktop and phone widths go to
test-artifacts/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.api.conftest import Live

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def opened_case(live: Live) -> dict:
    status, case, _ = live.call(
        "POST",
        "/api/v1/cases",
        {
            "subject_kind": "person",
            "subject": "W001",
            "onset_date": "2026-03-02",
            "isolation": "2026-03-02",
            "label": "bus-07 cluster",
        },
    )
    assert status == 201
    status, case, _ = live.call("POST", f"/api/v1/cases/{case['id']}/expand")
    assert status == 200
    return case


def _sign_in(page, live: Live) -> None:
    page.goto(live.url + "/")
    page.fill("#token", live.ops)
    page.click("#signin")
    page.wait_for_selector("#who:not([hidden])")
    assert "ops" in page.inner_text("#who-label")


def test_case_lookup_chart_gate_and_fleet(
    browser, live: Live, opened_case: dict, artifacts_dir: Path
):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console", lambda msg: errors.append(msg.text) if msg.type == "error" else None
    )
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    _sign_in(page, live)

    # Look up the case by the person, as ops would.
    page.fill("#case-search", "W001")
    page.click("#case-find")
    page.wait_for_selector("#contacts-table tbody tr")
    assert "Nguyen Van An" in page.inner_text("#case-title")
    rows = page.locator("#contacts-table tbody tr")
    text = page.inner_text("#contacts-table")
    for name in ("Tran Thi Binh", "Le Van Cuong", "Pham Thi Dung", "Vu Thi Giang"):
        assert name in text
    assert "Hoang Van Em" not in text  # 10 minutes in room-a: below the rule
    assert rows.count() == 4
    assert "bus-07" in page.inner_text("#places-table")
    assert "gw-room-a" in page.inner_text("#case-warnings")
    # The network picture: the case, 3 F1 and 1 F2, with edges.
    assert page.locator("#case-network svg .node").count() == 5
    assert page.locator("#case-network svg .node.f2").count() == 1
    assert page.locator("#case-network svg line").count() >= 4
    # Change a status from the page; the API has it.
    binh = page.locator("#contacts-table tbody tr", has_text="Tran Thi Binh")
    binh.locator("select").select_option("quarantined")
    page.wait_for_selector("#contacts-table tbody tr.s-quarantined")
    case = live.call("GET", f"/api/v1/cases/{opened_case['id']}")[1]
    assert (
        next(c for c in case["contacts"] if c["person"] == "W002")["status"]
        == "quarantined"
    )
    page.screenshot(path=str(artifacts_dir / "ops-case-desktop.png"), full_page=True)

    # Occupancy of room-a over the replayed day, drawn as SVG bars with data.
    page.click("#tabs button[data-tab=occupancy]")
    page.select_option("#occ-zone", "room-a")
    page.fill("#occ-day", "2026-03-02")
    page.click("#occ-show")
    page.wait_for_selector("#occ-chart svg .bars rect", state="attached")
    bars = page.locator("#occ-chart svg .bars rect")
    assert bars.count() == 96  # 15-minute buckets
    # 07:00-07:15: W001, W004 and W005 (who stayed 10 minutes)
    present = [
        int(v) for v in bars.evaluate_all("els => els.map(e => e.dataset.present)")
    ]
    assert max(present) == 3
    assert sum(1 for v in present if v > 0) >= 12
    assert page.locator("#occ-chart svg polyline.reported").count() == 1
    assert "peak 3" in page.inner_text("#occ-summary")
    page.screenshot(
        path=str(artifacts_dir / "ops-occupancy-desktop.png"), full_page=True
    )

    # Gate log of the day.
    page.click("#tabs button[data-tab=gate]")
    page.select_option("#gate-site", "mine-a")
    page.fill("#gate-day", "2026-03-02")
    page.click("#gate-show")
    page.wait_for_selector("#gate-table tbody tr")
    assert page.locator("#gate-table tbody tr").count() == 8
    assert page.locator("#gate-chart svg rect.in").count() == 24
    assert "Nguyen Van An" in page.inner_text("#gate-table")
    page.screenshot(path=str(artifacts_dir / "ops-gate-desktop.png"), full_page=True)

    # Fleet table: four gateways, the offline one flagged down.
    page.click("#tabs button[data-tab=fleet]")
    page.wait_for_selector("#fleet-table tbody tr")
    fleet = page.locator("#fleet-table tbody tr")
    assert fleet.count() == 4
    yard = page.locator("#fleet-table tbody tr[data-gateway=gw-yard-3]")
    assert "down" in yard.inner_text()
    assert "offline" in yard.inner_text()
    room = page.locator("#fleet-table tbody tr[data-gateway=gw-room-a]")
    assert "40 missing" in room.inner_text()
    page.screenshot(path=str(artifacts_dir / "ops-fleet-desktop.png"), full_page=True)

    assert not errors, errors
    # Nothing but this server was contacted.
    assert all(u.startswith(live.url) for u in requests), requests
    context.close()


def test_phone_width_and_print(
    browser, live: Live, opened_case: dict, artifacts_dir: Path
):
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    page = context.new_page()
    _sign_in(page, live)
    page.fill("#case-search", "W001")
    page.click("#case-find")
    page.wait_for_selector("#contacts-table tbody tr")
    # Nothing wider than the screen but the scrolling table boxes.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 392, width
    page.screenshot(path=str(artifacts_dir / "ops-case-phone.png"), full_page=True)
    page.click("#tabs button[data-tab=fleet]")
    page.wait_for_selector("#fleet-table tbody tr")
    assert page.evaluate("document.documentElement.scrollWidth") <= 392
    page.screenshot(path=str(artifacts_dir / "ops-fleet-phone.png"), full_page=True)
    # The printable case page (what the Print button opens).
    status, html, _ = live.call("GET", f"/api/v1/cases/{opened_case['id']}/print")
    assert status == 200
    printable = context.new_page()
    printable.set_content(html)
    assert "Pham Thi Dung" in printable.inner_text("body")
    printable.screenshot(path=str(artifacts_dir / "ops-case-print.png"), full_page=True)
    context.close()
