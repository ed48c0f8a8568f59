"""Pure: a place's exposure alert in Bluezone's own F0 push format (protocols.md 1.6).

When a case was in a room with a BlueGate beacon, every phone that logged the
beacon's rolling IDs can find that out on the phone, exactly as for a person: the
health authority pushes `{"data": [{"daily_key", "time_start", "time_end", "max"}]}`
and each phone runs Bluezone's `checkContactF` over its own contact log.

How a phone walks one entry (BluezoneIdTrace.checkContactF, read in the source):
it takes `time_start` as the start of slot 0 of `daily_key` (SK_0 = SHA-256(DK ||
"bluzonesubkey")), steps `86_400_000 / max` ms per slot while the slot start is
`<= time_end`, and after `max` slots moves to the next day's key SHA-256(DK). A row
matches when `blid_contact` is the slot's ID and its timestamp lies in
[slot start, slot end] (inclusive, no clock tolerance).

Therefore:
- `time_start` must be the UTC midnight of the daily key's day; any other value
  shifts every slot and matches nothing. The format cannot start mid-day: phones
  also match the hours of the first day before the window (documented to ops).
- ONE entry with the first day's key covers a multi-day window (the phone moves to
  the next day's key itself), so an export is one entry per base key the beacon
  used in the window (two across a rekey).
- `time_end` is the window end minus one second: the phone tests the slot that
  starts at `time_end` too, and the slot ending at the window end still matches a
  timestamp exactly at its end.

A disclosed daily key reveals every later ID of that base key: the beacon must be
rekeyed after an export (`bluegate-beacon enroll --rekey`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from beacon import bluezone


@dataclass(frozen=True, slots=True)
class KeyPeriod:
    """One base key of a beacon and the time it advertised with it."""

    base_key: bytes = field(repr=False)
    created: dt.date
    valid_to: float | None = None  # None while the key is current

    @property
    def valid_from(self) -> float:
        return float(bluezone.midnight_of(self.created))

    def daily_key(self, day: dt.date) -> bytes:
        return bluezone.daily_key_from_base(self.base_key, (day - self.created).days)


@dataclass(frozen=True, slots=True)
class F0Entry:
    daily_key: bytes = field(repr=False)
    time_start: int
    time_end: int
    max: int

    def to_json(self) -> dict[str, Any]:
        return {
            "daily_key": self.daily_key.hex(),
            "time_start": self.time_start,
            "time_end": self.time_end,
            "max": self.max,
        }


def export_window(
    keys: Iterable[KeyPeriod], start: float, end: float, slots_per_day: int
) -> list[F0Entry]:
    """F0 entries that make phones match every slot of [start, end) the beacon used."""
    if end <= start:
        raise ValueError("the window ends before it starts")
    if 86_400_000 % slots_per_day:
        raise ValueError("slots_per_day must divide a day into whole milliseconds")
    entries: list[F0Entry] = []
    for key in sorted(keys, key=lambda k: k.valid_from):
        seg_start = max(start, key.valid_from)
        seg_end = end if key.valid_to is None else min(end, key.valid_to)
        if seg_start >= seg_end:
            continue
        day = bluezone.date_of(seg_start)
        time_start = bluezone.midnight_of(day)
        time_end = max(time_start, math.ceil(seg_end) - 1)
        entries.append(F0Entry(key.daily_key(day), time_start, time_end, slots_per_day))
    return entries


def f0_payload(entries: Sequence[F0Entry]) -> dict[str, Any]:
    """The `InfoF` document of Bluezone's CHECK_CONTACT_F0 push."""
    return {"data": [e.to_json() for e in entries]}


def phone_matches(
    entry: dict[str, Any], contact_log: Iterable[tuple[bytes, int]]
) -> list[tuple[bytes, int]]:
    """Bluezone's `checkContactF` over a phone's `trace_info` rows.

    `contact_log` holds (blid_contact, timestamp_ms) rows as a phone stores them;
    returns the rows that match (the phone stops at the first; all are returned so
    ops tooling and tests can see why). The loop mirrors the Java line by line.
    """
    rows = list(contact_log)
    daily = bytes.fromhex(str(entry["daily_key"]))
    if len(daily) != 32:
        return []
    max_roll = int(entry["max"])
    time_next = int(entry["time_start"]) * 1000
    time_end_ms = int(entry["time_end"]) * 1000
    delta = 86_400_000 // max_roll
    first = daily
    subkey = first + bluezone.SALT
    i = 0
    found: list[tuple[bytes, int]] = []
    while time_next <= time_end_ms:
        subkey = bluezone.sha256(subkey)
        rolling_id = bluezone.id_from_subkey(subkey)
        slot_start = time_next
        time_next += delta
        found.extend(
            (blid, ts)
            for blid, ts in rows
            if blid == rolling_id and slot_start <= ts <= time_next
        )
        i += 1
        if i == max_roll:
            first = bluezone.sha256(first)
            subkey = first + bluezone.SALT
            i = 0
    return found
