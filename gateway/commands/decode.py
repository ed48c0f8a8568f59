"""`bluegate-gateway decode HEX...`: one JSON object per advertising payload.

A recognised payload prints its Decoded result (`format`, `key`, the format's
fields; `needs_gatt` when the ID must be read over GATT). An unrecognised one prints
`{"format": "unknown", "key": null, "ad": {...}}` with a digest of its AD structures,
and `"malformed": true` when the structures are broken. A payload that is not hex
is a usage error (exit 2) naming the argument.
"""

from __future__ import annotations

import argparse
import json
import string
import sys
from typing import Any

from gateway.adstruct import parse_ad
from gateway.decoders import UNKNOWN, classify_parsed
from gateway.errors import EXIT_OK, UsageError

HELP = "decode advertising-data payloads (AD structures, hex); one JSON object each"

_SEPARATORS = str.maketrans("", "", " :-_\t\n")
_HEX = frozenset(string.hexdigits)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "payloads",
        nargs="+",
        metavar="HEX",
        help="AD bytes in hex, e.g. 02011a03036ffd17166ffd... (spaces/colons allowed); "
        "'-' reads one payload per line from standard input",
    )
    parser.add_argument(
        "--ad",
        action="store_true",
        help="also print the AD-structure digest for recognised payloads",
    )


def parse_hex(text: str, position: int, *, where: str | None = None) -> bytes:
    """Hex -> bytes, or UsageError naming the argument (1-based position)."""
    cleaned = text.translate(_SEPARATORS)
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    shown = text if len(text) <= 40 else text[:37] + "..."
    name = f"payload {position}" if where is None else where
    if not cleaned:
        raise UsageError(f"{name} ({shown!r}) is empty")
    bad = next((c for c in cleaned if c not in _HEX), None)
    if bad is not None:
        raise UsageError(f"{name} ({shown!r}) is not hex: unexpected character {bad!r}")
    if len(cleaned) % 2:
        raise UsageError(f"{name} ({shown!r}) is not hex: odd number of digits")
    return bytes.fromhex(cleaned)


def decode_payload(data: bytes, *, with_ad: bool = False) -> dict[str, Any]:
    ad = parse_ad(data)
    result, outcome = classify_parsed(ad)
    out: dict[str, Any]
    if result is None:
        out = {"format": UNKNOWN, "key": None}
        if outcome != UNKNOWN:
            out["malformed"] = True
        out["ad"] = ad.summary()
        return out
    out = result.to_json()
    if ad.malformed:
        out["malformed"] = True  # recognised, but trailing structures were broken
    if with_ad:
        out["ad"] = ad.summary()
    return out


def run(args: argparse.Namespace) -> int:
    # Validate every argument before printing anything: a bad one fails the batch.
    payloads: list[bytes] = []
    for i, text in enumerate(args.payloads, 1):
        if text != "-":
            payloads.append(parse_hex(text, i))
            continue
        for lineno, line in enumerate(sys.stdin, 1):
            if line.strip():
                payloads.append(
                    parse_hex(line.strip(), i, where=f"stdin line {lineno}")
                )
    for data in payloads:
        sys.stdout.write(json.dumps(decode_payload(data, with_ad=args.ad)) + "\n")
    sys.stdout.flush()
    return EXIT_OK
