"""PURE: Google/Apple Exposure Notification, protocols.md section 2.1.

Service data for UUID 0xFD6F: 16-byte Rolling Proximity Identifier, then 4 bytes of
Associated Encrypted Metadata. The key is the RPI; the AEM is kept as a field
(without the day's TEK it cannot be decrypted, 2.4, but a later match can).
Google's own scanner filters on the service data alone, so the 16-bit UUID list
entry (which the spec requires) is reported as a field rather than required.
"""

from __future__ import annotations

from typing import Final

from gateway.adstruct import ParsedAd
from gateway.decoders.base import MALFORMED, decoded
from gateway.models import Decoded

UUID16_GAEN: Final = 0xFD6F
RPI_LEN: Final = 16
AEM_LEN: Final = 4


def decode_gaen(ad: ParsedAd) -> Decoded | None:
    payload = ad.service_data16.get(UUID16_GAEN)
    if payload is None:
        return None
    if len(payload) != RPI_LEN + AEM_LEN:
        return MALFORMED
    fields: dict[str, object] = {"aem": payload[RPI_LEN:].hex()}
    if UUID16_GAEN not in ad.uuid16:
        fields["uuid_listed"] = False
    return decoded("gaen", "gaen:" + payload[:RPI_LEN].hex(), fields)
