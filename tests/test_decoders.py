"""Decoders against protocols.md's layouts, the shared vectors and hostile bytes."""

from __future__ import annotations

import json
import pickle
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gateway.decoders as dec
from gateway.adstruct import uuid128_air
from gateway.decoders import (
    DecodeStats,
    classify,
    decode_ad,
    sighting_from_report,
)
from gateway.decoders.bluezone import decode_v1_ios_name, encode_v1_ios_name
from gateway.models import AddrType, Report

BLUEZONE_EXAMPLE = "0201020FFFB522B9A665D754FE65E665D76A450303564E"  # protocols.md 1.3
IOS_UUID_AD = "1107" + uuid128_air("00004e56-73f5-4bc4-a12f-17d1ad07a667").hex()
IOS_NAME_AD = "0909" + b"Bluezone".hex()
OVERFLOW_BLUEZONE = "14FF4C0001" + "08" + "00" * 15  # Bluezone v3 Android's iOS filter


def hexdecode(h: str):
    return decode_ad(bytes.fromhex(h))


def android_advert(bluezone_id_hex: str, flags: int = 0x1A) -> bytes:
    return bytes.fromhex(f"0201{flags:02x}0FFFB522{bluezone_id_hex}0303564E")


def gaen_advert(rpi: str, aem: str) -> bytes:
    return bytes.fromhex(f"02011A03036FFD17166FFD{rpi}{aem}")


# -- Bluezone -------------------------------------------------------------------


def test_bluezone_android_example():
    d = hexdecode(BLUEZONE_EXAMPLE)
    assert d is not None
    assert d.format == "bluezone"
    assert d.key == "bluezone:b9a665d754fe65e665d76a45"
    assert not d.needs_gatt
    assert d.to_json() == {
        "format": "bluezone",
        "key": "bluezone:b9a665d754fe65e665d76a45",
        "os": "android",
    }


def test_every_derived_bluezone_id_of_the_real_daily_key(shared_data):
    text = (shared_data / "vectors" / "bluezone_test_vectors.txt").read_text()
    ids = re.findall(r"^\s*\d+\s+\S+Z\s+([0-9A-F]{24})", text, re.M)
    assert len(ids) >= 96
    for i, bid in enumerate(ids):
        d = decode_ad(android_advert(bid, flags=(0x02, 0x06, 0x1A)[i % 3]))
        assert d is not None
        assert d.key == "bluezone:" + bid.lower()


def test_bluezone_id_of_wrong_length_is_malformed_not_a_person():
    data = bytes.fromhex("0201020EFFB522B9A665D754FE65E665D76A0303564E")  # 11 bytes
    assert classify(data) == (None, "malformed")


def test_bluezone_without_its_uuid_is_not_bluezone():
    assert classify(bytes.fromhex("0201020FFFB522B9A665D754FE65E665D76A45"))[1] == (
        "unknown"
    )


def test_bluezone_ios_foreground_needs_gatt():
    d = hexdecode("020106" + IOS_UUID_AD)
    assert d is not None
    assert (d.format, d.key, d.needs_gatt) == ("bluezone", None, True)
    assert d.fields["os"] == "ios"
    assert d.fields["state"] == "foreground"
    merged = hexdecode("020106" + IOS_UUID_AD + IOS_NAME_AD)  # ADV + SCAN_RSP
    assert merged is not None
    assert merged.fields["name"] == "Bluezone"
    assert merged.to_json()["needs_gatt"] is True


@pytest.mark.parametrize(
    ("bitmap0", "recognised"), [(0x08, True), (0x0A, True), (0x02, False), (0, False)]
)
def test_bluezone_ios_background_overflow_bit(bitmap0, recognised):
    d = hexdecode(f"02011A14FF4C0001{bitmap0:02x}" + "00" * 15)
    if recognised:
        assert d is not None
        assert (d.format, d.key, d.needs_gatt) == ("bluezone", None, True)
        assert d.fields["state"] == "background"
        assert d.fields["probable"] is True
    else:
        assert d is None


def test_an_advertised_id_wins_over_the_overflow_hash():
    d = decode_ad(
        android_advert("B9A665D754FE65E665D76A45") + bytes.fromhex(OVERFLOW_BLUEZONE)
    )
    assert d is not None
    assert d.key == "bluezone:b9a665d754fe65e665d76a45"


