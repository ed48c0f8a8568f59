"""Sources: btsnoop (real Android captures and synthetic HCI logs), jsonl, merge, factory."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.decoders import sighting_from_report
from gateway.errors import InputError, UsageError
from gateway.merge import ScanMerger
from gateway.models import AddrType, Report
from gateway.sources import Source, open_source
from gateway.sources.btsnoop import EPOCH_DELTA_US, BtsnoopSource
from gateway.sources.jsonl import JsonlSource, TraceWriter

CAPTURES = "captures"
EXP25 = "exp25-calibration-iphone-to-android-anechoic"
EXP28 = "exp28-calibration-pixel4-to-android-anechoic"
GAEN_AD = bytes.fromhex("02011A03036FFD17166FFD" + "ab" * 16 + "01020304")
T0 = 1596866400.25

# -- an independent, minimal btsnoop walker and writer (ground truth for the tests) --


def walk(raw: bytes):
    """(offset, flags, unix_t, packet) of every whole record."""
    off = 16
    while off + 24 <= len(raw):
        _orig, incl, flags, _drops, ts = struct.unpack_from(">IIIIq", raw, off)
        if off + 24 + incl > len(raw):
            return
        yield off, flags, (ts - EPOCH_DELTA_US) / 1e6, raw[off + 24 : off + 24 + incl]
        off += 24 + incl


def sent_ephids(path: Path) -> list[tuple[float, str]]:
    """(time, rpi+aem hex) of the phone's own LE Set Extended Advertising Data commands."""
    out = []
    for _off, _flags, t, pkt in walk(path.read_bytes()):
        if pkt[0] == 0x01 and pkt[1] | (pkt[2] << 8) == 0x2037 and b"\x6f\xfd" in pkt:
            out.append((t, pkt[-20:].hex()))
    return out


def ephids(path: Path) -> set[str]:
    return {
        line.strip().replace(":", "")
        for line in path.read_text().splitlines()
        if line.strip()
    }


def btsnoop(records: list[tuple[int, bytes, float]], datalink: int = 1002) -> bytes:
    out = bytearray(b"btsnoop\x00" + struct.pack(">II", 1, datalink))
    for flags, pkt, t in records:
        ts = int(round(t * 1e6)) + EPOCH_DELTA_US
        out += struct.pack(">IIIIq", len(pkt), len(pkt), flags, 0, ts) + pkt
    return bytes(out)


def le_meta(sub: int, params: bytes) -> bytes:
    body = bytes([sub]) + params
    return bytes([0x3E, len(body)]) + body


def legacy_report(
    evt: int, addr: str, data: bytes, rssi: int, addr_type: int = 1
) -> bytes:
    raw = bytes.fromhex(addr.replace(":", ""))[::-1]
    return (
        bytes([evt, addr_type]) + raw + bytes([len(data)]) + data + bytes([rssi & 0xFF])
    )


def ext_report(evt: int, addr: str, data: bytes, rssi: int, sid: int = 1) -> bytes:
    raw = bytes.fromhex(addr.replace(":", ""))[::-1]
    return (
        struct.pack("<HB", evt, 1)
        + raw
        + bytes([1, 0, sid, 0x7F, rssi & 0xFF])
        + b"\x00\x00"
        + b"\x00" * 7
        + bytes([len(data)])
        + data
    )


def read_all(path) -> tuple[list[Report], BtsnoopSource]:
    src = BtsnoopSource(str(path))
    return list(src), src


# -- real captures ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("receiver", "sender", "expected"),
    [
        # exp28: two Pixel 4 phones logging each other; ephids = RPI || AEM sent.
        (
            "23",
            "24",
            {
                "a499eb029fab050c14d5457c695f529a15329401",
                "0e92e24497686dcd4b16cad1a83eb7a4196ce9ac",
            },
        ),
        (
            "24",
            "23",
            {
                "5f871adf18477501a1d9b02927fa40261a68b4ea",
                "ae6ee16dd38b6bd8aea4f7ac185d833447a645c5",
            },
        ),
    ],
)
def test_exp28_each_phone_hears_exactly_the_other_phones_ephids(
    shared_data, receiver, sender, expected
):
    folder = shared_data / CAPTURES / EXP28
    reports, src = read_all(folder / f"{receiver}.btsnoop")
    assert src.error is None
    heard: dict[str, list[Report]] = {}
    for r in reports:
        s = sighting_from_report(r)
        if s is not None and s.format == "gaen":
            heard.setdefault(s.key[5:] + s.decoded.fields["aem"], []).append(r)
    listed = ephids(folder / f"{sender}.ephids") | ephids(folder / f"{receiver}.ephids")
    assert set(heard) & listed == expected
    # Time: every sighting of an ephid falls while the sender had it on air, per the
    # sender's own log (its LE Set Extended Advertising Data commands).
    on_air = sent_ephids(folder / f"{sender}.btsnoop")
    for ephid in expected:
        starts = [t for t, e in on_air if e == ephid]
        assert len(starts) == 1
        later = [t for t, _ in on_air if t > starts[0]]
        end = min(later) if later else float("inf")
        for r in heard[ephid]:
            assert starts[0] - 5 <= r.t <= end + 5, (ephid, r.t)
            # anechoic chamber, phones back to back: a real RSSI, never 127
            assert -100 <= r.rssi <= -30
            assert r.addr_type is AddrType.RANDOM


