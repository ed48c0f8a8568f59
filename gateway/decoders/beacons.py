"""PURE: worker tags: iBeacon, Eddystone, AltBeacon (protocols.md section 4).

Beacon payload fields are big-endian, unlike the BLE framing around them.
The iBeacon Bluezone's iOS app wakes itself with (protocols.md 1.9) carries no user
ID: it is reported as `bluezone-wake` with no key, never as a person's tag.
"""

from __future__ import annotations

from typing import Any, Final

from gateway.adstruct import ParsedAd
from gateway.decoders.base import MALFORMED, decoded, int8
from gateway.models import Decoded

COMPANY_APPLE: Final = 0x004C
IBEACON_TYPE: Final = 0x02
IBEACON_LEN: Final = 0x15  # 21 bytes after the type/length pair
BLUEZONE_WAKE_UUID: Final = "c7afef7b-1788-4f4a-a87d-691d53bf21c4"

UUID16_EDDYSTONE: Final = 0xFEAA
EDDYSTONE_UID: Final = 0x00
EDDYSTONE_URL: Final = 0x10
EDDYSTONE_TLM: Final = 0x20
EDDYSTONE_EID: Final = 0x30
URL_SCHEMES: Final = ("http://www.", "https://www.", "http://", "https://")
URL_EXPANSIONS: Final = (
    ".com/",
    ".org/",
    ".edu/",
    ".net/",
    ".info/",
    ".biz/",
    ".gov/",
    ".com",
    ".org",
    ".edu",
    ".net",
    ".info",
    ".biz",
    ".gov",
)
TLM_TEMP_UNAVAILABLE: Final = 0x8000

ALTBEACON_CODE: Final = b"\xbe\xac"
ALTBEACON_LEN: Final = 24  # code 2 + ID 20 + ref RSSI 1 + reserved 1


def _uuid_be(raw: bytes) -> str:
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def decode_ibeacon(ad: ParsedAd) -> Decoded | None:
    payload = ad.manufacturer_data.get(COMPANY_APPLE)
    if payload is None or len(payload) < 2 or payload[0] != IBEACON_TYPE:
        return None
    if payload[1] != IBEACON_LEN or len(payload) != 2 + IBEACON_LEN:
        return MALFORMED
    uuid = _uuid_be(payload[2:18])
    major = (payload[18] << 8) | payload[19]
    minor = (payload[20] << 8) | payload[21]
    fields = {
        "uuid": uuid,
        "major": major,
        "minor": minor,
        "tx_power": int8(payload[22]),
    }
    if uuid == BLUEZONE_WAKE_UUID:
        return decoded("bluezone-wake", None, fields)
    return decoded("ibeacon", f"ibeacon:{uuid}:{major}:{minor}", fields)


def _eddystone_url(frame: bytes) -> str | None:
    if len(frame) < 3 or frame[2] >= len(URL_SCHEMES):
        return None
    parts = [URL_SCHEMES[frame[2]]]
    for byte in frame[3:]:
        if byte < len(URL_EXPANSIONS):
            parts.append(URL_EXPANSIONS[byte])
        elif 0x20 < byte < 0x7F:
            parts.append(chr(byte))
        else:
            return None  # reserved code (google/eddystone eddystone-url)
    return "".join(parts)


def decode_eddystone(ad: ParsedAd) -> Decoded | None:
    frame = ad.service_data16.get(UUID16_EDDYSTONE)
    if frame is None:
        return None
    n = len(frame)
    if n < 2:
        return MALFORMED
    kind = frame[0]
    if kind == EDDYSTONE_UID:
        if n < 18:  # RFU bytes 18-19 are optional in practice (length 0x15)
            return MALFORMED
        namespace = frame[2:12].hex()
        instance = frame[12:18].hex()
        return decoded(
            "eddystone-uid",
            f"eddystone-uid:{namespace}:{instance}",
            {"namespace": namespace, "instance": instance, "tx_power": int8(frame[1])},
        )
    if kind == EDDYSTONE_EID:
        if n < 10:
            return MALFORMED
        eid = frame[2:10].hex()
        return decoded(
            "eddystone-eid",
            "eddystone-eid:" + eid,
            {"eid": eid, "tx_power": int8(frame[1])},
        )
    if kind == EDDYSTONE_TLM:
        return _eddystone_tlm(frame)
    if kind == EDDYSTONE_URL:
        url = _eddystone_url(frame)
        if url is None:
            return MALFORMED
        return decoded("eddystone-url", None, {"url": url, "tx_power": int8(frame[1])})
    return MALFORMED


def _eddystone_tlm(frame: bytes) -> Decoded:
    version = frame[1]
    n = len(frame)
    fields: dict[str, Any]
    if version == 0x00 and n >= 14:
        temp_raw = (frame[4] << 8) | frame[5]
        if temp_raw == TLM_TEMP_UNAVAILABLE:
            temperature: float | None = None
        else:
            signed = temp_raw - 0x10000 if temp_raw & 0x8000 else temp_raw
            temperature = signed / 256.0  # signed 8.8 fixed point
        sec_cnt = int.from_bytes(frame[10:14], "big")
        fields = {
            "version": 0,
            "voltage_mv": (frame[2] << 8) | frame[3],
            "temperature_c": temperature,
            "adv_count": int.from_bytes(frame[6:10], "big"),
            "uptime_s": sec_cnt / 10.0,  # SEC_CNT counts 0.1 s
        }
        return decoded("eddystone-tlm", None, fields)
    if version == 0x01 and n >= 18:
        # eTLM: AES-EAX ciphertext readable only with the beacon's identity key.
        fields = {
            "version": 1,
            "encrypted": frame[2:14].hex(),
            "salt": (frame[14] << 8) | frame[15],
            "mic": (frame[16] << 8) | frame[17],
        }
        return decoded("eddystone-tlm", None, fields)
    return MALFORMED


def decode_altbeacon(ad: ParsedAd) -> Decoded | None:
    for company, payload in ad.manufacturer_data.items():
        if payload[:2] == ALTBEACON_CODE:
            if len(payload) != ALTBEACON_LEN:
                return MALFORMED
            beacon_id = payload[2:22].hex()
            return decoded(
                "altbeacon",
                "altbeacon:" + beacon_id,
                {
                    "company": company,
                    "tx_power": int8(payload[22]),
                    "reserved": payload[23],
                },
            )
    return None
