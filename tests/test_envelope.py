"""The signed batch: round trip, and every way a batch is rejected with its reason."""

from __future__ import annotations

import zlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import envelope
from gateway.envelope import BatchRejected

KEY = Ed25519PrivateKey.generate()
PUB = KEY.public_key()


def _body(**over):
    records = [
        {
            "kind": "gate",
            "gateway": "gw1",
            "key": "gaen:" + "ab" * 16,
            "t": 1.0,
            "direction": "in",
            "seq": 7,
        }
    ]
    body = envelope.make_body(
        site="mine-a", gateway="gw1", boot=3, records=records, sent=2.0
    )
    body.update(over)
    return body


def test_round_trip_signed() -> None:
    payload = envelope.encode_batch(_body(), KEY)
    assert payload.startswith(b"BGB1")
    body = envelope.decode_batch(payload, PUB, site="mine-a", gateway="gw1")
    assert body["seq"] == 7
    assert body["records"][0]["direction"] == "in"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda p: p[:4] + bytes([p[4] ^ 1]) + p[5:], "bad-signature"),
        (lambda p: p[:-1] + bytes([p[-1] ^ 1]), "bad-signature"),
        (lambda p: b"XXXX" + p[4:], "malformed"),
        (lambda p: p[:20], "malformed"),
    ],
)
def test_tampered(mutate, reason) -> None:
    with pytest.raises(BatchRejected) as info:
        envelope.decode_batch(mutate(envelope.encode_batch(_body(), KEY)), PUB)
    assert info.value.reason == reason


def test_wrong_key_and_unsigned() -> None:
    payload = envelope.encode_batch(_body(), KEY)
    with pytest.raises(BatchRejected) as info:
        envelope.decode_batch(payload, Ed25519PrivateKey.generate().public_key())
    assert info.value.reason == "bad-signature"
    unsigned = envelope.encode_batch(_body(), None)
    with pytest.raises(BatchRejected) as info:
        envelope.decode_batch(unsigned, PUB)
    assert info.value.reason == "unsigned"
    assert envelope.decode_batch(unsigned, None, require_signature=False)["boot"] == 3
    with pytest.raises(BatchRejected) as info:
        envelope.decode_batch(payload, None)
    assert info.value.reason == "unknown-gateway"


def test_topic_mismatch_and_schema() -> None:
    with pytest.raises(BatchRejected) as info:
        envelope.decode_batch(envelope.encode_batch(_body(), KEY), PUB, gateway="gw2")
    assert info.value.reason == "topic-mismatch"
    for bad in (
        {"v": 2},
        {"boot": -1},
        {"records": []},
        {"records": [{"kind": "x", "seq": 1}]},
    ):
        with pytest.raises(BatchRejected):
            envelope.decode_batch(envelope.encode_batch(_body(**bad), KEY), PUB)


def test_zip_bomb_refused() -> None:
    bomb = envelope.MAGIC_UNSIGNED + zlib.compress(
        b" " * (envelope.MAX_BODY_BYTES + 10)
    )
    with pytest.raises(BatchRejected) as info:
        envelope.decode_batch(bomb, None, require_signature=False)
    assert info.value.reason == "too-large"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_rejected_cleanly(data: bytes) -> None:
    try:
        envelope.decode_batch(data, PUB, require_signature=False)
    except BatchRejected:
        pass


def test_topics() -> None:
    assert (
        envelope.topic("bluegate/v1", "mine-a", "bus-07", "records")
        == "bluegate/v1/mine-a/bus-07/records"
    )
    assert envelope.parse_topic("bluegate/v1/mine-a/bus-07/records") == (
        "mine-a",
        "bus-07",
        "records",
    )
    assert envelope.parse_topic("bluegate/v1/mine-a/records") is None