@pytest.mark.parametrize(("log", "legacy"), [("02", False), ("10", True)])
def test_exp25_own_ephids_are_commands_not_reports(shared_data, log, legacy):
    """A phone's own advertising (outgoing HCI commands) must never become a report."""
    folder = shared_data / CAPTURES / EXP25
    reports, src = read_all(folder / f"{log}.btsnoop")
    assert src.error is None
    rpis = {}
    for r in reports:
        s = sighting_from_report(r)
        if s is not None and s.format == "gaen":
            rpis.setdefault(s.key, []).append(r)
    own = ephids(folder / "02.ephids") | ephids(folder / "10.ephids")
    assert not {k[5:] + rs[0].data[-4:].hex() for k, rs in rpis.items()} & own
    raw = (folder / f"{log}.btsnoop").read_bytes()
    assert all(bytes.fromhex(e)[:16] in raw for e in ephids(folder / f"{log}.ephids"))
    # One iPhone 11 for an hour: four RPIs (15-minute rotation), heard all along.
    assert len(rpis) == 4
    # exp25/10 logs legacy reports (subevent 0x02), exp25/02 extended ones (0x0D).
    subevents = {pkt[3] for _o, _f, _t, pkt in walk(raw) if pkt[:2] == b"\x04\x3e"}
    assert subevents == ({0x02} if legacy else {0x0D})
    first, last = reports[0].t, reports[-1].t
    assert 1591700000 < first < last < 1591900000  # 2020-06-10, the experiment's day


def test_big_epfl_capture(shared_data):
    path = shared_data / CAPTURES / "exp34-epfl-soldiers" / "01.btsnoop"
    reports, src = read_all(path)
    assert src.error is None
    # Ground truth from the independent walker: one report per advertising-report event.
    events = sum(
        1
        for _o, _f, _t, pkt in walk(path.read_bytes())
        if pkt[:2] == b"\x04\x3e" and pkt[3] in (2, 13)
    )
    assert src.counters()["le_meta_events"] == events
    assert len(reports) == src.reports == 15041
    assert src.malformed_events == 0
    gaen = {
        s.key for r in reports if (s := sighting_from_report(r)) and s.format == "gaen"
    }
    assert 400 < len(gaen) < 600  # "hundreds of rotating identities"
    assert all(reports[i].t <= reports[i + 1].t + 1 for i in range(len(reports) - 1))


# -- synthetic logs: datalinks, multi-report events, extended reassembly -------------


def test_datalinks_and_direction(tmp_path):
    event = le_meta(0x02, b"\x01" + legacy_report(3, "11:22:33:44:55:66", GAEN_AD, -60))
    cmd = bytes.fromhex("0C2008") + b"\x20" + GAEN_AD  # our own LE Set Advertising Data
    cases = {
        1002: [(0x03, b"\x04" + event, T0), (0x02, b"\x01" + cmd, T0)],
        1001: [
            (0x03, event, T0),
            (0x02, cmd, T0),
            (0x01, event, T0),
        ],  # 0x01: received ACL
        2001: [(0x0003, event, T0), (0x0002, cmd, T0)],
    }
    for datalink, records in cases.items():
        path = tmp_path / f"{datalink}.btsnoop"
        path.write_bytes(btsnoop(records, datalink))
        reports, src = read_all(path)
        assert [(r.addr, r.rssi, r.t) for r in reports] == [
            ("11:22:33:44:55:66", -60, T0)
        ], datalink
        assert reports[0].connectable is False
        assert not reports[0].scan_rsp


