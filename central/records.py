"""Pure: a verified batch body -> rows for the store (edge record formats, design.md).

A batch that passed `gateway.envelope.decode_batch` has the right framing, a valid
signature and known record kinds; this checks each record's own fields. One bad
record rejects the whole batch (it is quarantined verbatim, never half-stored), so a
fixed gateway can re-send it and nothing is silently lost.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from gateway.envelope import BatchRejected

PresenceTuple = tuple[Any, ...]


@dataclass(slots=True)
class BatchRows:
    gateway: str
    site: str
    boot: int
    seq: int
    first_seq: int
    last_seq: int
    sent: float | None
    presence: list[PresenceTuple] = field(default_factory=list)
    extra_keys: list[tuple[str, str, int, int, float]] = field(default_factory=list)
    gate: list[tuple[Any, ...]] = field(default_factory=list)
    occupancy: list[tuple[Any, ...]] = field(default_factory=list)
    zones_seen: dict[str, tuple[str | None, float, float]] = field(default_factory=dict)
    max_presence_s: float = 0.0

    @property
    def n_records(self) -> int:
        return len(self.presence) + len(self.gate) + len(self.occupancy)


_INT64 = 2**63
_NUMBER = (int, float)  # exact types: bool is excluded on purpose
_BANDS = ("immediate", "near", "far")


def _bad(index: int, what: str) -> BatchRejected:
    return BatchRejected("bad-record", f"records[{index}].{what}")


def _number(value: Any, index: int, name: str) -> float:
    """A finite number (not bool); the hot path is two C calls per value."""
    if type(value) not in _NUMBER or not math.isfinite(value):
        raise _bad(index, f"{name} must be a finite number")
    return float(value)


def _opt_number(value: Any, index: int, name: str) -> float | None:
    return None if value is None else _number(value, index, name)


def _opt_text(value: Any, index: int, name: str) -> str | None:
    if value is None:
        return None
    if type(value) is not str or not value or len(value) > 256:
        raise _bad(index, f"{name} must be text of 1 to 256 characters")
    return value


def batch_rows(body: dict[str, Any], received: float) -> BatchRows:
    """Rows of a parsed body; raises BatchRejected('bad-record', ...) on a bad record.

    Runs for every record central ingests (>= 50,000 a second), so checks are
    written inline with exact type tests rather than through a schema library."""
    gateway = body["gateway"]
    site = body["site"]
    boot = int(body["boot"])
    records = body["records"]
    seqs = [int(r["seq"]) for r in records]
    # Both engines store 64-bit signed integers; larger would poison the insert.
    if boot >= _INT64 or max(seqs) >= _INT64 or int(body["seq"]) >= _INT64:
        raise BatchRejected("bad-record", "boot and seq must be below 2**63")
    if len(set(seqs)) != len(seqs):
        raise BatchRejected("bad-record", "two records share a seq")
    sent: Any = body.get("sent")
    out = BatchRows(
        gateway=gateway,
        site=site,
        boot=boot,
        seq=int(body["seq"]),
        first_seq=min(seqs),
        last_seq=max(seqs),
        sent=float(sent) if type(sent) in _NUMBER and math.isfinite(sent) else None,
    )
    presence = out.presence
    for index, record in enumerate(records):
        get = record.get
        own = get("gateway")
        if own is not None and own != gateway:
            raise _bad(index, "gateway differs from the batch's")
        seq = record["seq"]
        kind = record["kind"]
        if kind == "presence":
            key = get("key")
            if type(key) is not str or not key or len(key) > 256:
                raise _bad(index, "key must be a device key")
            keys = get("keys")
            chained: list[str] = []
            if keys:
                if type(keys) is not list or len(keys) > 1000:
                    raise _bad(index, "keys must be a list of keys")
                for k in keys:
                    if type(k) is not str or not k or len(k) > 256:
                        raise _bad(index, "keys must be a list of keys")
                    if k != key:
                        chained.append(k)
            start = _number(get("start"), index, "start")
            end = _number(get("end"), index, "end")
            if end < start:
                raise _bad(index, "end is before start")
            bands = get("band_s")
            band: tuple[float, ...]
            if bands is None:
                band = (0.0, 0.0, 0.0)
            elif type(bands) is dict:
                band = tuple(
                    _number(bands.get(b, 0.0), index, "band_s." + b) for b in _BANDS
                )
            else:
                raise _bad(index, "band_s must be a mapping")
            zone = _opt_text(get("zone"), index, "zone")
            zone_kind = _opt_text(get("zone_kind"), index, "zone_kind")
            clock = get("clock")
            n = get("n")
            chained = sorted(set(chained))
            presence.append(
                (
                    gateway, boot, seq, site, zone, zone_kind, key,
                    json.dumps(sorted({key, *chained})) if chained else None,
                    start, end, n if type(n) is int and 0 <= n < _INT64 else None,
                    _opt_number(get("rssi_min"), index, "rssi_min"),
                    _opt_number(get("rssi_median"), index, "rssi_median"),
                    _opt_number(get("rssi_max"), index, "rssi_max"),
                    band[0], band[1], band[2],
                    clock if type(clock) is str and len(clock) <= 32 else None,
                    received,
                )
            )  # fmt: skip
            if chained:
                out.extra_keys.extend((k, gateway, boot, seq, start) for k in chained)
            if end - start > out.max_presence_s:
                out.max_presence_s = end - start
            if zone is not None:
                prev = out.zones_seen.get(zone)
                if prev is None:
                    out.zones_seen[zone] = (zone_kind, start, end)
                elif start < prev[1] or end > prev[2]:
                    out.zones_seen[zone] = (
                        zone_kind, min(start, prev[1]), max(end, prev[2])
                    )  # fmt: skip
        elif kind == "gate":
            direction = get("direction")
            if direction not in ("in", "out"):
                raise _bad(index, "direction must be in or out")
            out.gate.append(
                (gateway, boot, seq, site, _opt_text(get("key"), index, "key"),
                 _number(get("t"), index, "t"), direction, received)
            )  # fmt: skip
        else:  # occupancy (envelope.parse_body allows only the three kinds)
            count = get("count")
            if type(count) is not int or not 0 <= count < _INT64:
                raise _bad(index, "count must be a whole number")
            out.occupancy.append(
                (gateway, boot, seq, site, _opt_text(get("zone"), index, "zone"),
                 _number(get("t"), index, "t"), count, received)
            )  # fmt: skip
    return out
