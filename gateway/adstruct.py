"""PURE: advertising-data bytes -> ParsedAd (protocols.md 5.3; Core spec Vol 3 Part C 11).

The payload comes from anyone in radio range, so the parser is bounds-checked and
never raises: `[len][type][len-1 bytes]...`, `len == 0` ends the data (padding, which
is legal), a structure whose length runs past the end stops parsing and sets
`malformed`, and a field of the wrong size (a 3-byte 16-bit UUID list, an empty TX
power) is skipped and also sets `malformed`.

Multi-byte BLE fields (company ID, UUIDs) are little-endian on air; 128-bit UUIDs are
returned in their canonical string form (lower-case, dashed), the form protocols.md
and the decoders compare against.
"""

from __future__ import annotations

import logging
from typing import Any, Final, NamedTuple

_LOGGER = logging.getLogger(__name__)

# AD types (Bluetooth Assigned Numbers, "Common Data Types").
AD_FLAGS: Final = 0x01
AD_UUID16_INCOMPLETE: Final = 0x02
AD_UUID16_COMPLETE: Final = 0x03
AD_UUID32_INCOMPLETE: Final = 0x04
AD_UUID32_COMPLETE: Final = 0x05
AD_UUID128_INCOMPLETE: Final = 0x06
AD_UUID128_COMPLETE: Final = 0x07
AD_NAME_SHORT: Final = 0x08
AD_NAME_COMPLETE: Final = 0x09
AD_TX_POWER: Final = 0x0A
AD_SERVICE_DATA16: Final = 0x16
AD_SERVICE_DATA32: Final = 0x20
AD_SERVICE_DATA128: Final = 0x21
AD_MANUFACTURER: Final = 0xFF


# A few company IDs (Bluetooth SIG assigned numbers) that fill a room's unknown
# traffic, named in `summary()` so that a technician can tell what is there.
COMPANY_NAMES: Final = {
    0x0006: "Microsoft",
    0x004C: "Apple",
    0x0075: "Samsung",
    0x00E0: "Google",
    0x0087: "Garmin",
    0x0157: "Huawei",
    0x038F: "Xiaomi",
    0x0059: "Nordic Semiconductor",
    0x0499: "Ruuvi",
    0x22B5: "Bluezone (self-assigned)",
}


def uuid128_str(le: bytes) -> str:
    """16 bytes in air (little-endian) order -> canonical `xxxxxxxx-xxxx-...` string."""
    h = le[::-1].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid128_air(text: str) -> bytes:
    """Canonical UUID string -> its 16 bytes in air order (the inverse of uuid128_str)."""
    return bytes.fromhex(text.replace("-", ""))[::-1]


class ParsedAd(NamedTuple):
    """What one advertising payload (ADV, SCAN_RSP or both merged) says.

    Repeated structures accumulate (UUID lists) or keep the first value seen
    (name, TX power, one service-data/manufacturer entry per UUID/company).

    A NamedTuple rather than a frozen dataclass: it is as immutable, and it is built
    for every distinct payload a crowded room sends, where a frozen dataclass's
    field-by-field `object.__setattr__` cost a third of the parse (bench/decode.py).
    The dicts are never mutated after parsing.
    """

    flags: int | None
    uuid16: tuple[int, ...]
    uuid32: tuple[int, ...]
    uuid128: tuple[str, ...]
    local_name: str | None
    name_complete: bool
    tx_power: int | None  # dBm, signed
    service_data16: dict[int, bytes]
    service_data32: dict[int, bytes]
    service_data128: dict[str, bytes]
    manufacturer_data: dict[int, bytes]  # company -> data after the company ID
    types: tuple[int, ...]  # AD types in order of appearance
    malformed: bool
    length: int  # bytes consumed up to the end marker, padding or damage

    def summary(self) -> dict[str, Any]:
        """A JSON-able digest (what `decode` prints for an unknown payload)."""
        out: dict[str, Any] = {}
        if self.flags is not None:
            out["flags"] = self.flags
        if self.uuid16:
            out["uuid16"] = [f"{u:04x}" for u in self.uuid16]
        if self.uuid32:
            out["uuid32"] = [f"{u:08x}" for u in self.uuid32]
        if self.uuid128:
            out["uuid128"] = list(self.uuid128)
        if self.local_name is not None:
            out["name"] = self.local_name
        if self.tx_power is not None:
            out["tx_power"] = self.tx_power
        service_data: dict[str, str] = {}
        for u16, data in self.service_data16.items():
            service_data[f"{u16:04x}"] = data.hex()
        for u32, data in self.service_data32.items():
            service_data[f"{u32:08x}"] = data.hex()
        for u128, data in self.service_data128.items():
            service_data[u128] = data.hex()
        if service_data:
            out["service_data"] = service_data
        if self.manufacturer_data:
            out["manufacturer_data"] = {
                f"{company:04x}": data.hex()
                for company, data in self.manufacturer_data.items()
            }
            names = [
                COMPANY_NAMES[company]
                for company in self.manufacturer_data
                if company in COMPANY_NAMES
            ]
            if names:
                out["companies"] = names
        out["types"] = [f"{t:02x}" for t in self.types]
        if self.malformed:
            out["malformed"] = True
        return out