def test_bluezone_v1_android():
    data = bytes.fromhex(
        "02010209FFB522" + b"aB3xY9".hex() + "1107" + "89A807ADD1172FA1C44BF573F4390AE2"
    )
    assert len(data) == 31  # protocols.md 1.8: exactly 31 bytes
    d = decode_ad(data)
    assert d is not None
    assert (d.format, d.key) == ("bluezone-v1", "bluezone-v1:aB3xY9")
    bad = data.replace(b"aB3xY9", b"aB3x-9")
    assert classify(bad) == (None, "malformed")


@pytest.mark.parametrize("d1", range(1, 6))
@pytest.mark.parametrize("d2", range(1, 6))
def test_bluezone_v1_ios_name_round_trip(d1, d2):
    code = "Q7z0Kp"
    if d1 == d2:
        assert decode_v1_ios_name(f"{d1}abcdefgh{d2}") is None
        return
    name = encode_v1_ios_name(code, d1, d2)
    assert len(name) == 10
    assert decode_v1_ios_name(name) == code
    uuid_ad = "1107" + uuid128_air("e20a39f4-73f5-4bc4-a12f-17d1ad07a667").hex()
    d = hexdecode("020106" + uuid_ad + "0B09" + name.encode().hex())
    assert d is not None
    assert d.key == "bluezone-v1:" + code


def test_bluezone_v1_ios_without_a_valid_name():
    uuid_ad = "1107" + uuid128_air("e20a39f4-73f5-4bc4-a12f-17d1ad07a667").hex()
    no_name = hexdecode("020106" + uuid_ad)
    assert no_name is not None
    assert no_name.key is None
    assert no_name.fields["name_missing"]
    no_code = hexdecode("020106" + uuid_ad + "0709" + b"BLEios".hex())
    assert no_code is not None
    assert no_code.key is None
    # a checksum char that does not match: recognised marker, broken layout
    name = encode_v1_ios_name("Q7z0Kp", 2, 4)
    broken = name[:3] + ("x" if name[3] != "x" else "y") + name[4:]
    assert decode_v1_ios_name(broken) is None
    assert (
        classify(bytes.fromhex("020106" + uuid_ad + "0B09" + broken.encode().hex()))[1]
        == "malformed"
    )


def test_bluezone_wake_ibeacon_is_not_a_person():
    uuid = "C7AFEF7B17884F4AA87D691D53BF21C4"
    d = hexdecode(f"0201061AFF4C000215{uuid}00140014C5")
    assert d is not None
    assert (d.format, d.key) == ("bluezone-wake", None)
    assert d.fields["major"] == 20
    assert d.fields["tx_power"] == -59


# -- Exposure Notification ------------------------------------------------------


def test_all_official_gaen_vectors(shared_data):
    vectors = json.loads(
        (shared_data / "vectors" / "gaen_crypto_test_vectors_v1.2.json").read_text()
    )
    rows = vectors["advertised"]
    assert len(rows) == 144
    for row in rows:
        d = decode_ad(gaen_advert(row["rpi"], row["aem"]))
        assert d is not None
        assert d.format == "gaen"
        assert d.key == "gaen:" + row["rpi"].lower()
        assert d.fields["aem"] == row["aem"].lower()


def test_gaen_with_wrong_length_is_malformed():
    assert (
        classify(bytes.fromhex("02011A03036FFD13166FFD" + "11" * 16))[1] == "malformed"
    )


def test_gaen_without_uuid_list_is_still_read_and_flagged():
    d = hexdecode("17166FFD" + "22" * 16 + "01020304")
    assert d is not None
    assert d.key == "gaen:" + "22" * 16
    assert d.fields["uuid_listed"] is False


# -- BlueTrace --------------------------------------------------------------------


def test_bluetrace_android_layout_of_protocols_md():
    uuid = uuid128_air("b82ab3fc-1595-4f6a-80f0-fe094cc218f9").hex()
    data = bytes.fromhex("02010206FFFF03" + b"66a".hex() + "020AF41107" + uuid)
    assert len(data) == 31
    d = decode_ad(data)
    assert d is not None
    assert (d.format, d.key, d.needs_gatt) == ("bluetrace", None, True)
    assert d.fields == {
        "service": "production",
        "tx_power": -12,
        "mfr": "66a",
        "os": "android",
    }


def test_bluetrace_ios_background():
    d = hexdecode("02011A14FF4C000100" + "01" + "00" * 14)
    assert d is not None
    assert d.format == "bluetrace"
    assert d.fields["state"] == "background"


