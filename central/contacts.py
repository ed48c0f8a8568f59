"""Contacts of a case through the store's indexes (design.md "The contacts answer").

The rule itself is `central.rules` (pure); this module only decides which rows to
read, so the answer equals `rules.reference_contacts` over the whole table (the
differential test holds both stores to that):

1. the case's own records: by key through the (key, t_start) index and the chained-key
   table; by person through the tag assignments valid at each record's start; by a
   Bluezone daily key through the IDs of every slot of the window, regenerated here
   and matched within [slot_start - clock_error, slot_end + clock_error];
2. for each zone the case was in, the gateways that were in that zone during the
   case's stay (reference data over time, or the zone the gateway reported), read by
   range scans of the (gateway, t_start) index bounded by the longest record;
3. with `Rule.strongest_zone`, every record sharing a key with those rows, in any
   zone (`presence_by_keys`), so that `rules.strongest_zone` can give each period a
   device was in two enclosed zones at once to the louder one;
4. the registered beacons' IDs of the window (`beacon_keys`), left out: not people;
5. the rule on those rows only.

A disclosed daily key reveals every later day's IDs (forward hash chain), so it never
leaves this function: the answer records how many IDs were derived and for which
day, not the key nor anything computed from it but the IDs' matches.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from beacon.bluezone import ids_in_window
from central import rules
from central.rules import PresenceRow, RefData, Resolved, Rule, Seed
from central.store import SqlStore


def bluezone_seed(
    daily_key_hex: str, key_date: dt.date, t0: float, t1: float, rule: Rule
) -> Seed:
    """Derive the (ID, slot) pairs of the window; the key is not kept in the Seed."""
    text = daily_key_hex.strip().lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise ValueError("a Bluezone daily key is 64 hex digits")
    slots = tuple(
        (s.key, s.start, s.end)
        for s in ids_in_window(
            bytes.fromhex(text), key_date, t0, t1, rule.slots_per_day
        )
    )
    return Seed("bluezone", key_date.isoformat(), slots)


def case_description(
    seed: Seed, t0: float, t1: float, rule: Rule, depth: int
) -> dict[str, Any]:
    desc: dict[str, Any] = {}
    if seed.kind == "device":
        desc = {"by": "device", "device": seed.value}
    elif seed.kind == "person":
        desc = {"by": "person", "person": seed.value}
    else:
        desc = {
            "by": "bluezone-daily-key",
            "key_date": seed.value,
            "derived_ids": len(seed.slots),
        }
    desc.update(
        {
            "from": rules.iso(t0),
            "to": rules.iso(t1),
            "depth": depth,
            "rule": rule.as_dict(),
        }
    )
    return desc


def seed_candidates(
    store: SqlStore, seed: Seed, ref: RefData, t0: float, t1: float, rule: Rule
) -> list[PresenceRow]:
    if seed.kind == "device":
        rows = store.presence_by_keys([seed.value], t0, t1)
    elif seed.kind == "person":
        rows = store.presence_by_keys(
            [t.value for t in ref.keys_of(seed.value)], t0, t1
        )
    else:
        err = rule.clock_error_s
        rows = store.presence_by_keys(
            [k for k, _a, _b in seed.slots], t0 - err, t1 + err
        )
    return rules.seed_rows(seed, rows, ref, rule)


def zone_gateways(
    store: SqlStore, ref: RefData, zone: str, a: float, b: float, max_len: float
) -> set[str]:
    """Gateways whose records may resolve to `zone` and overlap [a, b)."""
    gateways = set(store.gateways_seen_in(zone))
    for gateway, intervals in ref.gateway_zones.items():
        for iv in intervals:
            if (
                iv.value == zone
                and iv.start < b
                and (iv.end is None or iv.end > a - max_len)
            ):
                gateways.add(gateway)
    return gateways


def candidates(
    store: SqlStore, ref: RefData, case: Sequence[Resolved], t0: float, t1: float
) -> list[Resolved]:
    """Everyone's resolved rows that may share a zone and time with `case`."""
    max_len = store.max_presence_s()
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for item in case:
        spans[item.zone.zone].append((item.start, item.end))
    rows: dict[tuple[str, int, int], PresenceRow] = {}
    for zone, items in spans.items():
        items.sort()
        merged: list[list[float]] = []
        for a, b in items:
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        for a, b in merged:
            gateways = zone_gateways(store, ref, zone, a, b, max_len)
            for row in store.presence_at_gateways(sorted(gateways), a, b):
                rows[(row.gateway, row.boot, row.seq)] = row
    wanted = set(spans)
    return [
        r for r in rules.resolve(rows.values(), ref, t0, t1) if r.zone.zone in wanted
    ]


def beacon_keys(store: SqlStore, t0: float, t1: float) -> frozenset[str]:
    """IDs every registered beacon (retired ones too, for their period) used in
    [t0, t1): a beacon is heard like a phone but is not a person (beacon_check)."""
    from central.beacon_check import beacon_index
    from central.commands.beacon import registered

    beacons = registered(store, include_retired=True)
    return frozenset(beacon_index(beacons, t0, t1)) if beacons else frozenset()


