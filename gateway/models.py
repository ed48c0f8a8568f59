"""Values that travel through the edge pipeline: Report -> Sighting -> records.

Pure: no I/O. Every hop has one normalised type (style.md 3.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class AddrType(IntEnum):
    """HCI address type (Core spec Vol 4 Part E 7.7.65.2)."""

    PUBLIC = 0
    RANDOM = 1
    PUBLIC_IDENTITY = 2
    RANDOM_IDENTITY = 3
    ANONYMOUS = 0xFF

    @property
    def label(self) -> str:
        return _ADDR_TYPE_LABELS[self]

    @classmethod
    def from_label(cls, label: str) -> AddrType:
        for member, name in _ADDR_TYPE_LABELS.items():
            if name == label:
                return member
        raise ValueError(f"unknown address type {label!r}")


_ADDR_TYPE_LABELS = {
    AddrType.PUBLIC: "public",
    AddrType.RANDOM: "random",
    AddrType.PUBLIC_IDENTITY: "public-identity",
    AddrType.RANDOM_IDENTITY: "random-identity",
    AddrType.ANONYMOUS: "anonymous",
}


@dataclass(frozen=True, slots=True)
class Report:
    """One advertising report as a source delivered it (the `jsonl:` trace line).

    `t` is the source's time in Unix seconds: the trace's own timestamp for a
    recording, the receiver's wall clock (maybe not yet synchronised) when live.
    """

    t: float
    addr: str  # "AA:BB:CC:DD:EE:FF", upper-case, display order
    addr_type: AddrType
    rssi: int  # dBm; None-like 127 from HCI is dropped by the source
    data: bytes  # AD structures exactly as received
    scan_rsp: bool = False
    gateway: str | None = None
    connectable: bool | None = None


@dataclass(frozen=True, slots=True)
class Decoded:
    """What a decoder recognised in one payload.

    `key` is the canonical device key of design.md, or None when the format carries
    no identity (an iPhone whose Bluezone ID needs a GATT read, Eddystone-TLM, ...).
    `fields` are the format's own fields (tx_power, major, minor, aem, ...).
    """

    format: str
    key: str | None
    fields: dict[str, Any] = field(default_factory=dict)
    needs_gatt: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": self.format, "key": self.key}
        out.update(self.fields)
        if self.needs_gatt:
            out["needs_gatt"] = True
        return out


@dataclass(frozen=True, slots=True)
class Sighting:
    """A decoded advertisement heard at time `t` (the output of `scan`)."""

    t: float
    addr: str
    addr_type: AddrType
    rssi: int
    decoded: Decoded
    gateway: str | None = None

    @property
    def format(self) -> str:
        return self.decoded.format

    @property
    def key(self) -> str | None:
        return self.decoded.key

    def to_json(self) -> dict[str, Any]:
        out = self.decoded.to_json()
        out["t"] = self.t
        out["addr"] = self.addr
        out["addr_type"] = self.addr_type.label
        out["rssi"] = self.rssi
        if self.gateway is not None:
            out["gateway"] = self.gateway
        return out