# -- Tags -------------------------------------------------------------------------


def beacontools():
    from tests.conftest import DATA

    return json.loads((DATA / "vectors" / "beacontools_vectors.json").read_text())[
        "ad_vectors"
    ]


@pytest.mark.parametrize("vector", beacontools(), ids=lambda v: v["name"])
def test_beacontools_vectors(vector):
    data = bytes.fromhex(vector["ad_hex"])
    d = decode_ad(data)
    exp = vector["expected"]
    name = vector["name"]
    if exp is None:
        assert d is None
        return
    if name == "eddystone_tlm_encrypted":
        # The vector's AD length byte (0x11) covers only 12 bytes of ciphertext: salt
        # and MIC lie outside the structure (beacontools reads past it). A
        # bounds-checked parser must not: the frame is truncated.
        assert classify(data) == (None, "malformed")
        return
    assert d is not None, name
    f = d.fields
    if exp["frame"] == "EddystoneUID":
        assert d.key == f"eddystone-uid:{exp['namespace']}:{exp['instance']}"
        assert f["tx_power"] == exp["tx_power"]
    elif exp["frame"] == "EddystoneURL":
        assert d.format == "eddystone-url"
        assert d.key is None
        assert f["url"] == exp["url"]
        assert f["tx_power"] == exp["tx_power"]
    elif exp["frame"] == "EddystoneTLM":
        assert d.format == "eddystone-tlm"
        assert d.key is None
        assert f["voltage_mv"] == exp["voltage_mv"]
        assert f["adv_count"] == exp["advertising_count"]
        assert f["uptime_s"] == pytest.approx(exp["seconds_since_boot"] / 10)
        if "temperature_c" in exp:
            assert f["temperature_c"] == exp["temperature_c"]
        else:
            assert f["temperature_c"] == pytest.approx(
                exp["temperature_c_approx"], abs=0.01
            )
    elif exp["frame"] == "EddystoneEID":
        assert d.key == "eddystone-eid:" + exp["eid_hex"]
        assert f["tx_power"] == exp["tx_power"]
    elif exp["frame"].startswith("iBeacon"):
        assert d.format == "ibeacon"
        assert d.key == f"ibeacon:{exp['uuid']}:{exp['major']}:{f['minor']}"
        assert f["uuid"] == exp["uuid"]
        assert f["major"] == exp["major"]
        assert f["tx_power"] == exp["tx_power"]
        if "minor" in exp:
            assert f["minor"] == exp["minor"]
    elif exp["frame"] == "ExposureNotification":
        assert d.key == "gaen:" + exp["rpi"]
        assert f["aem"] == exp["aem"]
    else:  # pragma: no cover - a new vector kind must be handled here
        pytest.fail(f"unhandled vector {name}")


def test_eddystone_tlm_edge_values():
    frame = "20000BB880000000000100000064"
    d = hexdecode("0303AAFE1116AAFE" + frame)
    assert d is not None
    assert d.fields["temperature_c"] is None
    assert d.fields["uptime_s"] == 10.0
    d = hexdecode("0303AAFE1116AAFE" + frame.replace("8000", "FF80"))
    assert d is not None
    assert d.fields["temperature_c"] == -0.5
    etlm = "2001" + "41" * 12 + "DEAD" + "BEEF"
    d = hexdecode("0303AAFE1516AAFE" + etlm)
    assert d is not None
    assert d.fields == {
        "version": 1,
        "encrypted": "41" * 12,
        "salt": 0xDEAD,
        "mic": 0xBEEF,
    }


def test_eddystone_url_expansions_and_reserved_codes():
    d = hexdecode("0303AAFE0C16AAFE10EB00" + b"abc".hex() + "07" + b"x".hex() + "00")
    assert d is not None
    assert d.fields["url"] == "http://www.abc.comx.com/"
    assert classify(bytes.fromhex("0303AAFE0816AAFE10EB0061FF"))[1] == "malformed"
    assert classify(bytes.fromhex("0303AAFE0716AAFE10EB0761"))[1] == "malformed"


def test_eddystone_uid_without_rfu():
    d = hexdecode("0303AAFE1516AAFE00E3" + "11" * 10 + "22" * 6)
    assert d is not None
    assert d.key == "eddystone-uid:" + "11" * 10 + ":" + "22" * 6


