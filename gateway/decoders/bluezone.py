"""PURE: Bluezone (Vietnam) advertisements, protocols.md section 1.

- v3 Android (1.3): 16-bit UUID 0x4E56 + manufacturer data of company 0x22B5 whose
  payload is the 12-byte rolling BluezoneID -> key `bluezone:<24 hex>`.
- v3 iOS foreground (1.4): 128-bit UUID 00004E56-73F5-4BC4-A12F-17D1AD07A667; the ID
  is not advertised -> key None, needs_gatt.
- v3 iOS background (1.4): Apple overflow area `4C 00 01` + 16-byte bitmap with
  bit 0x08 of byte 0 set -> key None, needs_gatt, `probable` (the overflow hash
  collides; protocols.md 8.2).
- v1 Android (1.8): company 0x22B5 + 6 ASCII alphanumerics + UUID E20A39F4-...-A889.
- v1 iOS (1.8): UUID E20A39F4-...-A667 + a 10-char obfuscated local name.
- The Bluezone iOS wake-up iBeacon (1.9) is handled in `beacons.py`.
"""

from __future__ import annotations

from typing import Final

from gateway.adstruct import ParsedAd
from gateway.decoders.base import MALFORMED, decoded
from gateway.models import Decoded

UUID16_BLUEZONE: Final = 0x4E56
COMPANY_BLUEZONE: Final = 0x22B5  # 8885, "XU" in the app's source
COMPANY_APPLE: Final = 0x004C
ID_LEN: Final = 12
IOS_SERVICE_UUID: Final = "00004e56-73f5-4bc4-a12f-17d1ad07a667"
IOS_CHAR_UUID: Final = "00004e56-73f5-4bc4-a12f-17d1ad07a689"
V1_ANDROID_UUID: Final = "e20a39f4-73f5-4bc4-a12f-17d1ad07a889"
V1_IOS_UUID: Final = "e20a39f4-73f5-4bc4-a12f-17d1ad07a667"
V1_CODE_LEN: Final = 6
V1_NO_CODE: Final = "BLEios"  # sent by v1 iOS before a code exists (1.8)
APPLE_OVERFLOW: Final = 0x01
OVERFLOW_BIT_BLUEZONE: Final = 0x08  # bitmap byte 0 (Bluezone's own Android filter)

_ALNUM: Final = frozenset(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

_IOS_FOREGROUND_FIELDS: Final = {"os": "ios", "state": "foreground"}


def decode_v3_android(ad: ParsedAd) -> Decoded | None:
    payload = ad.manufacturer_data.get(COMPANY_BLUEZONE)
    if payload is None or UUID16_BLUEZONE not in ad.uuid16:
        return None
    if len(payload) != ID_LEN:
        # Bluezone's own receivers accept exactly 12 bytes (1.3); v1's 6-char code
        # goes with a 128-bit UUID, not 0x4E56.
        return MALFORMED
    return decoded("bluezone", "bluezone:" + payload.hex(), {"os": "android"})


def decode_ios_foreground(ad: ParsedAd) -> Decoded | None:
    if IOS_SERVICE_UUID not in ad.uuid128:
        return None
    fields = dict(_IOS_FOREGROUND_FIELDS)
    if ad.local_name is not None:
        fields["name"] = ad.local_name
    return decoded("bluezone", None, fields, needs_gatt=True)


def decode_v1_android(ad: ParsedAd) -> Decoded | None:
    payload = ad.manufacturer_data.get(COMPANY_BLUEZONE)
    if payload is None or V1_ANDROID_UUID not in ad.uuid128:
        return None
    if len(payload) != V1_CODE_LEN or not _ALNUM.issuperset(payload):
        return MALFORMED
    return decoded(
        "bluezone-v1", "bluezone-v1:" + payload.decode("ascii"), {"os": "android"}
    )


def decode_v1_ios_name(name: str) -> str | None:
    """The 6-char code hidden in a v1 iOS local name, or None if it is not one.

    protocols.md 1.8: name = D1 + 8 chars + D2 with D1, D2 distinct digits 1..5;
    lo/hi = min/max; drop the chars at 0-based positions lo and hi+1 of the middle
    eight; check that the dropped char at hi+1 equals code[lo-1] and the one at lo
    equals code[hi-1].
    """
    if len(name) != 10:
        return None
    d1, middle, d2 = name[0], name[1:9], name[9]
    if d1 not in "12345" or d2 not in "12345" or d1 == d2:
        return None
    lo, hi = sorted((int(d1), int(d2)))
    code = middle[:lo] + middle[lo + 1 : hi + 1] + middle[hi + 2 :]
    if middle[hi + 1] != code[lo - 1] or middle[lo] != code[hi - 1]:
        return None
    if not all(c.isascii() and c.isalnum() for c in code):
        return None
    return code


def encode_v1_ios_name(code: str, d1: int, d2: int) -> str:
    """The inverse of decode_v1_ios_name (for tests and the simulator)."""
    lo, hi = sorted((d1, d2))
    with_lo = code[:lo] + code[hi - 1] + code[lo:]
    middle = with_lo[: hi + 1] + code[lo - 1] + with_lo[hi + 1 :]
    return f"{d1}{middle}{d2}"


def decode_v1_ios(ad: ParsedAd) -> Decoded | None:
    if V1_IOS_UUID not in ad.uuid128:
        return None
    name = ad.local_name
    if name is None:
        # The name often travels in the SCAN_RSP: without it the phone is known
        # to be there but not who it is.
        return decoded("bluezone-v1", None, {"os": "ios", "name_missing": True})
    if name == V1_NO_CODE:
        return decoded("bluezone-v1", None, {"os": "ios", "no_code": True})
    code = decode_v1_ios_name(name)
    if code is None:
        return MALFORMED
    return decoded("bluezone-v1", "bluezone-v1:" + code, {"os": "ios"})


def decode_ios_background(ad: ParsedAd) -> Decoded | None:
    payload = ad.manufacturer_data.get(COMPANY_APPLE)
    if (
        payload is None
        or len(payload) < 17
        or payload[0] != APPLE_OVERFLOW
        or not payload[1] & OVERFLOW_BIT_BLUEZONE
    ):
        return None
    return decoded(
        "bluezone",
        None,
        {"os": "ios", "state": "background", "probable": True},
        needs_gatt=True,
    )
