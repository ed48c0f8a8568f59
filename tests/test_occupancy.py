"""Occupancy: distinct people per minute; site beacons as radio proof."""

from __future__ import annotations

import datetime as dt

from gateway.aggregate import PresenceAggregator
from gateway.bands import Bands
from gateway.occupancy import BaseKey, Occupancy, SiteBeacons
from gateway.zones import rules_for


def test_distinct_people_per_minute_and_radio():
    a = PresenceAggregator(
        gateway="g",
        zone="z",
        zone_kind="shift_room",
        rules=rules_for("shift_room"),
        bands=Bands(),
    )
    occ = Occupancy(
        gateway="g",
        zone="z",
        interval_s=60,
        delay_s=0,
        counts=a.counts_now,
        beacons_expected=1,
    )
    for t in range(0, 120, 5):
        occ.person(t, a.add(t, "ibeacon:p:1:1", "ibeacon", "A", -60))
        if t < 60:
            occ.person(t, a.add(t, "ibeacon:p:1:2", "ibeacon", "B", -60))
        occ.site_beacon(t, "ibeacon:site:0:0")
    recs = occ.advance(200)
    assert [(r["t"], r["count"]) for r in recs] == [(0, 2), (60, 1), (120, 0)]
    assert recs[0]["radio"]["site_beacons"] == 1
    assert recs[0]["radio"]["site_beacon_sightings"] == 12
    assert recs[2]["radio"]["site_beacons"] == 0


def test_bus_passerby_not_counted():
    a = PresenceAggregator(
        gateway="g", zone="z", zone_kind="bus", rules=rules_for("bus"), bands=Bands()
    )
    occ = Occupancy(
        gateway="g", zone="z", interval_s=60, delay_s=0, counts=a.counts_now
    )
    for t in range(0, 600, 5):
        occ.person(t, a.add(t, "gaen:rider", "gaen", "A", -70))
    for t in range(100, 160, 5):
        occ.person(t, a.add(t, "gaen:stop", "gaen", "B", -70))
    recs = occ.advance(700)
    assert [r["count"] for r in recs[:4]] == [1, 1, 1, 1]


def test_site_beacon_rotating_ids_from_base_key():
    from beacon import bluezone

    base = bytes(range(32))
    created = dt.date(2020, 8, 1)
    sb = SiteBeacons(base_keys=[BaseKey(base, created)])
    t = bluezone.midnight_of(dt.date(2020, 8, 8)) + 3600.0
    daily = bluezone.daily_key_from_base(base, 7)
    slot = bluezone.slot_of(t)
    key = "bluezone:" + bluezone.ids_for_day(daily)[slot].hex()
    assert sb.match(key, t)
    assert not sb.match("bluezone:" + "00" * 12, t)
    assert not sb.match(key, None)