def test_altbeacon():
    beacon_id = bytes(range(20)).hex()
    d = hexdecode(f"1BFF1801BEAC{beacon_id}C500")
    assert d is not None
    assert d.key == "altbeacon:" + beacon_id
    assert d.fields == {"company": 0x0118, "tx_power": -59, "reserved": 0}
    assert classify(bytes.fromhex(f"1AFF1801BEAC{beacon_id}C5"))[1] == "malformed"


def test_ibeacon_key_is_lower_case_with_dashes():
    d = hexdecode("0201061AFF4C000215E2C56DB5DFFB48D2B060D0F5A71096E0FFFF0001C5")
    assert d is not None
    assert d.key == "ibeacon:e2c56db5-dffb-48d2-b060-d0f5a71096e0:65535:1"


# -- Unrelated adverts are unknown, not errors --------------------------------------

UNRELATED = {
    "apple_nearby": "02011A0AFF4C0010050B1C8A6F27",
    "apple_find_my": "1EFF4C001219" + "a7" * 25,
    "microsoft_cdp": "1EFF06000109" + "2b" * 25,
    "fast_pair": "0201060303 2CFE 06162CFE 00B727".replace(" ", ""),
    "samsung": "02011A0DFF7500420401806660E7C6D4B7",
    "named_speaker": "0201060B09" + b"JBL Flip 5".hex(),
}


@pytest.mark.parametrize("name", sorted(UNRELATED))
def test_unrelated_adverts_are_unknown(name):
    assert classify(bytes.fromhex(UNRELATED[name])) == (None, "unknown")


# -- Cache, immutability, stats ------------------------------------------------------


def test_results_are_cached_shared_and_read_only():
    data = bytes.fromhex(BLUEZONE_EXAMPLE)
    first = decode_ad(data)
    assert decode_ad(bytes(data)) is first
    assert decode_ad(bytearray(data)) is first
    assert first is not None
    with pytest.raises(TypeError):
        first.fields["os"] = "ios"  # type: ignore[index]
    with pytest.raises(TypeError):
        first.fields.update(x=1)
    assert dict(first.fields) == {"os": "android"}
    assert pickle.loads(pickle.dumps(first)) == first


def test_cache_is_bounded(monkeypatch):
    dec.clear_cache()
    monkeypatch.setattr(dec, "CACHE_MAX", 50)
    for i in range(500):
        decode_ad(gaen_advert(f"{i:032x}", "00000000"))
    assert len(dec._CACHE) <= 50
    dec.clear_cache()


def test_stats_and_sightings():
    stats = DecodeStats()
    base = dict(
        t=1596866400.25, addr="5E:12:34:56:78:9A", addr_type=AddrType.RANDOM, rssi=-67
    )
    reports = [
        Report(data=bytes.fromhex(BLUEZONE_EXAMPLE), gateway="bus-07", **base),
        Report(data=bytes.fromhex(UNRELATED["apple_nearby"]), **base),
        Report(data=b"\x05\xff", **base),
        Report(data=bytes.fromhex(BLUEZONE_EXAMPLE), **base),
    ]
    out = [sighting_from_report(r, stats) for r in reports]
    assert out[1] is None
    assert out[2] is None
    s = out[0]
    assert s is not None
    assert s.to_json() == {
        "format": "bluezone",
        "key": "bluezone:b9a665d754fe65e665d76a45",
        "os": "android",
        "t": 1596866400.25,
        "addr": "5E:12:34:56:78:9A",
        "addr_type": "random",
        "rssi": -67,
        "gateway": "bus-07",
    }
    assert stats.snapshot() == {"unknown": 1, "malformed": 1, "bluezone": 2, "total": 4}
    assert sighting_from_report(reports[0]) is not None  # stats are optional


# -- Hostile bytes ------------------------------------------------------------------

KNOWN = [BLUEZONE_EXAMPLE, OVERFLOW_BLUEZONE, "020106" + IOS_UUID_AD + IOS_NAME_AD] + [
    v["ad_hex"] for v in beacontools()
]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=260))
def test_any_bytes_never_raise(data):
    result, outcome = classify(data)
    assert (result is None) == (outcome in ("unknown", "malformed"))
    if result is not None:
        json.dumps(result.to_json())
        assert result.key is None or result.key == result.key.strip()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(KNOWN), st.integers(0, 40), st.binary(max_size=4))
def test_any_truncation_or_damage_of_real_payloads(hexdata, cut, junk):
    data = bytes.fromhex(hexdata)
    result, _ = classify(data[: len(data) - cut] + junk)
    if result is not None:
        json.dumps(result.to_json())
