"""The AD-structure parser: layouts of protocols.md 5.3, bounds, never raising."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.adstruct import parse_ad, significant, uuid128_air, uuid128_str

BLUEZONE_ANDROID = bytes.fromhex("0201020FFFB522B9A665D754FE65E665D76A450303564E")
BLUEZONE_IOS_UUID = "00004e56-73f5-4bc4-a12f-17d1ad07a667"


def test_bluezone_android_example_of_protocols_md():
    ad = parse_ad(BLUEZONE_ANDROID)
    assert ad.flags == 0x02
    assert ad.uuid16 == (0x4E56,)
    assert ad.manufacturer_data == {0x22B5: bytes.fromhex("B9A665D754FE65E665D76A45")}
    assert ad.types == (0x01, 0xFF, 0x03)
    assert not ad.malformed
    assert ad.length == len(BLUEZONE_ANDROID)


def test_uuid128_is_byte_reversed_on_air():
    air = bytes.fromhex("67A607ADD1172FA1C44BF573564E0000")  # protocols.md 1.2
    assert uuid128_str(air) == BLUEZONE_IOS_UUID
    assert uuid128_air(BLUEZONE_IOS_UUID) == air
    ad = parse_ad(bytes.fromhex("020106") + b"\x11\x07" + air + b"\x09\x09Bluezone")
    assert ad.uuid128 == (BLUEZONE_IOS_UUID,)
    assert ad.local_name == "Bluezone"
    assert ad.name_complete


def test_every_field_type():
    data = bytes.fromhex(
        "020106"  # flags
        "050312345678"  # two 16-bit UUIDs
        "0505efbeadde"  # one 32-bit UUID
        "0208"
        + b"S".hex()  # short name ...
        + "0409"
        + b"Tag".hex()  # ... replaced by the complete one
        + "020AF4"  # TX power -12
        "0516aafe2000"  # service data 16
        "0720efbeadde0102"  # service data 32
        "12" + "21" + "00" * 15 + "01" + "ab"  # service data 128
        "05FF4C000215"  # Apple
        "05FF4C00FFFF"  # a second Apple record is ignored
    )
    ad = parse_ad(data)
    assert not ad.malformed
    assert ad.uuid16 == (0x3412, 0x7856)
    assert ad.uuid32 == (0xDEADBEEF,)
    assert ad.local_name == "Tag"
    assert ad.name_complete
    assert ad.tx_power == -12
    assert ad.service_data16 == {0xFEAA: b"\x20\x00"}
    assert ad.service_data32 == {0xDEADBEEF: b"\x01\x02"}
    assert ad.service_data128 == {"01000000-0000-0000-0000-000000000000": b"\xab"}
    assert ad.manufacturer_data == {0x004C: b"\x02\x15"}
    summary = ad.summary()
    assert summary["uuid16"] == ["3412", "7856"]
    assert summary["manufacturer_data"] == {"004c": "0215"}
    assert summary["service_data"]["feaa"] == "2000"


def test_padding_ends_parsing_and_is_not_damage():
    ad = parse_ad(BLUEZONE_ANDROID + bytes(8))
    assert not ad.malformed
    assert ad.length == len(BLUEZONE_ANDROID)
    assert significant(BLUEZONE_ANDROID + bytes(8)) == BLUEZONE_ANDROID


def test_truncated_structure_stops_and_keeps_what_came_before():
    ad = parse_ad(BLUEZONE_ANDROID[:-1])
    assert ad.malformed
    assert ad.flags == 0x02
    assert 0x22B5 in ad.manufacturer_data
    assert ad.uuid16 == ()
    assert significant(BLUEZONE_ANDROID[:-1]) == BLUEZONE_ANDROID[:19]


def test_wrong_sized_fields_are_flagged_and_skipped():
    for bad in ("0101", "0203aa", "010A", "02FF4C", "0216aa", "0306" + "aa" * 2):
        ad = parse_ad(bytes.fromhex(bad + "0209" + b"x".hex()))
        assert ad.malformed, bad
        assert ad.local_name == "x", bad  # parsing went on past the bad field


def test_empty_and_odd_inputs():
    assert parse_ad(b"") == parse_ad(b"\x00")
    assert not parse_ad(b"").malformed
    assert parse_ad(b"\xff").malformed
    assert parse_ad(bytes.fromhex("0209ff")).local_name == "\ufffd"  # not UTF-8


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_never_raise(data):
    ad = parse_ad(data)
    assert 0 <= ad.length <= len(data)
    ad.summary()
    # significant() is a prefix made of whole structures only.
    head = significant(data)
    assert data.startswith(head)
    assert parse_ad(head).length == len(head) == ad.length


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=len(BLUEZONE_ANDROID)))
def test_any_truncation_of_a_real_payload(cut):
    ad = parse_ad(BLUEZONE_ANDROID[:cut])
    assert ad.malformed == (cut not in (0, 3, 19, len(BLUEZONE_ANDROID)))
