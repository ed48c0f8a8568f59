"""Pure: Bluezone v2/v3 rolling-ID derivation (protocols.md 1.5; shared by beacon,
gateway, simulator and central).

Key schedule, identical in Bluezone's Java and Swift sources:

- base key: 32 random bytes, dated to a UTC midnight;
- daily key of day d: SHA-256 applied (d - base date) times to the base key, a one-way
  hash chain, so a disclosed daily key reveals every LATER day's IDs, never earlier;
- sub-keys of a day: SK_0 = SHA-256(DK || "bluzonesubkey") (sic), SK_i+1 = SHA-256(SK_i);
- ID_i: the 12 bytes of SK_i at offsets 0,4,8,12,16,18,20,22,24,26,28,30;
- slot i = floor((t - UTC midnight) / (86400 / slots_per_day)), 96 slots (15 min) in v3.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

SALT: Final = b"bluzonesubkey"  # spelling as in BluezoneIdGenerator.java
ID_OFFSETS: Final = (0, 4, 8, 12, 16, 18, 20, 22, 24, 26, 28, 30)
ID_LEN: Final = 12
DEFAULT_SLOTS_PER_DAY: Final = 96  # v3 MaxNumberSubKeyPerDay (15-minute slots)
DAY_S: Final = 86_400


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def daily_key_from_base(base_key: bytes, days_after_base: int) -> bytes:
    """DK_d = SHA-256^n(base key), n = whole days since the base key's date."""
    if len(base_key) != 32:
        raise ValueError("a Bluezone base key is 32 bytes")
    if days_after_base < 0:
        raise ValueError("no daily key before the base key's date")
    key = base_key
    for _ in range(days_after_base):
        key = sha256(key)
    return key


def next_daily_key(daily_key: bytes) -> bytes:
    """The following day's key: DK_{d+1} = SHA-256(DK_d)."""
    return sha256(daily_key)


def id_from_subkey(subkey: bytes) -> bytes:
    return bytes(subkey[i] for i in ID_OFFSETS)


def ids_for_day(
    daily_key: bytes, slots_per_day: int = DEFAULT_SLOTS_PER_DAY
) -> list[bytes]:
    """The 12-byte IDs of every slot of the day whose key is `daily_key`."""
    if len(daily_key) != 32:
        raise ValueError("a Bluezone daily key is 32 bytes")
    if slots_per_day < 1:
        raise ValueError("slots_per_day must be positive")
    ids: list[bytes] = []
    subkey = sha256(daily_key + SALT)
    for _ in range(slots_per_day):
        ids.append(id_from_subkey(subkey))
        subkey = sha256(subkey)
    return ids


def slot_length_s(slots_per_day: int = DEFAULT_SLOTS_PER_DAY) -> float:
    return DAY_S / slots_per_day


def day_start(t: float) -> int:
    """Unix seconds of the UTC midnight at or before `t`."""
    return int(t // DAY_S) * DAY_S


def slot_of(t: float, slots_per_day: int = DEFAULT_SLOTS_PER_DAY) -> int:
    """Slot index within the UTC day (Bluezone uses ms arithmetic; same boundaries)."""
    ms = round(t * 1000)
    ms_into_day = ms % (DAY_S * 1000)
    return ms_into_day // (DAY_S * 1000 // slots_per_day)


def slot_start(t: float, slots_per_day: int = DEFAULT_SLOTS_PER_DAY) -> float:
    return day_start(t) + slot_of(t, slots_per_day) * slot_length_s(slots_per_day)


def date_of(t: float) -> dt.date:
    return dt.datetime.fromtimestamp(day_start(t), tz=dt.UTC).date()


def midnight_of(date: dt.date) -> int:
    return int(dt.datetime(date.year, date.month, date.day, tzinfo=dt.UTC).timestamp())


@dataclass(frozen=True, slots=True)
class SlotId:
    """One rolling ID with the UTC window in which its owner advertised it."""

    start: float
    end: float
    id: bytes

    @property
    def key(self) -> str:
        return "bluezone:" + self.id.hex()


def ids_in_window(
    daily_key: bytes,
    key_date: dt.date,
    start: float,
    end: float,
    slots_per_day: int = DEFAULT_SLOTS_PER_DAY,
) -> Iterator[SlotId]:
    """Regenerate IDs slot by slot from `key_date`'s key over [start, end), moving to
    the next day's key after the last slot, as Bluezone's own `checkContactF` does."""
    day0 = midnight_of(key_date)
    if end <= start:
        return
    key = daily_key
    day = day0
    slot_s = slot_length_s(slots_per_day)
    while day < end:
        if day + DAY_S > start:
            for index, rolling_id in enumerate(ids_for_day(key, slots_per_day)):
                s0 = day + index * slot_s
                s1 = s0 + slot_s
                if s1 > start and s0 < end:
                    yield SlotId(s0, s1, rolling_id)
        key = next_daily_key(key)
        day += DAY_S
