"""PURE: BlueTrace / OpenTrace (TraceTogether, COVIDSafe), protocols.md section 3.

Recognised but not identified: the TempID is only readable over GATT (3.2), so the
key is None and the result is flagged needs_gatt. Android senders add manufacturer
data of company 0x03FF with up to 3 random ASCII chars and a TX-power AD (3.1);
iOS in the background sets bit 0x01 of byte 1 of Apple's overflow bitmap.
"""

from __future__ import annotations

from typing import Any, Final

from gateway.adstruct import ParsedAd
from gateway.decoders.base import decoded
from gateway.models import Decoded

SERVICE_UUIDS: Final = {
    "b82ab3fc-1595-4f6a-80f0-fe094cc218f9": "production",
    "17e033d3-490e-4bc9-9fe8-2f567643f4d3": "opentrace-staging",
    "cc0ac8b7-03b5-4252-8d84-44d199e16065": "covidsafe-staging",
}
COMPANY_BLUETRACE: Final = 0x03FF
COMPANY_APPLE: Final = 0x004C
OVERFLOW_BIT_BLUETRACE: Final = 0x01  # bitmap byte 1


def decode_bluetrace(ad: ParsedAd) -> Decoded | None:
    for uuid in ad.uuid128:
        variant = SERVICE_UUIDS.get(uuid)
        if variant is not None:
            break
    else:
        return None
    fields: dict[str, Any] = {"service": variant}
    if ad.tx_power is not None:
        fields["tx_power"] = ad.tx_power
    chars = ad.manufacturer_data.get(COMPANY_BLUETRACE)
    if chars is not None:
        fields["mfr"] = chars.decode("ascii", "replace")
        fields["os"] = "android"
    elif ad.local_name == "TR":
        fields["os"] = "ios"
    return decoded("bluetrace", None, fields, needs_gatt=True)


def decode_bluetrace_background(ad: ParsedAd) -> Decoded | None:
    payload = ad.manufacturer_data.get(COMPANY_APPLE)
    if (
        payload is None
        or len(payload) < 17
        or payload[0] != 0x01
        or not payload[2] & OVERFLOW_BIT_BLUETRACE
    ):
        return None
    return decoded(
        "bluetrace",
        None,
        {"os": "ios", "state": "background", "probable": True},
        needs_gatt=True,
    )