def _clusters(spans: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def heard_with(
    store: SqlStore,
    ref: RefData,
    items: Sequence[Resolved],
    t0: float,
    t1: float,
    *,
    within: Sequence[tuple[float, float]] | None = None,
    margin_s: float = 0.0,
) -> list[Resolved]:
    """Every record sharing a key with one of `items` (those `rules.strongest_zone`
    may cut: enclosed, with a median) and overlapping it, resolved: what the cut
    compares against (any zone, any gateway). Read per cluster of overlapping items,
    each over its own time span: a few short range scans of the (key, t_start) index
    instead of every key's whole history.

    `within`: only these periods of the items matter (the case's stays: the rule
    intersects everyone else's records with them), so only records overlapping them,
    widened by `margin_s` (the hand-over margin, which depends on where a louder
    period begins), are read; the cut inside them is the same as with everything."""
    cuttable = [i for i in items if i.zone.enclosed and i.row.rssi_median is not None]
    if not cuttable:
        return []
    if within is None:
        clusters = _clusters([(i.start, i.end) for i in cuttable])
    else:
        clusters = _clusters(within)
    starts = [a for a, _b in clusters]
    keys_of: list[set[str]] = [set() for _ in clusters]
    # Only records louder than the quietest item of a cluster can cut anything there.
    quietest = [float("inf")] * len(clusters)
    for item in cuttable:
        k = bisect.bisect_right(starts, item.start) - 1
        k = max(k, 0)
        rssi = float(item.row.rssi_median or 0.0)
        while k < len(clusters) and clusters[k][0] < item.end:
            if clusters[k][1] > item.start:
                keys_of[k].update(item.row.all_keys)
                quietest[k] = min(quietest[k], rssi)
            k += 1
    found: dict[tuple[str, int, int], PresenceRow] = {}
    for (a, b), keys, floor in zip(clusters, keys_of, quietest, strict=True):
        if not keys:
            continue
        lo = a - margin_s - 1.0
        hi = b + margin_s + 1.0
        for row in store.presence_by_keys(sorted(keys), lo, hi, louder_than=floor):
            found[(row.gateway, row.boot, row.seq)] = row
    return rules.resolve(found.values(), ref, t0, t1)


def contacts(
    store: SqlStore,
    seed: Seed,
    t0: float,
    t1: float,
    rule: Rule,
    *,
    depth: int = 1,
    ref: RefData | None = None,
    beacons: frozenset[str] | None = None,
) -> dict[str, Any]:
    """The contacts answer (JSON-ready), using the store's indexes.

    `beacons`: the IDs of registered beacons to leave out (default: from the store)."""
    if depth not in (1, 2):
        raise ValueError("depth is 1 or 2")
    ref = ref if ref is not None else store.refdata()
    beacon_ids = beacons if beacons is not None else beacon_keys(store, t0, t1)

    def attribute(
        items: Sequence[Resolved], within: Sequence[Resolved] | None = None
    ) -> list[Resolved]:
        if not rule.strongest_zone:
            return list(items)
        heard = heard_with(
            store,
            ref,
            items,
            t0,
            t1,
            within=None if within is None else [(i.start, i.end) for i in within],
            margin_s=rule.handover_s,
        )
        return rules.strongest_zone(items, heard, rule.handover_s)

    def others(a: float, b: float, case: Sequence[Resolved]) -> list[Resolved]:
        # Only the case's periods matter for everyone else (the rule intersects).
        return rules.without_keys(
            attribute(candidates(store, ref, case, a, b), within=case), beacon_ids
        )

    case_rows = seed_candidates(store, seed, ref, t0, t1, rule)
    case = attribute(rules.resolve(case_rows, ref, t0, t1))
    case_ids = {rules.identity(c) for c in case}
    if seed.kind == "person":
        case_ids.add("person:" + seed.value)
    case_keys = {k for c in case for k in c.row.all_keys}

    def not_case(item: Resolved) -> bool:
        row = item.row
        return (
            item.ident in case_ids
            or row.key in case_keys
            or (len(row.keys) > 1 and not case_keys.isdisjoint(row.keys))
        )

    level1 = rules.evaluate(case, others(t0, t1, case), rule, exclude=not_case)
    level2: list[dict[str, Any]] = []
    if depth == 2:
        level2 = rules.expand(
            level1,
            None,
            ref,
            t1,
            rule,
            excluded_ids=case_ids | {c["_identity"] for c in level1},
            excluded_keys=case_keys,
            fetch=lambda keys, a, b: store.presence_by_keys(list(keys), a, b),
            others=others,
            attribute=attribute,
        )
    return rules.finish(
        case_description(seed, t0, t1, rule, depth),
        rules.exposures(case, rule),
        level1,
        level2,
    )


def coverage_warnings(
    store: SqlStore, answer: dict[str, Any], t0: float, t1: float
) -> list[dict[str, Any]]:
    """Sequence gaps at the gateways where the case was seen, overlapping the window:
    missing data is not the same as no contact (central-reference.md Q9)."""
    gateways = sorted({e["gateway"] for e in answer["exposures"]})
    out = []
    for gateway in gateways:
        for gap in store.sequence_gaps(gateway):
            a = gap["after_t"] if gap["after_t"] is not None else t0
            b = gap["before_t"] if gap["before_t"] is not None else t1
            if a < t1 and b > t0:
                out.append(
                    {
                        "kind": "sequence-gap",
                        "gateway": gateway,
                        "boot": gap["boot"],
                        "missing_records": gap["missing"],
                        "between": [rules.iso(a), rules.iso(b)],
                    }
                )
    return out


CSV_COLUMNS = (
    "level",
    "class",
    "person",
    "key",
    "keys",
    "zone",
    "first",
    "last",
    "minutes",
    "via",
)


def csv_rows(answer: dict[str, Any]) -> list[list[str]]:
    """One row per contact (keys joined by spaces), header first."""
    out = [list(CSV_COLUMNS)]
    for c in answer["contacts"]:
        row = []
        for col in CSV_COLUMNS:
            value = c.get(col)
            if isinstance(value, list):
                value = " ".join(str(v) for v in value)
            row.append("" if value is None else str(value))
        out.append(row)
    return out
