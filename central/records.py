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


def _num(record: dict[str, Any], name: str, index: int, *, default: Any = ...) -> float:
    value = record.get(name, default)
    if value is ... or isinstance(value, bool) or not isinstance(value, int | float):
        if default is not ... and value is None:
            return float(default) if default is not None else math.nan
        raise BatchRejected("bad-record", f"records[{index}].{name} must be a number")
    if not math.isfinite(value):
        raise BatchRejected("bad-record", f"records[{index}].{name} must be finite")
    return float(value)


def _text(
    record: dict[str, Any], name: str, index: int, *, required: bool
) -> str | None:
    value = record.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > 256:
        raise BatchRejected("bad-record", f"records[{index}].{name} must be text")
    return value


def _opt_num(record: dict[str, Any], name: str, index: int) -> float | None:
    value = record.get(name)
    if value is None:
        return None
    return _num(record, name, index)


def batch_rows(body: dict[str, Any], received: float) -> BatchRows:
    """Rows of a parsed body; raises BatchRejected('bad-record', ...) on a bad record."""
    gateway = body["gateway"]
    site = body["site"]
    boot = int(body["boot"])
    records = body["records"]
    seqs = [int(r["seq"]) for r in records]
    if len(set(seqs)) != len(seqs):
        raise BatchRejected("bad-record", "two records share a seq")
    sent = body.get("sent")
    out = BatchRows(
        gateway=gateway,
        site=site,
        boot=boot,
        seq=int(body["seq"]),
        first_seq=min(seqs),
        last_seq=max(seqs),
        sent=float(sent)
        if isinstance(sent, int | float) and not isinstance(sent, bool)
        else None,
    )
    for index, record in enumerate(records):
        own = record.get("gateway")
        if own is not None and own != gateway:
            raise BatchRejected(
                "bad-record", f"records[{index}].gateway differs from the batch's"
            )
        seq = int(record["seq"])
        kind = record["kind"]
        if kind == "presence":
            key = _text(record, "key", index, required=True)
            keys = record.get("keys") or [key]
            if (
                not isinstance(keys, list)
                or len(keys) > 1000
                or not all(isinstance(k, str) and k and len(k) <= 256 for k in keys)
            ):
                raise BatchRejected(
                    "bad-record", f"records[{index}].keys must be a list of keys"
                )
            start = _num(record, "start", index)
            end = _num(record, "end", index)
            if end < start:
                raise BatchRejected(
                    "bad-record", f"records[{index}] ends before it starts"
                )
            bands = record.get("band_s") or {}
            if not isinstance(bands, dict):
                raise BatchRejected(
                    "bad-record", f"records[{index}].band_s must be a mapping"
                )
            band = [
                _num(bands, b, index, default=0.0) for b in ("immediate", "near", "far")
            ]
            zone = _text(record, "zone", index, required=False)
            zone_kind = _text(record, "zone_kind", index, required=False)
            clock = (
                record.get("clock") if isinstance(record.get("clock"), str) else None
            )
            n = record.get("n")
            chained = sorted(set(keys) - {key})
            out.presence.append(
                (
                    gateway,
                    boot,
                    seq,
                    site,
                    zone,
                    zone_kind,
                    key,
                    json.dumps(sorted(set(keys) | {key})) if chained else None,
                    start,
                    end,
                    n if isinstance(n, int) and not isinstance(n, bool) else None,
                    _opt_num(record, "rssi_min", index),
                    _opt_num(record, "rssi_median", index),
                    _opt_num(record, "rssi_max", index),
                    band[0],
                    band[1],
                    band[2],
                    clock,
                    received,
                )
            )
            out.extra_keys.extend((k, gateway, boot, seq, start) for k in chained)
            out.max_presence_s = max(out.max_presence_s, end - start)
            if zone is not None:
                prev = out.zones_seen.get(zone)
                out.zones_seen[zone] = (
                    zone_kind,
                    min(start, prev[1]) if prev else start,
                    max(end, prev[2]) if prev else end,
                )
        elif kind == "gate":
            direction = record.get("direction")
            if direction not in ("in", "out"):
                raise BatchRejected(
                    "bad-record", f"records[{index}].direction must be in or out"
                )
            out.gate.append(
                (
                    gateway,
                    boot,
                    seq,
                    site,
                    _text(record, "key", index, required=False),
                    _num(record, "t", index),
                    direction,
                    received,
                )
            )
        else:  # occupancy (envelope.parse_body allows only the three kinds)
            count = record.get("count")
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise BatchRejected(
                    "bad-record", f"records[{index}].count must be a whole number"
                )
            out.occupancy.append(
                (
                    gateway,
                    boot,
                    seq,
                    site,
                    _text(record, "zone", index, required=False),
                    _num(record, "t", index),
                    count,
                    received,
                )
            )
    return out
