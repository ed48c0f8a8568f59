"""The live `bluepy:hciN` source, run through bluepy's own Scanner against a fake
bluepy-helper process (tests/fakes/fake_bluepy_helper.py): the adapter is the only
thing faked; bluepy's btle.py, its line protocol and our shell run for real."""

from __future__ import annotations

import os
import time

import pytest

from gateway.errors import EXIT_CONFIG, UsageError
from gateway.models import AddrType
from gateway.sources import bluepy_backend as bb
from tests.fakes.adapter import (
    BLUEZONE_ANDROID,
    BLUEZONE_IOS_FG,
    BLUEZONE_IOS_NAME,
    GAEN,
    FakeAdapter,
)


@pytest.fixture
def fake(tmp_path, monkeypatch):
    return FakeAdapter(tmp_path, monkeypatch)


@pytest.fixture
def opened():
    sources = []

    def _open(adapter="hci0", **kw):
        src = bb.open_bluepy_source(adapter, **kw)
        sources.append(src)
        return src

    yield _open
    for src in sources:
        src.close()


def collect(src, n, deadline_s=5.0, tick_s=0.05):
    got = []
    end = time.monotonic() + deadline_s
    while len(got) < n and time.monotonic() < end:
        got.extend(src.poll(tick_s))
    return got


ADV = [
    {
        "addr": "5E:12:34:56:78:9A",
        "type": 2,
        "rssi": -67,
        "flags": 0,
        "data": BLUEZONE_ANDROID,
    },
    {"addr": "4F:00:11:22:33:44", "type": 2, "rssi": -80, "flags": 0x04, "data": GAEN},
    {
        "addr": "70:AA:BB:CC:DD:EE",
        "type": 2,
        "rssi": -55,
        "flags": 0,
        "data": BLUEZONE_IOS_FG + BLUEZONE_IOS_NAME,
    },
    # a SCAN_RSP the kernel could not merge (MGMT_DEV_FOUND_SCAN_RSP, Linux 6.4+)
    {
        "addr": "70:AA:BB:CC:DD:EF",
        "type": 2,
        "rssi": -58,
        "flags": 0x20,
        "data": BLUEZONE_IOS_NAME,
    },
    {
        "addr": "00:1A:7D:DA:71:13",
        "type": 1,
        "rssi": 5,
        "flags": 0,
        "data": "0201060303AAFE",
    },
    # HCI "RSSI not available" (127): dropped and counted
    {"addr": "00:1A:7D:DA:71:14", "type": 1, "rssi": 127, "flags": 0, "data": "020106"},
]


def test_active_scan_delivers_raw_bytes_rssi_and_address_types(fake, opened):
    fake.set(adv=ADV)
    src = opened("hci0", gateway="bus-07")
    reports = collect(src, 5)
    by_addr = {r.addr: r for r in reports}
    assert len(reports) == 5
    bz = by_addr["5E:12:34:56:78:9A"]
    assert bz.data == bytes.fromhex(BLUEZONE_ANDROID)
    assert (bz.rssi, bz.addr_type, bz.scan_rsp, bz.connectable) == (
        -67,
        AddrType.RANDOM,
        False,
        True,
    )
    assert bz.gateway == "bus-07"
    gaen = by_addr["4F:00:11:22:33:44"]
    assert gaen.data == bytes.fromhex(GAEN)
    assert (gaen.rssi, gaen.connectable, gaen.scan_rsp) == (-80, False, False)
    merged = by_addr["70:AA:BB:CC:DD:EE"]
    assert merged.data == bytes.fromhex(BLUEZONE_IOS_FG + BLUEZONE_IOS_NAME)
    lone = by_addr["70:AA:BB:CC:DD:EF"]
    assert (lone.scan_rsp, lone.connectable) == (True, None)
    tag = by_addr["00:1A:7D:DA:71:13"]
    assert (tag.rssi, tag.addr_type) == (5, AddrType.PUBLIC)
    assert src.dropped_rssi == 1
    assert src.alive
    assert src.last_report_mono is not None
    assert abs(bz.t - time.time()) < 10
    events = [e[3] for e in fake.events()]
    assert "cmd le on" in events
    assert "cmd scan" in events