def test_legacy_event_with_several_reports_and_rssi_unavailable(tmp_path):
    params = (
        b"\x03"
        + legacy_report(0, "AA:00:00:00:00:01", GAEN_AD, -50, addr_type=0)
        + legacy_report(4, "AA:00:00:00:00:02", b"\x02\x0a\x00", 127)  # RSSI n/a
        + legacy_report(4, "AA:00:00:00:00:03", b"", -70)
    )
    path = tmp_path / "multi.btsnoop"
    path.write_bytes(btsnoop([(3, b"\x04" + le_meta(0x02, params), T0)]))
    reports, src = read_all(path)
    assert [(r.addr, r.addr_type, r.scan_rsp, r.connectable) for r in reports] == [
        ("AA:00:00:00:00:01", AddrType.PUBLIC, False, True),
        ("AA:00:00:00:00:03", AddrType.RANDOM, True, None),
    ]
    assert src.dropped_rssi == 1


def test_extended_fragments_are_reassembled(tmp_path):
    long_ad = (
        GAEN_AD + bytes.fromhex("0909") + b"Pixel 4 " + bytes.fromhex("05FF4C001005")
    )
    a, b = long_ad[:20], long_ad[20:]
    addr = "5E:12:34:56:78:9A"
    other = ext_report(0x0010 | 0x13 & 0x0F, "70:00:00:00:00:01", GAEN_AD, -40)
    records = [
        (
            3,
            b"\x04" + le_meta(0x0D, b"\x01" + ext_report(0x01 | 0x20, addr, a, -66)),
            T0,
        ),
        (3, b"\x04" + le_meta(0x0D, b"\x01" + other), T0 + 0.001),
        (
            3,
            b"\x04" + le_meta(0x0D, b"\x01" + ext_report(0x01, addr, b, -67)),
            T0 + 0.002,
        ),
        # legacy PDU scan response to an ADV_SCAN_IND: 0x1A
        (
            3,
            b"\x04"
            + le_meta(0x0D, b"\x01" + ext_report(0x1A, addr, b"\x02\x0a\x08", -68)),
            T0 + 0.003,
        ),
        # truncated by the controller (status 10): what arrived is kept
        (
            3,
            b"\x04"
            + le_meta(0x0D, b"\x01" + ext_report(0x40, addr, a[:5], -69, sid=2)),
            T0 + 0.004,
        ),
    ]
    path = tmp_path / "ext.btsnoop"
    path.write_bytes(btsnoop(records))
    reports, src = read_all(path)
    assert [r.data for r in reports] == [GAEN_AD, long_ad, b"\x02\x0a\x08", a[:5]]
    assert reports[1].rssi == -67
    assert reports[1].t == pytest.approx(T0 + 0.002)
    assert reports[1].connectable is True
    assert not reports[1].scan_rsp
    assert reports[2].scan_rsp
    assert reports[2].connectable is False
    assert src.truncated_ext == 1
    s = sighting_from_report(reports[1])
    assert s is not None
    assert s.key == "gaen:" + "ab" * 16


def test_bad_files_are_input_errors(tmp_path):
    (tmp_path / "x").write_bytes(b"not a btsnoop file at all")
    with pytest.raises(InputError, match="not a btsnoop file"):
        BtsnoopSource(str(tmp_path / "x"))
    (tmp_path / "y").write_bytes(b"btsnoop\x00" + struct.pack(">II", 1, 1003))
    with pytest.raises(InputError, match="datalink 1003"):
        BtsnoopSource(str(tmp_path / "y"))
    with pytest.raises(InputError, match="cannot open"):
        BtsnoopSource(str(tmp_path / "missing"))


# -- damage: every report before it, and the offset named -----------------------------


@pytest.fixture(scope="module")
def exp28_24(shared_data) -> bytes:
    return (shared_data / CAPTURES / EXP28 / "24.btsnoop").read_bytes()


