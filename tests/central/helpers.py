"""Builders for central tests: presence records and signed batches."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.envelope import encode_batch, make_body

T0 = 1_596_844_800.0  # 2020-08-08T00:00:00Z, the Bluezone vectors' day


def presence(
    key: str,
    start: float,
    end: float,
    *,
    seq: int,
    gateway: str = "gw-1",
    zone: str = "room-a",
    zone_kind: str = "shift_room",
    keys: list[str] | None = None,
    near_s: float | None = None,
    far_s: float = 0.0,
) -> dict[str, Any]:
    near = (end - start) if near_s is None else near_s
    return {
        "kind": "presence",
        "seq": seq,
        "gateway": gateway,
        "zone": zone,
        "zone_kind": zone_kind,
        "key": key,
        "keys": keys or [key],
        "start": start,
        "end": end,
        "n": 10,
        "rssi_min": -80,
        "rssi_median": -65,
        "rssi_max": -55,
        "band_s": {"immediate": 0.0, "near": near, "far": far_s},
        "clock": "synced",
    }


def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_pem(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def batch(
    records: list[dict[str, Any]],
    key: Ed25519PrivateKey | None,
    *,
    gateway: str = "gw-1",
    site: str = "mine-a",
    boot: int = 1,
) -> bytes:
    body = make_body(site=site, gateway=gateway, boot=boot, records=records, sent=T0)
    return encode_batch(body, key)


def topic(gateway: str = "gw-1", site: str = "mine-a", leaf: str = "records") -> str:
    return f"bluegate/v1/{site}/{gateway}/{leaf}"