def test_passive_scan_uses_pasv_and_decodes_its_rssi(fake, opened):
    fake.set(adv=ADV[:2] + ADV[4:5])
    src = opened("hci0", active=False)
    reports = collect(src, 3)
    assert [(r.addr, r.rssi, r.connectable) for r in reports] == [
        ("5E:12:34:56:78:9A", -67, None),
        ("4F:00:11:22:33:44", -80, None),
        ("00:1A:7D:DA:71:13", 5, None),
    ]
    assert "cmd pasv" in [e[3] for e in fake.events()]
    src.close()
    assert "cmd pasvend" in [e[3] for e in fake.events()]


def test_last_buffered_reports_are_not_held_back(fake, opened):
    # bluepy polls the fd but reads through a buffered wrapper: without our pipe the
    # tail of a burst stays invisible until the helper prints something else.
    fake.set(adv=ADV[:3])
    src = opened()
    time.sleep(0.3)  # the helper has written all three lines and gone quiet
    assert len(src.poll(0.2)) == 3


def test_clear_every_tick_bounds_the_device_table(fake, opened):
    n = 3000
    fake.set(rotate={"count": n, "rssi": -70, "data": GAEN})
    src = opened()
    seen = set()
    biggest_tick = 0
    end = time.monotonic() + 20
    while len(seen) < n and time.monotonic() < end:
        batch = src.poll(0.02)
        biggest_tick = max(biggest_tick, len(batch))
        seen.update(r.addr for r in batch)
        # bluepy's own table is empty between ticks ...
        assert len(src._scanner.scanned) == 0
    assert len(seen) == n
    # ... and never held more than one tick's addresses.
    assert src.peak_table == biggest_tick
    assert biggest_tick < n


def test_discovery_end_is_resumed_by_bluepy_without_a_restart(fake, opened):
    fake.set(adv=ADV[:2], repeat=5, disc_after=3)
    src = opened()
    assert len(collect(src, 10)) == 10
    assert [e[3] for e in fake.events()].count("cmd scan") >= 3
    assert src.helper_restarts == 0
    assert fake.launches() == 1


def test_helper_death_is_detected_and_scanning_resumes(fake, opened):
    second = [{"addr": "5E:00:00:00:00:01", "type": 2, "rssi": -60, "data": GAEN}]
    fake.set(adv=ADV[:3], launches=[{"die_after": 2}, {"adv": second}])
    src = opened()
    reports = collect(src, 3)
    assert [r.addr for r in reports] == [
        "5E:12:34:56:78:9A",
        "4F:00:11:22:33:44",
        "5E:00:00:00:00:01",
    ]
    assert (src.helper_deaths, src.helper_restarts) == (1, 1)
    assert src.alive
    assert fake.launches() == 2
    assert src.last_error is None  # cleared by the successful restart


def test_flapping_helper_backs_off(fake, opened):
    clock = [1000.0]
    fake.set(adv=ADV[:1], repeat=100, die_after=1)
    src = bb.BluepySource("hci0", monotonic=lambda: clock[0])
    try:
        src.start()
        delays = []
        for death in range(1, 4):
            collect(src, 1, deadline_s=2)  # the helper dies after one report
            end = time.monotonic() + 5
            while src.helper_deaths < death and time.monotonic() < end:
                src.poll(0.01)
            assert src.helper_deaths == death
            assert not src.alive
            delays.append(src._next_start_mono - clock[0])
            launches = fake.launches()
            for _ in range(3):  # inside the back-off: nothing is spawned
                assert src.poll(0.01) == []
            assert fake.launches() == launches
            clock[0] += delays[-1]
            src.poll(0.01)  # back-off over: respawned
            assert fake.launches() == launches + 1
        assert delays == [1.0, 2.0, 4.0]
        assert src.helper_restarts == 3
    finally:
        src.close()


def test_refused_rescan_while_busy_restarts_at_once(fake, opened):
    # 2nd `scan` (after the kernel ended the discovery) answered Busy, as during a
    # GATT connection: bluepy stops the helper; we restart without back-off.
    fake.set(adv=ADV[:2], repeat=3, disc_after=2, scan_seq=["success", "busy"])
    src = opened()
    reports = collect(src, 4)
    assert len(reports) >= 4
    assert src.helper_restarts >= 1
    assert src._failures == 0


def test_permission_denied_is_one_clear_line(fake, opened):
    fake.set(le_on="mgmterr:20:Permission Denied")
    with pytest.raises(bb.RadioPermissionError) as err:
        opened()
    msg = str(err.value)
    assert "\n" not in msg
    assert "'le on' failed (code 20: Permission Denied)" in msg
    assert "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN" in msg
    assert "setcap cap_net_raw,cap_net_admin+eip" in msg
    assert err.value.exit_code == EXIT_CONFIG
    assert "quit" in [e[3] for e in fake.events()]  # the helper was stopped


