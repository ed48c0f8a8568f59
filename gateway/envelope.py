"""Pure: the signed batch that carries edge records from a gateway to central.

Wire format of one MQTT message on `bluegate/v1/<site>/<gateway>/records`:

    signed:    b"BGB1" || Ed25519 signature (64 bytes) || zlib(body)
    unsigned:  b"BGU1" || zlib(body)          (only where central allows it)

The signature covers the exact bytes sent after it, prefixed by the magic
(b"BGB1" || zlib(body)): central verifies those bytes BEFORE decompressing or
parsing anything, and never re-serialises before verifying (style.md 3.3).

The body is canonical JSON (sorted keys, compact):

    {"v": 1, "site": str, "gateway": str, "boot": int, "seq": int (first record's),
     "sent": float (Unix s, the gateway's clock), "records": [{..., "seq": int}, ...]}

Every record carries its own `seq`; `(gateway, boot, seq)` identifies it forever, so
ingest is idempotent under the redelivery that at-least-once MQTT implies.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

MAGIC_SIGNED: Final = b"BGB1"
MAGIC_UNSIGNED: Final = b"BGU1"
SIGNATURE_LEN: Final = 64
# A batch of 500 presence records is ~150 kB of JSON; refuse anything that inflates
# past this, so a hostile payload cannot exhaust central's memory (zip bomb).
MAX_BODY_BYTES: Final = 16 * 1024 * 1024
VERSION: Final = 1
RECORD_KINDS: Final = frozenset({"presence", "gate", "occupancy"})


class BatchRejected(Exception):
    """A batch central must quarantine; `reason` is a short stable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


def canonical_json(obj: Any) -> bytes:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def make_body(
    *,
    site: str,
    gateway: str,
    boot: int,
    records: Sequence[Mapping[str, Any]],
    sent: float,
) -> dict[str, Any]:
    if not records:
        raise ValueError("a batch holds at least one record")
    return {
        "v": VERSION,
        "site": site,
        "gateway": gateway,
        "boot": boot,
        "seq": min(int(r["seq"]) for r in records),
        "sent": sent,
        "records": [dict(r) for r in records],
    }


def encode_batch(
    body: Mapping[str, Any], signing_key: Ed25519PrivateKey | None
) -> bytes:
    """Compress and (if a key is given) sign; the result is sent byte for byte."""
    compressed = zlib.compress(canonical_json(body), 6)
    if signing_key is None:
        return MAGIC_UNSIGNED + compressed
    signature = signing_key.sign(MAGIC_SIGNED + compressed)
    return MAGIC_SIGNED + signature + compressed


def split_payload(payload: bytes) -> tuple[bool, bytes, bytes]:
    """(signed, signature, compressed body); raises BatchRejected on bad framing."""
    if payload.startswith(MAGIC_SIGNED):
        if len(payload) < 4 + SIGNATURE_LEN + 1:
            raise BatchRejected("malformed", "signed batch shorter than its signature")
        return True, payload[4 : 4 + SIGNATURE_LEN], payload[4 + SIGNATURE_LEN :]
    if payload.startswith(MAGIC_UNSIGNED):
        return False, b"", payload[4:]
    raise BatchRejected("malformed", "not a BlueGate batch (bad magic)")


def verify(
    payload: bytes, public_key: Ed25519PublicKey | None, *, require_signature: bool
) -> bytes:
    """Check framing and signature; return the still-compressed body bytes."""
    signed, signature, compressed = split_payload(payload)
    if not signed:
        if require_signature:
            raise BatchRejected("unsigned", "central requires signed batches")
        return compressed
    if public_key is None:
        if require_signature:
            raise BatchRejected(
                "unknown-gateway", "no enrolled signing key for this gateway"
            )
        return compressed
    try:
        public_key.verify(signature, MAGIC_SIGNED + compressed)
    except InvalidSignature:
        raise BatchRejected(
            "bad-signature", "Ed25519 signature does not verify"
        ) from None
    return compressed


def inflate(compressed: bytes) -> bytes:
    decompressor = zlib.decompressobj()
    try:
        body = decompressor.decompress(compressed, MAX_BODY_BYTES)
    except zlib.error as exc:
        raise BatchRejected("malformed", f"body is not zlib data ({exc})") from None
    if decompressor.unconsumed_tail:
        raise BatchRejected("too-large", f"body inflates past {MAX_BODY_BYTES} bytes")
    if not decompressor.eof:
        raise BatchRejected("malformed", "body is truncated")
    return body


def parse_body(
    raw: bytes, *, site: str | None = None, gateway: str | None = None
) -> dict[str, Any]:
    """Parse and validate the body; `site`/`gateway` come from the topic and must match."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BatchRejected("malformed", f"body is not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise BatchRejected("malformed", "body is not an object")
    if body.get("v") != VERSION:
        raise BatchRejected("unsupported-version", f"v={body.get('v')!r}")
    for name in ("site", "gateway"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise BatchRejected("malformed", f"missing {name}")
    if gateway is not None and body["gateway"] != gateway:
        raise BatchRejected("topic-mismatch", "body gateway differs from the topic's")
    if site is not None and body["site"] != site:
        raise BatchRejected("topic-mismatch", "body site differs from the topic's")
    for name in ("boot", "seq"):
        value = body.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BatchRejected("malformed", f"{name} must be a non-negative integer")
    records = body.get("records")
    if not isinstance(records, list) or not records:
        raise BatchRejected("malformed", "records must be a non-empty list")
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise BatchRejected("malformed", f"records[{index}] is not an object")
        seq = record.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise BatchRejected(
                "malformed", f"records[{index}].seq must be a non-negative integer"
            )
        if record.get("kind") not in RECORD_KINDS:
            raise BatchRejected(
                "malformed",
                f"records[{index}].kind is not one of {sorted(RECORD_KINDS)}",
            )
    return body


def decode_batch(
    payload: bytes,
    public_key: Ed25519PublicKey | None,
    *,
    require_signature: bool = True,
    site: str | None = None,
    gateway: str | None = None,
) -> dict[str, Any]:
    """verify -> inflate -> parse; raises BatchRejected with a reason code."""
    return parse_body(
        inflate(verify(payload, public_key, require_signature=require_signature)),
        site=site,
        gateway=gateway,
    )


def topic(prefix: str, site: str, gateway: str, leaf: str) -> str:
    """`bluegate/v1/<site>/<gateway>/<leaf>` (leaf: records, status, health, config)."""
    return f"{prefix}/{site}/{gateway}/{leaf}"


def parse_topic(name: str, prefix: str = "bluegate/v1") -> tuple[str, str, str] | None:
    """(site, gateway, leaf) of a topic under `prefix`, or None."""
    if not name.startswith(prefix + "/"):
        return None
    parts = name[len(prefix) + 1 :].split("/")
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]