EMPTY: Final = ParsedAd(
    None, (), (), (), None, False, None, {}, {}, {}, {}, (), False, 0
)


def parse_ad(data: bytes) -> ParsedAd:
    """Split `data` into AD structures. Never raises on any bytes."""
    n = len(data)
    i = 0
    flags: int | None = None
    uuid16: list[int] = []
    uuid32: list[int] = []
    uuid128: list[str] = []
    name: str | None = None
    name_complete = False
    tx_power: int | None = None
    sd16: dict[int, bytes] = {}
    sd32: dict[int, bytes] = {}
    sd128: dict[str, bytes] = {}
    mfr: dict[int, bytes] = {}
    types: list[int] = []
    malformed = False
    while i < n:
        length = data[i]
        if length == 0:
            break  # padding: the rest is zeros (Core spec Vol 3 Part C 11)
        end = i + 1 + length
        if end > n:
            malformed = True  # truncated structure: stop, keep what came before
            break
        ad_type = data[i + 1]
        start = i + 2
        vlen = length - 1
        types.append(ad_type)
        i = end
        # Fields are read in place; a slice is made only for what is kept.
        if ad_type == AD_MANUFACTURER:
            if vlen < 2:
                malformed = True
                continue
            company = data[start] | (data[start + 1] << 8)
            if company not in mfr:
                mfr[company] = data[start + 2 : end]
        elif ad_type == AD_SERVICE_DATA16:
            if vlen < 2:
                malformed = True
                continue
            u16 = data[start] | (data[start + 1] << 8)
            if u16 not in sd16:
                sd16[u16] = data[start + 2 : end]
        elif ad_type == AD_FLAGS:
            if vlen < 1:
                malformed = True
            elif flags is None:
                flags = data[start]
        elif ad_type in (AD_UUID16_COMPLETE, AD_UUID16_INCOMPLETE):
            if vlen == 2:
                uuid16.append(data[start] | (data[start + 1] << 8))
                continue
            if vlen & 1:
                malformed = True
            uuid16.extend(
                data[k] | (data[k + 1] << 8) for k in range(start, end - 1, 2)
            )
        elif ad_type in (AD_UUID128_COMPLETE, AD_UUID128_INCOMPLETE):
            if vlen % 16:
                malformed = True
            uuid128.extend(
                uuid128_str(data[k : k + 16]) for k in range(start, end - 15, 16)
            )
        elif ad_type in (AD_NAME_COMPLETE, AD_NAME_SHORT):
            if name is None or (ad_type == AD_NAME_COMPLETE and not name_complete):
                name = data[start:end].decode("utf-8", "replace")
                name_complete = ad_type == AD_NAME_COMPLETE
        elif ad_type == AD_TX_POWER:
            if vlen < 1:
                malformed = True
            elif tx_power is None:
                tx = data[start]
                tx_power = tx - 256 if tx > 127 else tx
        elif ad_type in (AD_UUID32_COMPLETE, AD_UUID32_INCOMPLETE):
            if vlen % 4:
                malformed = True
            uuid32.extend(
                int.from_bytes(data[k : k + 4], "little")
                for k in range(start, end - 3, 4)
            )
        elif ad_type == AD_SERVICE_DATA32:
            if vlen < 4:
                malformed = True
                continue
            u32 = int.from_bytes(data[start : start + 4], "little")
            if u32 not in sd32:
                sd32[u32] = data[start + 4 : end]
        elif ad_type == AD_SERVICE_DATA128:
            if vlen < 16:
                malformed = True
                continue
            u128 = uuid128_str(data[start : start + 16])
            if u128 not in sd128:
                sd128[u128] = data[start + 16 : end]
    return ParsedAd(
        flags,
        tuple(uuid16),
        tuple(uuid32),
        tuple(uuid128),
        name,
        name_complete,
        tx_power,
        sd16,
        sd32,
        sd128,
        mfr,
        tuple(types),
        malformed,
        i,
    )


def significant(data: bytes) -> bytes:
    """`data` without trailing padding or damage: the structures a merge may append to."""
    n = len(data)
    i = 0
    while i < n:
        length = data[i]
        if length == 0 or i + 1 + length > n:
            break
        i += 1 + length
    return data[:i] if i < n else data