def test_no_management_socket_is_a_permission_error(fake, opened):
    fake.set(le_on="nomgmt")
    with pytest.raises(bb.RadioPermissionError, match="AmbientCapabilities"):
        opened()


@pytest.mark.parametrize(
    ("scenario", "needle"),
    [
        ({"le_on": "mgmterr:17:Invalid Index"}, "there is no adapter hci1"),
        ({"scan": "mgmterr:15:Not Powered"}, "`sudo hciconfig hci1 up`"),
        ({"scan": "mgmterr:18:Blocked through rfkill"}, "rfkill unblock bluetooth"),
        ({"scan": "mgmterr:12:Not Supported"}, "does not support Bluetooth Low Energy"),
    ],
)
def test_adapter_problems_name_the_fix(fake, opened, scenario, needle):
    fake.set(**scenario)
    with pytest.raises(bb.AdapterUnavailableError) as err:
        opened("hci1")
    assert needle in str(err.value)
    assert "\n" not in str(err.value)
    assert "start 1" in [e[3] for e in fake.events()]  # helper got the adapter index


def test_passive_scan_refused_names_down_or_capability(fake, opened):
    fake.set(scan="badstate")
    with pytest.raises(bb.AdapterUnavailableError, match="CAP_NET_RAW"):
        opened(active=False)


def test_busy_at_start_is_retried_once(fake, opened):
    fake.set(adv=ADV[:1], scan="busy_once")
    src = opened()
    assert len(collect(src, 1)) == 1
    assert "cmd scanend" in [e[3] for e in fake.events()]


def test_silent_helper_times_out(fake, opened, monkeypatch):
    monkeypatch.setattr(bb, "START_TIMEOUT_S", 0.3)
    fake.set(le_on="silent")
    with pytest.raises(bb.ScannerError, match="did not answer 'le on'"):
        opened()


def test_helper_dying_at_start(fake, opened):
    fake.set(start="exit")
    with pytest.raises(bb.ScannerError, match="failed at start"):
        opened()


def test_missing_helper_executable(fake, opened, monkeypatch):
    from bluepy import btle

    monkeypatch.setattr(btle, "helperExe", str(fake.dir / "nope"))
    with pytest.raises(bb.ScannerError, match="cannot run bluepy-helper"):
        opened()


def test_bad_adapter_name():
    with pytest.raises(UsageError):
        bb.parse_adapter("usb0")
    assert bb.parse_adapter("hci12") == 12


def test_restart_and_reset_adapter(fake, opened, monkeypatch):
    fake.set(adv=ADV[:1], repeat=1000, interval_s=0.01)
    bindir = fake.dir / "bin"
    bindir.mkdir()
    calls = fake.dir / "btmgmt.calls"
    tool = bindir / "btmgmt"
    tool.write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\n')
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    src = opened()
    collect(src, 1)
    src.restart()
    assert src.alive
    assert src.helper_restarts == 1
    assert src.reset_adapter() is True
    assert calls.read_text().splitlines() == [
        "--index 0 power off",
        "--index 0 power on",
    ]
    assert src.alive
    assert src.helper_restarts == 2
    assert fake.launches() == 3
    assert len(collect(src, 1)) >= 1


def test_iteration_and_close(fake):
    fake.set(adv=ADV[:2])
    with bb.open_bluepy_source("hci0") as src:
        it = iter(src)
        assert next(it).addr == "5E:12:34:56:78:9A"
        assert not src.ended
    assert src.ended
    assert not src.alive
    assert src.poll(0.01) == []
    assert "cmd scanend" in [e[3] for e in fake.events()]


@pytest.mark.parametrize(
    ("raw", "rssi"),
    [
        (67, -67),  # active: -rssi
        ((-5) & 0xFFFFFFFF, 5),  # active, positive RSSI wraps
        ((-127) & 0xFFFFFFFF, None),  # active, HCI 127 = not available
        (256 - 0xBD, -67),  # passive: 256 - u8
        (256 - 5, 5),  # passive, positive
        (256 - 127, None),  # passive, not available
        (127, -127),
        (128, None),
    ],
)
def test_rssi_from_helper(raw, rssi):
    assert bb.rssi_from_helper(raw) == rssi


def test_mgmt_flags_from_helper():
    assert bb.mgmt_flags_from_helper(0) == 0
    assert bb.mgmt_flags_from_helper((-0x24) & 0xFFFFFFFF) == 0x24
