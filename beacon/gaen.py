"""Pure: Exposure Notification key schedule (protocols.md 2.3; Google/Apple
"Exposure Notification - Cryptography Specification" v1.2).

RPIK = HKDF-SHA256(TEK, salt=None, info="EN-RPIK", 16); AEMK likewise with "EN-AEMK";
RPI_j = AES-128-ECB(RPIK, "EN-RPI" || 0x00*6 || ENIN_j as uint32 little-endian);
AEM_j = AES-128-CTR(AEMK, counter block = RPI_j, metadata).
"""

from __future__ import annotations

import struct
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

EN_INTERVAL_S: Final = 600
TEK_ROLLING_PERIOD: Final = 144
RPI_PREFIX: Final = b"EN-RPI" + bytes(6)


def interval_number(unix_s: float) -> int:
    """ENIntervalNumber: 10-minute intervals since the Unix epoch."""
    return int(unix_s // EN_INTERVAL_S)


def _hkdf(tek: bytes, info: bytes) -> bytes:
    if len(tek) != 16:
        raise ValueError("a temporary exposure key is 16 bytes")
    return HKDF(algorithm=hashes.SHA256(), length=16, salt=None, info=info).derive(tek)


def rpik(tek: bytes) -> bytes:
    return _hkdf(tek, b"EN-RPIK")


def aemk(tek: bytes) -> bytes:
    return _hkdf(tek, b"EN-AEMK")


def rpi(rpi_key: bytes, interval: int) -> bytes:
    padded = RPI_PREFIX + struct.pack("<I", interval & 0xFFFFFFFF)
    encryptor = Cipher(algorithms.AES(rpi_key), modes.ECB()).encryptor()  # noqa: S305 - the spec's single-block PRP
    return encryptor.update(padded) + encryptor.finalize()


def aem(aem_key: bytes, rolling_id: bytes, metadata: bytes) -> bytes:
    """Encrypt (or decrypt: CTR is symmetric) the 4 metadata bytes."""
    encryptor = Cipher(algorithms.AES(aem_key), modes.CTR(rolling_id)).encryptor()
    return encryptor.update(metadata) + encryptor.finalize()


def metadata_bytes(tx_power_dbm: int, version: int = 0x40) -> bytes:
    """BLE metadata (protocols.md 2.2): version byte, TX power (int8), 2 reserved."""
    return bytes([version & 0xFF, tx_power_dbm & 0xFF, 0, 0])


def schedule(
    tek: bytes, first_interval: int, count: int, metadata: bytes
) -> list[tuple[int, bytes, bytes]]:
    """(interval, RPI, AEM) for `count` intervals from `first_interval`."""
    k_rpi = rpik(tek)
    k_aem = aemk(tek)
    out: list[tuple[int, bytes, bytes]] = []
    for interval in range(first_interval, first_interval + count):
        rolling = rpi(k_rpi, interval)
        out.append((interval, rolling, aem(k_aem, rolling, metadata)))
    return out
