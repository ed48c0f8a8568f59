"""PURE: advertising payload -> Decoded, for every format of protocols.md.

Public API (other modules depend on these names):

- `decode_ad(data)`: the Decoded result, or None when no format is recognised.
- `classify(data)`: `(Decoded | None, outcome)`, where outcome is the format name,
  `"unknown"` (well-formed, nothing recognised) or `"malformed"` (nothing recognised
  and the AD structures, or a format's own layout, are broken).
- `DecodeStats`: counters per outcome, so that nothing is dropped silently.
- `sighting_from_report(report, stats)`: a Report -> Sighting (or None).

Phones repeat the same payload about ten times a second, so results are cached by
the payload bytes in a bounded dict (first in, first out). Cached Decoded objects are
shared: their `fields` are a read-only dict (`FrozenFields`).

The order of the registry matters only when one payload carries two formats: the
identities of contact-tracing phones come first, Apple's overflow bitmap (a hash that
collides, protocols.md 8.2) last.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Final

from gateway.adstruct import ParsedAd, parse_ad
from gateway.decoders.base import MALFORMED, Decoder, FrozenFields, decoded
from gateway.decoders.beacons import (
    decode_altbeacon,
    decode_eddystone,
    decode_ibeacon,
)
from gateway.decoders.bluetrace import decode_bluetrace, decode_bluetrace_background
from gateway.decoders.bluezone import (
    decode_ios_background,
    decode_ios_foreground,
    decode_v1_android,
    decode_v1_ios,
    decode_v3_android,
)
from gateway.decoders.gaen import decode_gaen
from gateway.models import Decoded, Report, Sighting

__all__ = [
    "CACHE_MAX",
    "DECODERS",
    "FORMATS",
    "MALFORMED_OUTCOME",
    "UNKNOWN",
    "DecodeStats",
    "Decoded",
    "FrozenFields",
    "classify",
    "classify_parsed",
    "clear_cache",
    "decode_ad",
    "decoded",
    "sighting_from_report",
]

_LOGGER = logging.getLogger(__name__)

DECODERS: Final[tuple[Decoder, ...]] = (
    decode_v3_android,
    decode_gaen,
    decode_ios_foreground,
    decode_v1_android,
    decode_v1_ios,
    decode_bluetrace,
    decode_ibeacon,
    decode_eddystone,
    decode_altbeacon,
    decode_ios_background,
    decode_bluetrace_background,
)

# Every format name a Decoded may carry (the `format` of design.md's JSON objects).
FORMATS: Final = (
    "bluezone",
    "bluezone-v1",
    "bluezone-wake",
    "gaen",
    "bluetrace",
    "ibeacon",
    "eddystone-uid",
    "eddystone-url",
    "eddystone-tlm",
    "eddystone-eid",
    "altbeacon",
)
UNKNOWN: Final = "unknown"
MALFORMED_OUTCOME: Final = "malformed"

CACHE_MAX: Final = (
    16_384  # distinct payloads; a crowded room has a few hundred a minute
)
Outcome = tuple[Decoded | None, str]
_CACHE: dict[bytes, Outcome] = {}


# Each decoder with the ParsedAd field it reads and, where one decides, the key that
# must be there: checked inline before the call, because most payloads in a room are
# Apple/Microsoft/Samsung traffic that concerns two decoders at most (bench/decode.py).
_MFR = ParsedAd._fields.index("manufacturer_data")
_SD16 = ParsedAd._fields.index("service_data16")
_U128 = ParsedAd._fields.index("uuid128")
_GUARDS: Final[dict[Decoder, tuple[int, int | None]]] = {
    decode_v3_android: (_MFR, 0x22B5),
    decode_gaen: (_SD16, 0xFD6F),
    decode_ios_foreground: (_U128, None),
    decode_v1_android: (_MFR, 0x22B5),
    decode_v1_ios: (_U128, None),
    decode_bluetrace: (_U128, None),
    decode_ibeacon: (_MFR, 0x004C),
    decode_eddystone: (_SD16, 0xFEAA),
    decode_altbeacon: (_MFR, None),
    decode_ios_background: (_MFR, 0x004C),
    decode_bluetrace_background: (_MFR, 0x004C),
}
_REGISTRY: Final = tuple((d, *_GUARDS[d]) for d in DECODERS)


def classify_parsed(ad: ParsedAd) -> Outcome:
    """Run the registry over an already parsed payload (no cache)."""
    broken = ad.malformed
    for decoder, index, key in _REGISTRY:
        present: Any = ad[index]
        if not present or (key is not None and key not in present):
            continue
        result = decoder(ad)
        if result is None:
            continue
        if result is MALFORMED:
            broken = True
            continue
        return result, result.format
    return None, MALFORMED_OUTCOME if broken else UNKNOWN


def classify(data: bytes) -> Outcome:
    """`(Decoded | None, outcome)` for one payload; cached, never raises."""
    try:
        return _CACHE[data]
    except KeyError:
        pass
    except TypeError:  # bytearray / memoryview: not hashable
        data = bytes(data)
        if data in _CACHE:
            return _CACHE[data]
    outcome = classify_parsed(parse_ad(data))
    if len(_CACHE) >= CACHE_MAX:
        # another thread may have evicted the same entry first
        with contextlib.suppress(KeyError, RuntimeError, StopIteration):
            del _CACHE[next(iter(_CACHE))]
    _CACHE[data] = outcome
    return outcome


def decode_ad(data: bytes) -> Decoded | None:
    """The recognised format of one payload, or None (see `classify` for why)."""
    try:
        return _CACHE[data][0]
    except (KeyError, TypeError):
        return classify(data)[0]


def clear_cache() -> None:
    _CACHE.clear()


class DecodeStats:
    """Counts of decode outcomes: one per format, `unknown` and `malformed`.

    Each payload counts exactly once. `malformed` means nothing was recognised and
    the bytes were broken; a recognised payload with trailing damage counts under
    its format (the identity was intact).
    """

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, outcome: str, n: int = 1) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + n

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def snapshot(self) -> dict[str, int]:
        """A copy: every outcome seen, plus `unknown`, `malformed` and `total`."""
        out = {UNKNOWN: 0, MALFORMED_OUTCOME: 0}
        out.update(sorted(self.counts.items()))
        out["total"] = self.total
        return out


def sighting_from_report(
    report: Report, stats: DecodeStats | None = None
) -> Sighting | None:
    """Decode one report; count its outcome in `stats`; None if not recognised."""
    result, outcome = classify(report.data)
    if stats is not None:
        counts = stats.counts
        counts[outcome] = counts.get(outcome, 0) + 1
    if result is None:
        return None
    return Sighting(
        t=report.t,
        addr=report.addr,
        addr_type=report.addr_type,
        rssi=report.rssi,
        decoded=result,
        gateway=report.gateway,
    )