def reports_of(raw: bytes, tmp: Path, name: str):
    path = tmp / name
    path.write_bytes(raw)
    src = BtsnoopSource(str(path))
    return [(r.t, r.addr, r.rssi, r.data) for r in src], src


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(cut=st.integers(min_value=16, max_value=57690))
def test_truncated_real_capture(exp28_24, tmp_path, cut):
    full, _ = reports_of(exp28_24, tmp_path, "full")
    got, src = reports_of(exp28_24[:cut], tmp_path, "cut")
    boundaries = [off for off, *_ in walk(exp28_24)] + [len(exp28_24)]
    whole = max(b for b in boundaries if b <= cut)
    before, _ = reports_of(exp28_24[:whole], tmp_path, "before")
    assert got == before == full[: len(before)]
    if cut == whole:
        assert src.error is None
    else:
        assert src.error_offset == whole
        assert f"byte offset {whole}" in src.error
        assert "cut" in src.error


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(at=st.integers(min_value=16, max_value=57690), xor=st.integers(1, 255))
def test_corrupted_real_capture(exp28_24, tmp_path, at, xor):
    damaged = bytearray(exp28_24)
    damaged[at] ^= xor
    full, _ = reports_of(exp28_24, tmp_path, "full")
    got, src = reports_of(bytes(damaged), tmp_path, "bad")
    start = max(off for off, *_ in walk(exp28_24) if off <= at)
    before, _ = reports_of(exp28_24[:start], tmp_path, "before")
    assert got[: len(before)] == before  # everything before the damaged record
    if src.error is not None:
        assert src.error_offset is not None
        assert src.error_offset >= start


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=st.binary(max_size=400))
def test_any_bytes_after_the_header_never_raise(tmp_path, body):
    path = tmp_path / "fuzz.btsnoop"
    path.write_bytes(b"btsnoop\x00" + struct.pack(">II", 1, 1002) + body)
    src = BtsnoopSource(str(path))
    list(src)
    assert src.ended


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(params=st.binary(max_size=120), sub=st.sampled_from([0x02, 0x0D]))
def test_any_event_parameters_never_raise(tmp_path, params, sub):
    body = bytes([sub]) + params
    event = bytes([0x3E, min(len(body), 255)]) + body[:255]
    path = tmp_path / "ev.btsnoop"
    path.write_bytes(btsnoop([(3, b"\x04" + event, T0)] * 2))
    src = BtsnoopSource(str(path))
    for r in src:
        sighting_from_report(r)
    assert src.error is None


# -- jsonl --------------------------------------------------------------------------


def test_jsonl_round_trip_and_gateway_filter(tmp_path):
    reports = [
        Report(
            t=T0,
            addr="5E:12:34:56:78:9A",
            addr_type=AddrType.RANDOM,
            rssi=-67,
            data=GAEN_AD,
            gateway="bus-07",
        ),
        Report(
            t=T0 + 1,
            addr="00:0B:57:5B:56:43",
            addr_type=AddrType.PUBLIC,
            rssi=-86,
            data=b"",
            scan_rsp=True,
            connectable=True,
        ),
        Report(
            t=T0 + 2,
            addr="5E:12:34:56:78:9B",
            addr_type=AddrType.RANDOM,
            rssi=-70,
            data=GAEN_AD,
            gateway="room-a",
        ),
    ]
    path = tmp_path / "t.jsonl"
    with TraceWriter(str(path)) as w:
        for r in reports:
            w.write(r)
    assert json.loads(path.read_text().splitlines()[0]) == {
        "t": T0,
        "addr": "5E:12:34:56:78:9A",
        "addr_type": "random",
        "rssi": -67,
        "data": GAEN_AD.hex(),
        "scan_rsp": False,
        "gateway": "bus-07",
    }
    assert list(JsonlSource(str(path))) == reports
    # lines of other gateways are skipped; lines without a gateway belong to all
    src = JsonlSource(str(path), gateway="bus-07")
    assert list(src) == reports[:2]
    assert src.skipped_other_gateway == 1
    assert src.ended
    polled = JsonlSource(str(path))
    assert polled.poll(0.1) == reports
    assert polled.ended


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ('{"t": "x", "addr": "5E:12:34:56:78:9A", "rssi": -1, "data": ""}', "'t'"),
        ('{"t": 1, "addr": "5E:12:34:56:78", "rssi": -1, "data": ""}', "'addr'"),
        ('{"t": 1, "addr": "5E:12:34:56:78:9A", "rssi": true, "data": ""}', "'rssi'"),
        ('{"t": 1, "addr": "5E:12:34:56:78:9A", "rssi": -1, "data": "0g"}', "'data'"),
        (
            '{"t": 1, "addr": "5E:12:34:56:78:9A", "rssi": -1, "data": "", "addr_type": "x"}',
            "'addr_type'",
        ),
        (
            '{"t": 1, "addr": "5E:12:34:56:78:9A", "rssi": -1, "data": "", "scan_rsp": 1}',
            "'scan_rsp'",
        ),
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
    ],
)
def test_jsonl_bad_line_names_file_line_and_field(tmp_path, line, field):
    path = tmp_path / "bad.jsonl"
    good = '{"t": 1, "addr": "5E:12:34:56:78:9A", "rssi": -1, "data": "020106"}'
    path.write_text(good + "\n\n" + line + "\n")
    src = JsonlSource(str(path))
    it = iter(src)
    assert next(it).data == b"\x02\x01\x06"
    with pytest.raises(InputError) as err:
        next(it)
    assert f"{path}:3: " in str(err.value)
    assert field in str(err.value)


