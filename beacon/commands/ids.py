"""`bluegate-beacon ids`: the rolling IDs of a key (design.md, Commands).

  --scheme bluezone --daily-key HEX --date YYYY-MM-DD [--slots-per-day 96]
      one line per slot: `slot start_utc_iso id_hex`
  --scheme gaen --tek HEX --interval N [--count 144] [--metadata HEX]
      one line per interval: `interval rpi_hex aem_hex`

Bad hex, a wrong length or a missing option exits 2 with one line. The key is an
argument because this is a tool for ops and tests; it is never logged.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from beacon import bluezone, gaen
from gateway.errors import UsageError

HELP = "print the rolling IDs of a Bluezone daily key or an EN temporary exposure key"

# Version 1.0 (0x40) and TX power 0 dBm: the metadata when none is given.
DEFAULT_METADATA = gaen.metadata_bytes(0)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scheme", required=True, choices=("bluezone", "gaen"))
    parser.add_argument(
        "--daily-key", metavar="HEX", help="bluezone: 32-byte daily key"
    )
    parser.add_argument("--date", metavar="YYYY-MM-DD", help="bluezone: the key's day")
    parser.add_argument(
        "--slots-per-day",
        type=int,
        default=bluezone.DEFAULT_SLOTS_PER_DAY,
        help="bluezone: slots per day (96 = 15 min, Bluezone v3)",
    )
    parser.add_argument(
        "--tek", metavar="HEX", help="gaen: 16-byte temporary exposure key"
    )
    parser.add_argument("--interval", type=int, help="gaen: first ENIntervalNumber")
    parser.add_argument("--count", type=int, default=gaen.TEK_ROLLING_PERIOD)
    parser.add_argument(
        "--metadata",
        metavar="HEX",
        default=DEFAULT_METADATA.hex(),
        help="gaen: 4 metadata bytes (default 40000000: v1.0, 0 dBm)",
    )


def _hex(value: str | None, option: str, length: int) -> bytes:
    if value is None:
        raise UsageError(f"{option} is required with this scheme")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise UsageError(f"{option}: not hex: {value[:80]!r}") from None
    if len(raw) != length:
        raise UsageError(
            f"{option}: must be {length} bytes ({2 * length} hex digits), not {len(raw)}"
        )
    return raw


def _iso_ms(ms: int) -> str:
    stamp = dt.datetime.fromtimestamp(ms // 1000, tz=dt.UTC).strftime(
        "%Y-%m-%dT%H:%M:%S"
    )
    return f"{stamp}.{ms % 1000:03d}Z" if ms % 1000 else f"{stamp}Z"


def bluezone_lines(daily_key: bytes, date: dt.date, slots_per_day: int) -> list[str]:
    """`slot start_utc_iso id_hex`, with Bluezone's whole-millisecond slot length."""
    slot_ms = 86_400_000 // slots_per_day
    day0_ms = bluezone.midnight_of(date) * 1000
    return [
        f"{i} {_iso_ms(day0_ms + i * slot_ms)} {rolling_id.hex()}"
        for i, rolling_id in enumerate(bluezone.ids_for_day(daily_key, slots_per_day))
    ]


def gaen_lines(tek: bytes, interval: int, count: int, metadata: bytes) -> list[str]:
    return [
        f"{i} {rolling.hex()} {enc.hex()}"
        for i, rolling, enc in gaen.schedule(tek, interval, count, metadata)
    ]


def run(args: argparse.Namespace) -> int:
    if args.scheme == "bluezone":
        key = _hex(args.daily_key, "--daily-key", 32)
        if args.date is None:
            raise UsageError("--date is required with --scheme bluezone")
        try:
            date = dt.date.fromisoformat(args.date)
        except ValueError:
            raise UsageError(f"--date: not a date YYYY-MM-DD: {args.date!r}") from None
        if not 1 <= args.slots_per_day <= 86_400:
            raise UsageError("--slots-per-day: must be between 1 and 86400")
        lines = bluezone_lines(key, date, args.slots_per_day)
    else:
        tek = _hex(args.tek, "--tek", 16)
        if args.interval is None:
            raise UsageError("--interval is required with --scheme gaen")
        if not 0 <= args.interval <= 0xFFFFFFFF:
            raise UsageError("--interval: must be a 32-bit ENIntervalNumber")
        if not 1 <= args.count <= 100_000:
            raise UsageError("--count: must be between 1 and 100000")
        metadata = _hex(args.metadata, "--metadata", 4)
        lines = gaen_lines(tek, args.interval, args.count, metadata)
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
