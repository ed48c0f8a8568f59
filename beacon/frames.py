"""Pure: the advertising-data (AD) payloads a BlueGate beacon transmits.

Every builder returns the AD structures exactly as they go on air (the bytes a
scanner's HCI report carries, protocols.md 5.3), so `bluegate-gateway decode` can be
pointed straight at them.

- `bluezone_android`: Bluezone v3's Android sender layout (protocols.md 1.3):
  Flags, manufacturer data for company 0x22B5 with the 12-byte ID, complete list of
  16-bit UUIDs {0x4E56}; 23 bytes, the order Android's own stack serialises
  (AOSP AdvertiseHelper: name -> manufacturer data -> TX power -> service UUIDs).
  Bluezone's receivers find both records by type, whatever their order: Android
  filters on the 0x4E56 UUID and reads manufacturer data 8885, iOS takes the
  manufacturer blob minus its 2-byte company ID and needs exactly 12 bytes left.
- `bluezone_bluez`: the same records in the order BlueZ's `bt_ad_generate`
  (src/shared/ad.c) serialises an LEAdvertisement1 (UUIDs before manufacturer
  data), with the Flags AD the kernel prepends. This is what the Pi advertiser
  really puts on air; it carries the same two records.
- `ibeacon` and `eddystone_uid`: for sites with worker tags only (protocols.md 4.1,
  4.2); payload fields are big-endian, unlike the little-endian company/UUID fields.
- `gaen`: an Exposure Notification advertisement (protocols.md 2.1), for tests and
  the simulator only; a beacon never impersonates a phone's EN identity.
"""

from __future__ import annotations

import struct
import uuid
from typing import Final

from beacon import bluezone

AD_FLAGS: Final = 0x01
AD_UUID16_COMPLETE: Final = 0x03
AD_SERVICE_DATA16: Final = 0x16
AD_MANUFACTURER: Final = 0xFF

# LE General Discoverable | BR/EDR not supported. iOS does not report advertisers
# without a discoverable bit; Android phones' Bluezone frames use 0x02/0x06/0x1A.
FLAGS_LE_GENERAL: Final = 0x06
FLAGS_GAEN: Final = 0x1A  # what reference EN firmware (ESP-ENA) sends

BLUEZONE_COMPANY: Final = 0x22B5  # decimal 8885, on air B5 22 (protocols.md 1.2)
BLUEZONE_UUID16: Final = 0x4E56  # "VN", on air 56 4E
APPLE_COMPANY: Final = 0x004C
EDDYSTONE_UUID16: Final = 0xFEAA
GAEN_UUID16: Final = 0xFD6F

MAX_LEGACY_AD: Final = 31


def ad_structure(ad_type: int, payload: bytes) -> bytes:
    """One AD structure: length (type + payload), type, payload."""
    if not 0 <= ad_type <= 0xFF:
        raise ValueError("AD type is one byte")
    if len(payload) > 0xFE:
        raise ValueError("AD payload too long")
    return bytes([len(payload) + 1, ad_type]) + payload


def flags(value: int = FLAGS_LE_GENERAL) -> bytes:
    return ad_structure(AD_FLAGS, bytes([value & 0xFF]))


def manufacturer_data(company: int, data: bytes) -> bytes:
    return ad_structure(AD_MANUFACTURER, struct.pack("<H", company) + data)


def uuid16_list(*uuids: int) -> bytes:
    return ad_structure(
        AD_UUID16_COMPLETE, b"".join(struct.pack("<H", u) for u in uuids)
    )


def service_data16(service: int, data: bytes) -> bytes:
    return ad_structure(AD_SERVICE_DATA16, struct.pack("<H", service) + data)


def _check_bluezone_id(rolling_id: bytes) -> None:
    if len(rolling_id) != bluezone.ID_LEN:
        raise ValueError(f"a Bluezone ID is {bluezone.ID_LEN} bytes")


def bluezone_android(rolling_id: bytes, flags_value: int = FLAGS_LE_GENERAL) -> bytes:
    """Bluezone v3 Android layout (23 bytes): flags, mfr 0x22B5 + ID, UUIDs {0x4E56}."""
    _check_bluezone_id(rolling_id)
    return (
        flags(flags_value)
        + manufacturer_data(BLUEZONE_COMPANY, rolling_id)
        + uuid16_list(BLUEZONE_UUID16)
    )


def bluezone_bluez(rolling_id: bytes, flags_value: int = FLAGS_LE_GENERAL) -> bytes:
    """The Bluezone records in BlueZ's serialisation order (UUIDs, then mfr data)."""
    _check_bluezone_id(rolling_id)
    return (
        flags(flags_value)
        + uuid16_list(BLUEZONE_UUID16)
        + manufacturer_data(BLUEZONE_COMPANY, rolling_id)
    )


def ibeacon(
    proximity_uuid: uuid.UUID, major: int, minor: int, measured_power_dbm: int
) -> bytes:
    """iBeacon (protocols.md 4.1): 30 bytes; UUID, major, minor big-endian."""
    if not (0 <= major <= 0xFFFF and 0 <= minor <= 0xFFFF):
        raise ValueError("iBeacon major and minor are 0..65535")
    if not -128 <= measured_power_dbm <= 127:
        raise ValueError("measured power is a signed byte")
    body = (
        b"\x02\x15"
        + proximity_uuid.bytes
        + struct.pack(">HHb", major, minor, measured_power_dbm)
    )
    return flags(FLAGS_LE_GENERAL) + manufacturer_data(APPLE_COMPANY, body)


def eddystone_uid(namespace: bytes, instance: bytes, tx_power_0m_dbm: int) -> bytes:
    """Eddystone-UID (protocols.md 4.2): 10-byte namespace, 6-byte instance, RFU 00 00."""
    if len(namespace) != 10 or len(instance) != 6:
        raise ValueError("Eddystone-UID needs a 10-byte namespace and 6-byte instance")
    if not -128 <= tx_power_0m_dbm <= 127:
        raise ValueError("calibrated TX power is a signed byte")
    frame = struct.pack(">Bb", 0x00, tx_power_0m_dbm) + namespace + instance + b"\0\0"
    return (
        flags(FLAGS_LE_GENERAL)
        + uuid16_list(EDDYSTONE_UUID16)
        + service_data16(EDDYSTONE_UUID16, frame)
    )


def gaen(rolling_proximity_id: bytes, encrypted_metadata: bytes) -> bytes:
    """Exposure Notification (protocols.md 2.1): 31 bytes, RPI then AEM."""
    if len(rolling_proximity_id) != 16 or len(encrypted_metadata) != 4:
        raise ValueError("an EN frame carries a 16-byte RPI and a 4-byte AEM")
    return (
        flags(FLAGS_GAEN)
        + uuid16_list(GAEN_UUID16)
        + service_data16(GAEN_UUID16, rolling_proximity_id + encrypted_metadata)
    )


def split_ad(data: bytes) -> list[tuple[int, bytes]]:
    """(type, payload) of each AD structure; stops at padding or a truncated one.

    Used by the tests' fake BlueZ and by the advertiser's self-check; the gateway
    has its own hardened parser for untrusted radio bytes."""
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(data):
        length = data[i]
        if length == 0 or i + 1 + length > len(data):
            break
        out.append((data[i + 1], bytes(data[i + 2 : i + 1 + length])))
        i += 1 + length
    return out
