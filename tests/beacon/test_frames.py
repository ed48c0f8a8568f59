"""Every beacon frame decodes with the gateway's own decoder to the key the beacon
meant: fixed layouts from protocols.md and beacontools, hypothesis over random keys
and times, and the real `bluegate-beacon frame` piped into `bluegate-gateway decode`."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beacon import bluezone, frames, gaen, plan
from beacon.config import BeaconConfig, EddystoneConfig, IBeaconConfig
from gateway.config import ZoneConfig
from gateway.decoders import decode_ad
from tests.beacon.helpers import beacon_yaml, cli, write_key

ZONE = ZoneConfig("room-a", "shift_room")


def test_bluezone_android_layout_is_protocols_example() -> None:
    # protocols.md 1.3, byte for byte (that phone's stack chose flags 0x02).
    rid = bytes.fromhex("B9A665D754FE65E665D76A45")
    want = "02 01 02 0F FF B5 22 B9 A6 65 D7 54 FE 65 E6 65 D7 6A 45 03 03 56 4E"
    assert frames.bluezone_android(rid, flags_value=0x02) == bytes.fromhex(want)
    ad = frames.bluezone_android(rid)
    assert len(ad) == 23
    assert ad[:3] == b"\x02\x01\x06"


def test_bluezone_receiver_rules_hold() -> None:
    """Bluezone's own receivers (protocols.md 1.3): the 16-bit UUID list holds 0x4E56;
    the manufacturer record is company 8885 with exactly 12 bytes after it."""
    rid = bytes(range(12))
    for ad in (frames.bluezone_android(rid), frames.bluezone_bluez(rid)):
        records = dict(frames.split_ad(ad))
        assert records[0x03] == b"\x56\x4e"
        mfr = records[0xFF]
        assert int.from_bytes(mfr[:2], "little") == 8885
        assert mfr[2:] == rid
        assert len(ad) <= 31


def test_tag_frames_match_beacontools_vectors(shared_data: Path) -> None:
    vec = {
        v["name"]: v
        for v in json.loads(
            (shared_data / "vectors" / "beacontools_vectors.json").read_text()
        )["ad_vectors"]
    }
    e = vec["eddystone_uid"]["expected"]
    ad = frames.eddystone_uid(
        bytes.fromhex(e["namespace"]), bytes.fromhex(e["instance"]), e["tx_power"]
    )
    assert ad.hex() == vec["eddystone_uid"]["ad_hex"]
    i = vec["ibeacon"]["expected"]
    ad = frames.ibeacon(uuid.UUID(i["uuid"]), i["major"], i["minor"], i["tx_power"])
    assert ad.hex() == vec["ibeacon"]["ad_hex"]
    n = vec["exposure_notification"]["expected"]
    ad = frames.gaen(bytes.fromhex(n["rpi"]), bytes.fromhex(n["aem"]))
    # The transcribed vector carries one stray byte after the 31-byte frame.
    assert vec["exposure_notification"]["ad_hex"].startswith(ad.hex())
    assert len(ad) == 31


@settings(max_examples=150, deadline=None)
@given(
    base=st.binary(min_size=32, max_size=32),
    created=st.dates(dt.date(2020, 1, 1), dt.date(2030, 1, 1)),
    offset_s=st.floats(0, 40 * 86_400, allow_nan=False),
    slots=st.sampled_from([96, 144, 48, 1440]),
)
def test_bluezone_adverts_round_trip(
    base: bytes, created: dt.date, offset_s: float, slots: int
) -> None:
    cfg = BeaconConfig("mine-a", "b1", ZONE, key_file="/k", slots_per_day=slots)
    t = bluezone.midnight_of(created) + offset_s
    advert = plan.advert_at(cfg, t, base, created)
    # The key the beacon meant: the independent key schedule of beacon.bluezone.
    daily = bluezone.daily_key_from_base(base, (bluezone.date_of(t) - created).days)
    want = (
        "bluezone:"
        + bluezone.ids_for_day(daily, slots)[bluezone.slot_of(t, slots)].hex()
    )
    assert advert.key == want
    for ad in (advert.ad, frames.bluezone_bluez(advert.manufacturer_data[0x22B5])):
        decoded = decode_ad(ad)
        assert decoded is not None
        assert decoded.key == want
    assert advert.slot_start is not None
    assert advert.slot_end is not None
    assert advert.slot_start <= t < advert.slot_end


@settings(max_examples=100, deadline=None)
@given(
    u=st.uuids(),
    major=st.integers(0, 65535),
    minor=st.integers(0, 65535),
    power=st.integers(-100, 0),
    ns=st.binary(min_size=10, max_size=10),
    inst=st.binary(min_size=6, max_size=6),
    tx=st.integers(-100, 20),
)
def test_tag_adverts_round_trip(
    u: uuid.UUID, major: int, minor: int, power: int, ns: bytes, inst: bytes, tx: int
) -> None:
    if u == uuid.UUID("c7afef7b-1788-4f4a-a87d-691d53bf21c4"):
        return
    cfg = BeaconConfig(
        "mine-a",
        "b1",
        ZONE,
        scheme="ibeacon",
        ibeacon=IBeaconConfig(str(u), major, minor, power),
    )
    advert = plan.advert_at(cfg, 0.0)
    decoded = decode_ad(advert.ad)
    assert decoded is not None
    assert decoded.key == advert.key
    assert advert.key == f"ibeacon:{u}:{major}:{minor}"
    assert decoded.fields["tx_power"] == power
    cfg = BeaconConfig(
        "mine-a",
        "b1",
        ZONE,
        scheme="eddystone-uid",
        eddystone=EddystoneConfig(ns.hex(), inst.hex(), tx),
    )
    advert = plan.advert_at(cfg, 0.0)
    decoded = decode_ad(advert.ad)
    assert decoded is not None
    assert decoded.key == f"eddystone-uid:{ns.hex()}:{inst.hex()}"
    assert decoded.key == advert.key


@settings(max_examples=60, deadline=None)
@given(tek=st.binary(min_size=16, max_size=16), interval=st.integers(0, 2**32 - 1))
def test_gaen_frames_round_trip(tek: bytes, interval: int) -> None:
    rpi = gaen.rpi(gaen.rpik(tek), interval)
    aem = gaen.aem(gaen.aemk(tek), rpi, gaen.metadata_bytes(-8))
    decoded = decode_ad(frames.gaen(rpi, aem))
    assert decoded is not None
    assert decoded.key == "gaen:" + rpi.hex()
    assert decoded.fields["aem"] == aem.hex()


def test_builders_refuse_bad_sizes() -> None:
    with pytest.raises(ValueError):
        frames.bluezone_android(bytes(11))
    with pytest.raises(ValueError):
        frames.eddystone_uid(bytes(9), bytes(6), 0)
    with pytest.raises(ValueError):
        frames.ibeacon(uuid.uuid4(), 70000, 0, -59)
    with pytest.raises(ValueError):
        frames.gaen(bytes(16), bytes(3))


def test_frame_cli_decodes_with_gateway_cli(tmp_path: Path, shared_data: Path) -> None:
    """The real `bluegate-beacon frame` output fed to the real `bluegate-gateway decode`
    gives the ID of the vectors' slot (key file holds the vectors' daily key)."""
    text = (shared_data / "vectors" / "bluezone_test_vectors.txt").read_text()
    daily = bytes.fromhex(text.split("DAILY_KEY(2020-08-08, t=1596844800) ")[1][:64])
    key_file = write_key(tmp_path / "key.json", daily, "2020-08-08")
    cfg = beacon_yaml(tmp_path, key_file)
    payloads = []
    for at, layout in (
        ("2020-08-08T05:56:00Z", "android"),
        ("2020-08-08T06:00:00Z", "bluez"),
        ("2020-08-09T00:00:00+00:00", "android"),
    ):
        res = cli(
            "beacon", "frame", "--config", str(cfg), "--at", at, "--layout", layout
        )
        assert res.returncode == 0, res.stderr
        payloads.append(res.stdout.strip())
    res = cli("gateway", "decode", *payloads)
    assert res.returncode == 0, res.stderr
    keys = [json.loads(line)["key"] for line in res.stdout.splitlines()]
    next_day = bluezone.ids_for_day(bluezone.next_daily_key(daily))[0].hex()
    assert keys == [
        "bluezone:b9a665d754fe65e665d76a45",
        "bluezone:3aa8dfc0a15682b27216fc31",
        "bluezone:" + next_day,
    ]


def test_frame_cli_errors(tmp_path: Path) -> None:
    key_file = write_key(tmp_path / "key.json", bytes(32), "2026-01-02")
    cfg = beacon_yaml(tmp_path, key_file)
    res = cli("beacon", "frame", "--config", str(cfg), "--at", "yesterday")
    assert res.returncode == 2
    assert "not an ISO time" in res.stderr
    res = cli("beacon", "frame", "--config", str(cfg), "--at", "2026-01-01T10:00:00Z")
    assert res.returncode == 2
    assert "before the key's date" in res.stderr
    (tmp_path / "key.json").write_text('{"base_key": "abc", "created": "2026-01-02"}')
    res = cli("beacon", "frame", "--config", str(cfg), "--at", "2026-01-03T10:00:00Z")
    assert res.returncode == 78
    assert "base_key" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