# -- merge ---------------------------------------------------------------------------


def report(t, data, scan_rsp=False, addr="70:AA:BB:CC:DD:EE"):
    return Report(
        t=t,
        addr=addr,
        addr_type=AddrType.RANDOM,
        rssi=-60,
        data=data,
        scan_rsp=scan_rsp,
    )


def test_merge_ios_adv_with_its_scan_response():
    adv = bytes.fromhex("020106110767A607ADD1172FA1C44BF573564E0000") + bytes(4)
    rsp = bytes.fromhex("0909") + b"Bluezone"
    m = ScanMerger(ttl_s=5)
    assert m.feed(report(T0, adv)).data == adv  # nothing to merge yet
    merged = m.feed(report(T0 + 0.01, rsp, scan_rsp=True))
    assert merged.data == adv[:-4] + rsp
    assert merged.scan_rsp
    again = m.feed(report(T0 + 0.2, adv))
    assert again.data == adv[:-4] + rsp
    s = sighting_from_report(again)
    assert s is not None
    assert s.decoded.fields["name"] == "Bluezone"
    # another address is not merged; a stale half is not used
    assert m.feed(report(T0 + 0.3, rsp, True, addr="70:AA:BB:CC:DD:EF")).data == rsp
    assert m.feed(report(T0 + 10, adv)).data == adv
    assert m.merged == 2


def test_merge_memory_is_bounded_and_entries_expire():
    m = ScanMerger(ttl_s=2, max_entries=100)
    for i in range(5000):
        m.feed(
            report(
                T0 + i * 0.001, GAEN_AD, addr=f"40:00:00:00:{i >> 8:02X}:{i & 255:02X}"
            )
        )
        assert len(m) <= 100
    assert m.evicted > 0
    m.feed(report(T0 + 100, GAEN_AD, addr="41:00:00:00:00:00"))
    assert len(m) == 1  # everything older than ttl forgotten


# -- factory -------------------------------------------------------------------------


def test_open_source(tmp_path, shared_data):
    for bad in ("foo:bar", "btsnoop", "jsonl:", "hci0"):
        with pytest.raises(UsageError, match="unknown source"):
            open_source(bad)
    src = open_source(
        f"btsnoop:{shared_data / CAPTURES / EXP28 / '24.btsnoop'}", gateway="bus-07"
    )
    assert isinstance(src, Source)
    batch = src.poll(0.1)
    assert batch
    assert all(r.gateway == "bus-07" for r in batch)
    src.close()
    assert src.ended
    path = tmp_path / "t.jsonl"
    path.write_text("")
    j = open_source(f"jsonl:{path}")
    assert list(j) == []
    assert j.ended


def test_pipeline_merger_is_one_in_one_out():
    from gateway.merge import pipeline_merger

    m = pipeline_merger()
    adv = report(T0, bytes.fromhex("020106"))
    rsp = report(T0 + 0.01, bytes.fromhex("0909") + b"Bluezone", scan_rsp=True)
    assert m.push(adv) == [adv]
    out = m.push(rsp)
    assert len(out) == 1
    assert out[0].data == adv.data + rsp.data
    assert m.drain() == []
    assert (m.folded, m.held) == (0, 0)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    line=st.one_of(
        st.text(max_size=80),
        st.dictionaries(
            st.sampled_from(
                [
                    "t",
                    "addr",
                    "addr_type",
                    "rssi",
                    "data",
                    "scan_rsp",
                    "gateway",
                    "connectable",
                ]
            ),
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(),
                st.floats(),
                st.text(max_size=20),
            ),
        ).map(json.dumps),
    )
)
def test_any_trace_line_is_a_report_or_one_input_error(tmp_path, line):
    path = tmp_path / "fuzz.jsonl"
    path.write_text(line.replace("\n", " ") + "\n")
    error: InputError | None = None
    reports: list[Report] = []
    try:
        reports = list(JsonlSource(str(path)))
    except InputError as exc:
        error = exc
    if error is not None:
        assert str(error).startswith(f"{path}:1: ")
        assert "\n" not in str(error)
    else:
        assert len(reports) <= 1


def test_poll_batches_equal_iteration(shared_data):
    path = str(shared_data / CAPTURES / "exp34-epfl-soldiers" / "01.btsnoop")
    polled: list[Report] = []
    src = BtsnoopSource(path)
    calls = 0
    while not src.ended:
        batch = src.poll(0.0)
        assert len(batch) <= 512
        polled.extend(batch)
        calls += 1
    assert calls >= len(polled) // 512
    assert polled == list(BtsnoopSource(path))
    assert src.poll(0.0) == []
