"""Pure: distinct people per zone per interval, and this site's beacons as radio proof.

An `occupancy` record per interval (default one minute, aligned on the wall clock):
`count` is the number of distinct people heard in the zone during the interval. A
person is a presence stay (gateway/aggregate) that counts under the zone's rules, so
a phone whose ID rotated during the minute counts once when the chain was made
(twice when the evidence did not allow it: occupancy then over-counts), and a bus
stop passer-by is not a rider. The record leaves once those decisions are final:
`delay_s` after the interval (2 x handover + the zone's minimum stay).

This site's own beacons (config `site_beacons`: a fixed key, or a BlueGate beacon's
Bluezone base key whose rotating IDs are regenerated per UTC day) are not people;
their sightings go into `radio`: `site_beacons` heard / `site_beacons_expected`, and
their sighting count. A minute with people but no beacon, or with nothing at all
where a beacon is expected, is the first sign of a dead radio.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gateway.aggregate import Stay

_LOGGER = logging.getLogger(__name__)

DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class BaseKey:
    """A BlueGate beacon's Bluezone base key (its key_file) and the date it was made."""

    base_key: bytes
    created: dt.date


class SiteBeacons:
    """Is a device key one of this site's own beacons (at wall time `wall_t`)?"""

    def __init__(
        self, keys: Iterable[str] = (), base_keys: Iterable[BaseKey] = ()
    ) -> None:
        self.keys = frozenset(keys)
        self.base_keys = tuple(base_keys)
        self._day = -1
        self._day_keys: frozenset[str] = frozenset()

    @property
    def expected(self) -> int:
        return len(self.keys) + len(self.base_keys)

    def __bool__(self) -> bool:
        return self.expected > 0

    def match(self, key: str, wall_t: float | None) -> bool:
        if key in self.keys:
            return True
        if not self.base_keys or wall_t is None or not key.startswith("bluezone:"):
            return False
        day = int(wall_t // DAY_S)
        if day != self._day:
            self._day = day
            self._day_keys = self._keys_of_day(day)
        # A beacon's slot may straddle midnight at the edges: check both days' IDs.
        return key in self._day_keys

    def _keys_of_day(self, day: int) -> frozenset[str]:
        from beacon import bluezone  # the beacon's own key schedule (protocols.md 1.5)

        date = dt.datetime.fromtimestamp(day * DAY_S, tz=dt.UTC).date()
        out: set[str] = set()
        for bk in self.base_keys:
            days = (date - bk.created).days
            for d in (days - 1, days):
                if d < 0:
                    continue
                daily = bluezone.daily_key_from_base(bk.base_key, d)
                out.update("bluezone:" + i.hex() for i in bluezone.ids_for_day(daily))
        return frozenset(out)


class _Bucket:
    __slots__ = ("beacon_n", "beacons", "other_n", "stays")

    def __init__(self) -> None:
        self.stays: set[Stay] = set()
        self.beacons: set[str] = set()
        self.beacon_n = 0
        self.other_n = 0


class Occupancy:
    """Per-interval distinct people, in the pipeline's (monotonic) time.

    Intervals are aligned on the pipeline's time, which is wall time for recorded
    sources; live, they are aligned on the monotonic clock (a clock step must not
    create or swallow intervals), so `t` is on a whole minute only up to the
    fractional part of the wall-monotonic offset.
    """

    def __init__(
        self,
        *,
        gateway: str,
        zone: str,
        interval_s: float,
        delay_s: float,
        counts: Callable[[Stay], bool],
        beacons_expected: int = 0,
    ) -> None:
        self.gateway = gateway
        self.zone = zone
        self.interval_s = interval_s
        self.delay_s = delay_s
        self.counts = counts
        self.beacons_expected = beacons_expected
        self._buckets: dict[int, _Bucket] = {}
        self._next: int | None = None  # first bucket not yet emitted
        self._offset = 0.0  # wall - mono used to align buckets

    def _bucket(self, t: float) -> _Bucket:
        idx = int((t + self._offset) // self.interval_s)
        bucket = self._buckets.get(idx)
        if bucket is None:
            bucket = self._buckets[idx] = _Bucket()
            if self._next is None:
                self._next = idx
        return bucket

    def person(self, t: float, stay: Stay) -> None:
        idx = int((t + self._offset) // self.interval_s)
        if stay.occ_bucket == idx:
            return
        stay.occ_bucket = idx
        self._bucket(t).stays.add(stay)

    def site_beacon(self, t: float, key: str) -> None:
        bucket = self._bucket(t)
        bucket.beacons.add(key)
        bucket.beacon_n += 1

    def other(self, t: float) -> None:
        self._bucket(t).other_n += 1

    def advance(self, now: float, *, final: bool = False) -> list[dict[str, Any]]:
        """Records of every interval that ended `delay_s` before `now` (all if final)."""
        out: list[dict[str, Any]] = []
        if self._next is None:
            return out
        last_done = int((now + self._offset - self.delay_s) // self.interval_s) - 1
        if final:
            last_done = max(self._buckets, default=self._next)
        if not self._buckets and last_done - self._next > 1440:
            # Nothing heard for over a day of intervals: do not emit a day of zeros.
            self._next = last_done - 1440
        while self._next <= last_done:
            idx = self._next
            bucket = self._buckets.pop(idx, None) or _Bucket()
            people = {s.root() for s in bucket.stays}
            count = sum(1 for s in people if self.counts(s))
            out.append(
                {
                    "kind": "occupancy",
                    "gateway": self.gateway,
                    "zone": self.zone,
                    "t": idx * self.interval_s - self._offset,
                    "count": count,
                    "interval_s": self.interval_s,
                    "radio": {
                        "site_beacons": len(bucket.beacons),
                        "site_beacons_expected": self.beacons_expected,
                        "site_beacon_sightings": bucket.beacon_n,
                        "other_sightings": bucket.other_n,
                    },
                }
            )
            self._next = idx + 1
        return out
