"""Pure: the contact rule and its reference implementation (design.md, "The contacts
answer"; central-reference.md section 6).

The rule, after Vietnam's Ministry of Health (1909/BYT-DP, 2022) and CDC (Oct 2020):

- Enclosed zone (bus, shift room, dormitory, entrance): sharing the zone for at least
  `min_minutes` cumulative within the worst `window_h` hours makes an F1 ("same narrow,
  enclosed space for 15 minutes").
- Open zone (yard): both must also have been in the near band. A presence record
  carries only how many seconds it spent in each band (`band_s`), not when, so the
  near time two records can have shared is bounded by
  ``min(overlap, near_s(case record), near_s(contact record))``. We credit that upper
  bound: the rule never misses a contact that could have been near for N minutes, at
  the price of a few extra F1 in crowded yards (the conservative side for public
  health). Credits are spread evenly over the overlap and capped at one second per
  second, so two gateways hearing the same pair never count the same minute twice.
- `--depth 2`: every F1's own contacts from the F1's first shared minute with the case
  to the end of the query window (F2 per MoH 3638/QD-BYT: "from when F1 could have
  been infected until isolated").

Every threshold is a field of `Rule` and is recorded in the answer. Everything here is
pure: rows and reference data come in, the JSON-ready answer goes out.
`reference_contacts` is the slow full-scan implementation the SQL path
(`central.contacts`) is tested against.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final, NamedTuple

DEFAULT_OPEN_KINDS: Final = frozenset({"yard"})
BANDS: Final = ("immediate", "near", "far")


@dataclass(frozen=True, slots=True)
class Rule:
    min_minutes: float = 15.0
    window_h: float = 24.0
    near_bands: tuple[str, ...] = ("immediate", "near")
    clock_error_s: float = 120.0
    slots_per_day: int = 96
    merge_gap_s: float = 120.0
    # A device heard at the same time in two enclosed zones of a site was in one of
    # them: each overlapping period goes to the zone where it was heard strongest
    # (`strongest_zone`, below).
    strongest_zone: bool = True
    # ... except the first and last `handover_s` of a louder period that begins or ends
    # while the device is still heard in the room: it was walking between the two, and
    # two gateways' clocks agree only within clock_error_s (120 s) anyway.
    handover_s: float = 120.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["near_bands"] = list(self.near_bands)
        return out


class PresenceRow(NamedTuple):
    """One stored presence record (edge record format, design.md).

    A NamedTuple rather than a frozen dataclass: a contacts query builds ~10^4 of
    these, and tuple construction is several times cheaper (bench/central.py)."""

    gateway: str
    boot: int
    seq: int
    site: str
    zone: str | None
    zone_kind: str | None
    key: str
    keys: tuple[str, ...]
    start: float
    end: float
    immediate_s: float = 0.0
    near_s: float = 0.0
    far_s: float = 0.0
    rssi_median: float | None = None  # dBm as heard (None: the gateway did not say)

    @property
    def all_keys(self) -> tuple[str, ...]:
        return self.keys if self.key in self.keys else (self.key, *self.keys)

    def band_seconds(self, bands: Iterable[str]) -> float:
        total = 0.0
        for band in bands:
            if band == "immediate":
                total += self.immediate_s
            elif band == "near":
                total += self.near_s
            elif band == "far":
                total += self.far_s
        return total


@dataclass(frozen=True, slots=True)
class ZoneRef:
    zone: str
    kind: str
    enclosed: bool
    site: str | None = None


@dataclass(frozen=True, slots=True)
class Interval:
    start: float
    end: float | None  # None: still valid
    value: str

    def covers(self, t: float) -> bool:
        return self.start <= t and (self.end is None or t < self.end)


@dataclass(slots=True)
class RefData:
    """Reference data needed by the rule: zones, gateway->zone and key->person over time."""

    zones: dict[str, ZoneRef] = field(default_factory=dict)
    gateway_zones: dict[str, list[Interval]] = field(default_factory=dict)
    tags: dict[str, list[Interval]] = field(default_factory=dict)

    def zone_of(self, row: PresenceRow) -> ZoneRef | None:
        """The zone at the record's start: reference data first (a bus gateway moves),
        else what the gateway reported about itself."""
        for interval in self.gateway_zones.get(row.gateway, ()):
            if interval.covers(row.start):
                return self.zones.get(interval.value) or ZoneRef(
                    interval.value, "unknown", True
                )
        if row.zone is None:
            return None
        known = self.zones.get(row.zone)
        if known is not None:
            return known
        kind = row.zone_kind or "unknown"
        return ZoneRef(row.zone, kind, kind not in DEFAULT_OPEN_KINDS)

    def person_of(self, key: str, t: float) -> str | None:
        for interval in self.tags.get(key, ()):
            if interval.covers(t):
                return interval.value
        return None

    def keys_of(self, person: str) -> list[Interval]:
        """(key, validity) of every tag ever assigned to `person`; value = key."""
        out = [
            Interval(interval.start, interval.end, key)
            for key, intervals in self.tags.items()
            for interval in intervals
            if interval.value == person
        ]
        return sorted(out, key=lambda i: (i.start, i.value))


@dataclass(frozen=True, slots=True)
class Seed:
    """Who the case is: a device key, a person, or Bluezone slot IDs."""

    kind: str  # "device" | "person" | "bluezone"
    value: str = ""
    # For kind "bluezone": (key, slot_start, slot_end) of every derived ID.
    slots: tuple[tuple[str, float, float], ...] = ()


# --------------------------------------------------------------------------- math


def capped_segments(
    pieces: Sequence[tuple[float, float, float]],
) -> list[tuple[float, float, float]]:
    """Sum piece densities over time, capped at 1 (one second per second)."""
    events: list[tuple[float, float]] = []
    for a, b, d in pieces:
        if b > a and d > 0:
            events.append((a, d))
            events.append((b, -d))
    events.sort()
    out: list[tuple[float, float, float]] = []
    level = 0.0
    prev: float | None = None
    for t, delta in events:
        if prev is not None and t > prev and level > 1e-12:
            d = min(1.0, level)
            if out and out[-1][1] == prev and abs(out[-1][2] - d) < 1e-12:
                out[-1] = (out[-1][0], t, out[-1][2])  # coalesce: fewer segments
            else:
                out.append((prev, t, d))
        level += delta
        prev = t
    return out


def worst_window(
    segments: Sequence[tuple[float, float, float]], window_s: float
) -> tuple[float, float]:
    """(credited seconds, window start) of the worst window of length `window_s`.

    `segments` are disjoint and sorted (as `capped_segments` returns them). The
    credited time in [s, s+W] is piecewise linear in s, so its maximum is at a window
    starting at a segment start or ending at a segment end; each candidate is
    evaluated with prefix sums and two binary searches (O(n log n))."""
    if not segments:
        return 0.0, 0.0
    starts = [a for a, _b, _d in segments]
    ends = [b for _a, b, _d in segments]
    prefix = [0.0]
    for a, b, d in segments:
        prefix.append(prefix[-1] + d * (b - a))
    candidates = sorted(set(starts) | {b - window_s for b in ends})
    best = (-1.0, 0.0)
    for s in candidates:
        e = s + window_s
        i = bisect.bisect_right(ends, s)  # first segment ending after s
        j = bisect.bisect_left(starts, e)  # segments i..j-1 start before e
        if j <= i:
            continue
        total = prefix[j] - prefix[i]
        a, b, d = segments[i]
        if a < s:
            total -= d * (s - a)
        a, b, d = segments[j - 1]
        if b > e:
            total -= d * (b - e)
        if total > best[0] + 1e-9:
            best = (total, s)
    return best if best[0] >= 0 else (0.0, 0.0)


def iso(t: float) -> str:
    stamp = dt.datetime.fromtimestamp(t, tz=dt.UTC)
    if stamp.microsecond:
        return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return stamp.isoformat(timespec="seconds").replace("+00:00", "Z")


# ------------------------------------------------------------------------ the rule


class Resolved(NamedTuple):
    """A row with its zone and person resolved and its times clipped to the window."""

    row: PresenceRow
    zone: ZoneRef
    start: float  # clipped to the window
    end: float
    person: str | None
    ident: str  # "person:<id>" or "key:<device key>": whom the contact is about


def resolve(
    rows: Iterable[PresenceRow], ref: RefData, t0: float, t1: float
) -> list[Resolved]:
    out = []
    moving = ref.gateway_zones
    reported: dict[tuple[str | None, str | None], ZoneRef | None] = {}
    tags = ref.tags
    for row in rows:
        start = row.start if row.start > t0 else t0
        end = row.end if row.end < t1 else t1
        if end <= start:
            continue
        intervals = moving.get(row.gateway)
        if intervals is not None:
            zone = None
            for iv in intervals:
                if iv.start <= row.start and (iv.end is None or row.start < iv.end):
                    zone = ref.zones.get(iv.value) or ZoneRef(iv.value, "unknown", True)
                    break
            else:
                zone = ref.zone_of(row)  # not covered: what the gateway reported
        else:  # the common case: the zone the gateway reported (cached per zone)
            zkey = (row.zone, row.zone_kind)
            if zkey in reported:
                zone = reported[zkey]
            else:
                zone = reported[zkey] = ref.zone_of(row)
        if zone is None:
            continue
        person = ref.person_of(row.key, row.start) if row.key in tags else None
        out.append(
            Resolved(
                row,
                zone,
                start,
                end,
                person,
                ("person:" + person) if person else ("key:" + row.key),
            )
        )
    return out


def identity(item: Resolved) -> str:
    return item.ident


def strongest_zone(
    items: Sequence[Resolved], heard: Iterable[Resolved], handover_s: float = 0.0
) -> list[Resolved]:
    """Each enclosed item without the periods in which the same device was heard
    more strongly in ANOTHER zone of the same site.

    A person is in one place at a time. Gateways of neighbouring rooms (dormitory
    rooms side by side, a shift room next to the bus bay) hear each other's occupants
    through the wall, weaker by the wall's loss, and rooms next to an open yard hear
    the people working outside; only central sees both gateways. So for every period
    where one device key (any of a record's keys) is in an enclosed zone and in
    another zone at once, the period belongs to the zone whose record has the
    strongest `rssi_median`; a weaker enclosed record loses exactly that period (it
    may split in two). Open-zone records are never cut (their near-band seconds are
    not spread over time, so they could not be cut honestly; the open rule needs the
    near band anyway), but they do take periods from rooms. Equal medians, a missing
    median and other sites are left alone: the rule only removes time when the radio
    says where the device was.

    `heard` must hold every resolved record that shares a key with an item and
    overlaps it (the reference passes everything; the store path fetches them by
    key): the answer depends on nothing else, so both paths agree. `handover_s`: the
    margin at the edges of a louder period that it does not take (Rule.handover_s)."""
    by_key: dict[str, list[Resolved]] = defaultdict(list)
    for h in heard:
        if h.row.rssi_median is not None:
            for k in h.row.all_keys:
                by_key[k].append(h)
    # Per key: records sorted by start, their starts, and the longest one, so that
    # the records overlapping an item are one bisected slice (a tag's key has every
    # record of the window).
    index: dict[str, tuple[list[float], list[Resolved], float]] = {}
    for k, hs in by_key.items():
        hs.sort(key=lambda h: h.start)
        index[k] = ([h.start for h in hs], hs, max(h.end - h.start for h in hs))
    out: list[Resolved] = []
    for item in items:
        row = item.row
        rssi = row.rssi_median
        if not item.zone.enclosed or rssi is None:
            out.append(item)
            continue
        cuts: list[tuple[float, float]] = []
        for k in row.all_keys:
            entry = index.get(k)
            if entry is None:
                continue
            starts, hs, longest = entry
            lo = bisect.bisect_left(starts, item.start - longest)
            hi = bisect.bisect_left(starts, item.end)
            for h in hs[lo:hi]:
                hr = h.row
                if (
                    h.end > item.start
                    and hr.rssi_median is not None
                    and hr.rssi_median > rssi
                    and h.zone.zone != item.zone.zone
                    and hr.site == row.site
                ):
                    cuts.append((h.start, h.end))  # repeats are harmless: a union
        if not cuts:
            out.append(item)
            continue
        cuts.sort()
        merged: list[tuple[float, float]] = []
        for a, b in cuts:  # consecutive parts of one stay are one louder period
            if merged and a <= merged[-1][1]:
                if b > merged[-1][1]:
                    merged[-1] = (merged[-1][0], b)
            else:
                merged.append((a, b))
        # Where a louder period begins or ends inside the item, the device was moving
        # between the two zones: the last gateway keeps hearing it for a while after
        # it left (a record ends at its last sighting), and a record's median says
        # nothing about its edges. That margin is not taken.
        shrunk = []
        for a, b in merged:
            if a > item.start:
                a += handover_s
            if b < item.end:
                b -= handover_s
            if b > a:
                shrunk.append((a, b))
        cursor = item.start
        for a, b in shrunk:
            if a > cursor:
                out.append(item._replace(start=cursor, end=min(a, item.end)))
            cursor = max(cursor, b)
            if cursor >= item.end:
                break
        if cursor < item.end:
            out.append(item._replace(start=cursor, end=item.end))
    return out


def without_keys(items: Iterable[Resolved], keys: frozenset[str]) -> list[Resolved]:
    """Drop records carrying any of `keys` (the site's own beacons: not people)."""
    if not keys:
        return list(items)
    return [i for i in items if keys.isdisjoint(i.row.all_keys)]


def exposures(case: Sequence[Resolved], rule: Rule) -> list[dict[str, Any]]:
    """Places and times the case was seen, merged per (zone, gateway)."""
    groups: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for item in case:
        groups[(item.zone.zone, item.row.gateway)].append((item.start, item.end))
    out = []
    for (zone, gateway), spans in groups.items():
        spans.sort()
        cur_a, cur_b = spans[0]
        for a, b in spans[1:]:
            if a <= cur_b + rule.merge_gap_s:
                cur_b = max(cur_b, b)
            else:
                out.append((cur_a, zone, gateway, cur_b))
                cur_a, cur_b = a, b
        out.append((cur_a, zone, gateway, cur_b))
    out.sort()
    return [
        {"zone": z, "gateway": g, "from": iso(a), "to": iso(b)} for a, z, g, b in out
    ]


def evaluate(
    case: Sequence[Resolved],
    others: Iterable[Resolved],
    rule: Rule,
    *,
    exclude: Callable[[Resolved], bool],
) -> list[dict[str, Any]]:
    """Apply the rule between the case's presence and everyone else's.

    Returns contacts (without `level`) that meet the rule, with the internal fields
    `_first_t`, `_keys` and `_person` that depth 2 needs."""
    by_zone: dict[str, list[Resolved]] = defaultdict(list)
    for item in case:
        by_zone[item.zone.zone].append(item)
    for items in by_zone.values():
        items.sort(key=lambda i: i.start)
    starts = {z: [i.start for i in items] for z, items in by_zone.items()}
    max_len = max((i.end - i.start for i in case), default=0.0)
    # In an enclosed zone only WHEN the case was there matters: intersect with the
    # union of the case's stays (one piece per stay instead of one per record pair).
    spans: dict[str, tuple[list[float], list[float]]] = {}
    for zone_name, items in by_zone.items():
        span_a: list[float] = []
        span_b: list[float] = []
        for i in items:
            if span_b and i.start <= span_b[-1]:
                span_b[-1] = max(span_b[-1], i.end)
            else:
                span_a.append(i.start)
                span_b.append(i.end)
        spans[zone_name] = (span_a, span_b)

    pieces: dict[str, list[tuple[float, float, float, str, bool]]] = defaultdict(list)
    contributors: dict[str, list[Resolved]] = defaultdict(list)
    near_bands = rule.near_bands
    for other in others:
        zone = other.zone.zone
        zone_items = by_zone.get(zone)
        if not zone_items or exclude(other):
            continue
        o_start = other.start
        o_end = other.end
        found: list[tuple[float, float, float, str, bool]] = []
        if other.zone.enclosed:
            span_a, span_b = spans[zone]
            k = bisect.bisect_right(span_b, o_start)
            while k < len(span_a) and span_a[k] < o_end:
                a = span_a[k] if span_a[k] > o_start else o_start
                b = span_b[k] if span_b[k] < o_end else o_end
                if b > a:
                    found.append((a, b, 1.0, zone, True))
                k += 1
        else:
            # Case records starting before other.end and ending after other.start.
            zone_starts = starts[zone]
            hi = bisect.bisect_left(zone_starts, o_end)
            lo = bisect.bisect_left(zone_starts, o_start - max_len)
            other_near = other.row.band_seconds(near_bands)
            for c in zone_items[lo:hi]:
                a = max(c.start, o_start)
                b = min(c.end, o_end)
                if b <= a:
                    continue
                credit = min(b - a, c.row.band_seconds(near_bands), other_near)
                if credit > 0:
                    found.append((a, b, credit / (b - a), zone, False))
        if found:
            ident = other.ident
            pieces[ident].extend(found)
            contributors[ident].append(other)

    window_s = rule.window_h * 3600.0
    threshold_s = rule.min_minutes * 60.0
    contacts: list[dict[str, Any]] = []
    for ident, plist in pieces.items():
        # Uncapped total is an upper bound of any window's credit: most candidates
        # stop here without building segments.
        if sum(d * (b - a) for a, b, d, _z, _e in plist) + 1e-6 < threshold_s:
            continue
        segments = capped_segments([(a, b, d) for a, b, d, _z, _e in plist])
        credited, _start = worst_window(segments, window_s)
        if credited + 1e-6 < threshold_s:
            continue
        if all(e for *_x, e in plist):
            enclosed_s = credited
        else:
            enclosed_only = capped_segments(
                [(a, b, d) for a, b, d, _z, e in plist if e]
            )
            enclosed_s, _ = worst_window(enclosed_only, window_s)
        per_zone: dict[str, float] = defaultdict(float)
        for a, b, d, z, _e in plist:
            per_zone[z] += d * (b - a)
        zone = max(sorted(per_zone), key=lambda z: per_zone[z])
        rows = contributors[ident]
        keys = sorted({k for r in rows for k in r.row.all_keys})
        first_row = min(rows, key=lambda r: (r.row.start, r.row.key))
        person = first_row.person
        contacts.append(
            {
                "key": first_row.row.key,
                "keys": keys,
                "person": person,
                "zone": zone,
                "first": iso(min(a for a, *_ in plist)),
                "last": iso(max(b for _a, b, *_ in plist)),
                "minutes": round(credited / 60.0, 2),
                "class": "F1_enclosed"
                if enclosed_s + 1e-6 >= threshold_s
                else "F1_proximity",
                "_first_t": min(a for a, *_ in plist),
                "_identity": ident,
            }
        )
    contacts.sort(key=lambda c: (-c["minutes"], c["_identity"]))
    return contacts


def seed_rows(
    seed: Seed, rows: Iterable[PresenceRow], ref: RefData, rule: Rule
) -> list[PresenceRow]:
    """The case's own presence records among `rows` (full scan)."""
    out = []
    if seed.kind == "device":
        out = [r for r in rows if seed.value in r.all_keys]
    elif seed.kind == "person":
        tags = ref.keys_of(seed.value)
        for r in rows:
            for tag in tags:
                if tag.value in r.all_keys and tag.covers(r.start):
                    out.append(r)
                    break
    elif seed.kind == "bluezone":
        by_key: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for key, a, b in seed.slots:
            by_key[key].append((a, b))
        err = rule.clock_error_s
        for r in rows:
            if any(
                r.start < b + err and r.end > a - err
                for k in r.all_keys
                for a, b in by_key.get(k, ())
            ):
                out.append(r)
    else:
        raise ValueError(f"unknown seed kind {seed.kind!r}")
    return out


def finish(
    case_desc: Mapping[str, Any],
    exposure_list: list[dict[str, Any]],
    level1: list[dict[str, Any]],
    level2: list[dict[str, Any]],
) -> dict[str, Any]:
    contacts = []
    for level, group in ((1, level1), (2, level2)):
        for c in group:
            item = {k: v for k, v in c.items() if not k.startswith("_")}
            item["level"] = level
            contacts.append(item)
    return {"case": dict(case_desc), "exposures": exposure_list, "contacts": contacts}


def reference_contacts(
    rows: Sequence[PresenceRow],
    ref: RefData,
    seed: Seed,
    t0: float,
    t1: float,
    rule: Rule,
    *,
    depth: int = 1,
    case_desc: Mapping[str, Any] | None = None,
    beacon_keys: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The rule by full scan of every row: slow, obviously right, the test oracle.

    `beacon_keys`: IDs of the site's registered beacons in the window (never people)."""
    case_rows = seed_rows(seed, rows, ref, rule)
    heard = resolve(rows, ref, t0, t1)

    def attribute(items: Sequence[Resolved]) -> list[Resolved]:
        if not rule.strongest_zone:
            return list(items)
        return strongest_zone(items, heard, rule.handover_s)

    case = attribute(resolve(case_rows, ref, t0, t1))
    case_ids = {identity(c) for c in case}
    case_keys = {k for c in case for k in c.row.all_keys}
    case_person = seed.value if seed.kind == "person" else None
    case_ids |= {f"person:{case_person}"} if case_person else set()
    everyone = without_keys(attribute(heard), beacon_keys)

    def not_case(item: Resolved) -> bool:
        return identity(item) in case_ids or bool(
            case_keys.intersection(item.row.all_keys)
        )

    level1 = evaluate(case, everyone, rule, exclude=not_case)
    level2: list[dict[str, Any]] = []
    if depth >= 2:
        level2 = expand(
            level1,
            rows,
            ref,
            t1,
            rule,
            excluded_ids=case_ids | {c["_identity"] for c in level1},
            excluded_keys=case_keys,
            fetch=lambda keys, a, b: [r for r in rows if set(keys) & set(r.all_keys)],
            others=lambda a, b, _case: without_keys(
                attribute(resolve(rows, ref, a, b)), beacon_keys
            ),
            attribute=attribute,
        )
    return finish(case_desc or {}, exposures(case, rule), level1, level2)


def expand(
    level1: Sequence[dict[str, Any]],
    rows_unused: Sequence[PresenceRow] | None,
    ref: RefData,
    t1: float,
    rule: Rule,
    *,
    excluded_ids: set[str],
    excluded_keys: set[str],
    fetch: Callable[[Sequence[str], float, float], Sequence[PresenceRow]],
    others: Callable[[float, float, Sequence[Resolved]], Iterable[Resolved]],
    attribute: Callable[[Sequence[Resolved]], list[Resolved]] = list,
) -> list[dict[str, Any]]:
    """F2: each F1's contacts from its first shared minute with the case to `t1`.

    `attribute`: the strongest-zone cut applied to the F1's own records (the caller's
    `others` applies it to everyone else's)."""
    best: dict[str, dict[str, Any]] = {}
    for f1 in level1:
        a = f1["_first_t"]
        keys = list(f1["keys"])
        person = f1["person"]
        rows = list(fetch(keys, a, t1))
        if person:
            tags = ref.keys_of(person)
            tag_keys = [t.value for t in tags]
            rows_p = fetch(tag_keys, a, t1)
            seen = {(r.gateway, r.boot, r.seq) for r in rows}
            for r in rows_p:
                if (r.gateway, r.boot, r.seq) in seen:
                    continue
                if any(t.value in r.all_keys and t.covers(r.start) for t in tags):
                    rows.append(r)
        f1_keys = set(keys)
        f1_rows = [
            r
            for r in rows
            if f1_keys.intersection(r.all_keys)
            or (person is not None and ref.person_of(r.key, r.start) == person)
        ]
        f1_case = attribute(resolve(f1_rows, ref, a, t1))
        f1_all_keys = {k for c in f1_case for k in c.row.all_keys} | f1_keys

        def excl(item: Resolved, _k: set[str] = f1_all_keys) -> bool:
            return (
                identity(item) in excluded_ids
                or bool(excluded_keys.intersection(item.row.all_keys))
                or bool(_k.intersection(item.row.all_keys))
            )

        found = evaluate(f1_case, others(a, t1, f1_case), rule, exclude=excl)
        via = f1["person"] or f1["key"]
        for c in found:
            c["via"] = [via]
            prev = best.get(c["_identity"])
            if prev is None:
                best[c["_identity"]] = c
            else:
                vias = sorted(set(prev["via"]) | {via})
                if c["minutes"] > prev["minutes"]:
                    best[c["_identity"]] = c
                best[c["_identity"]]["via"] = vias
    out = list(best.values())
    out.sort(key=lambda c: (-c["minutes"], c["_identity"]))
    return out
