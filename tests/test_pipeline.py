"""The whole edge pipeline with the real decoders; accounting never loses a report."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config import GatewayConfig, SiteBeacon, ZoneConfig
from gateway.models import AddrType, Report
from gateway.outbox import MemoryOutbox
from gateway.pipeline import EdgePipeline

T0 = 1_596_866_400.0


def gaen(rpi: bytes) -> bytes:
    return bytes.fromhex("02011a03036ffd17166ffd") + rpi + bytes(4)


def bluezone(ident: bytes) -> bytes:
    return bytes.fromhex("0201020fffb522") + ident + bytes.fromhex("0303564e")


def ibeacon(major: int, minor: int) -> bytes:
    uuid = bytes.fromhex("11223344556677889900aabbccddeeff")
    return (
        bytes.fromhex("0201061aff4c000215")
        + uuid
        + major.to_bytes(2, "big")
        + minor.to_bytes(2, "big")
        + b"\xc5"
    )


def cfg(kind="shift_room", **kw) -> GatewayConfig:
    return GatewayConfig(
        site="s", gateway="g1", zone=ZoneConfig(name="z", kind=kind), **kw
    )


def rep(t, data, addr="11:22:33:44:55:66", rssi=-60, gw=None):
    return Report(
        t=t, addr=addr, addr_type=AddrType.RANDOM, rssi=rssi, data=data, gateway=gw
    )


def test_records_and_accounting():
    site = "ibeacon:11223344-5566-7788-9900-aabbccddeeff:1:1"
    p = EdgePipeline(cfg(site_beacons=[SiteBeacon(key=site)]))
    reports = []
    for i in range(120):
        t = T0 + i * 5
        reports.append(rep(t, gaen(b"\x01" * 16), rssi=-55))
        reports.append(
            rep(t + 1, ibeacon(1, 1), addr="AA:AA:AA:AA:AA:AA")
        )  # site beacon
        reports.append(
            rep(t + 2, b"\x02\x01\x06", addr="BB:BB:BB:BB:BB:BB")
        )  # nothing known
        reports.append(rep(t + 3, bluezone(b"\x05" * 12), gw="other"))
    p.feed(reports)
    mid = p.flush(T0 + 300)
    out = mid + p.close()
    acc = p.accounting()
    assert acc.balanced
    assert acc.pending == 0
    assert acc.reports == 480
    assert acc.rejected["site_beacon"] == 120
    assert acc.rejected["other_gateway"] == 120
    pres = [r for r in out if r["kind"] == "presence"]
    assert len(pres) == 1
    assert pres[0]["key"] == "gaen:" + "01" * 16
    assert pres[0]["n"] == 120
    assert pres[0]["clock"] == "synced"
    assert pres[0]["start"] == T0
    occ = [r for r in out if r["kind"] == "occupancy"]
    assert len(occ) == 10
    assert all(r["count"] == 1 for r in occ)
    assert all(r["radio"]["site_beacons"] == 1 for r in occ)
    assert all(set(r) >= {"kind", "gateway", "zone", "t", "count"} for r in occ)
    assert set(pres[0]) >= {
        "kind",
        "gateway",
        "zone",
        "zone_kind",
        "key",
        "keys",
        "start",
        "end",
        "n",
        "rssi_min",
        "rssi_median",
        "rssi_max",
        "band_s",
        "clock",
    }


def test_entrance_gate_records():
    p = EdgePipeline(cfg("entrance"))
    for i in range(20):
        p.feed(rep(T0 + i, ibeacon(2, 2), rssi=-90 + 3 * i if i < 10 else -50))
    out = p.close()
    gates = [r for r in out if r["kind"] == "gate"]
    assert len(gates) == 1
    assert gates[0]["direction"] == "in"
    assert set(gates[0]) >= {"kind", "gateway", "key", "t", "direction"}


def test_live_clock_jump_rebases_held_records():
    """Unsynced records leave the pipeline at once (held, not kept in RAM); the sync
    yields the offset with which the outbox rebases them."""
    p = EdgePipeline(cfg())
    box = MemoryOutbox(boot_id="boot-a")
    assert p.observe_clock(10.0, 10.0, False) is None  # booted in 1970
    for i in range(30):
        p.feed(rep(10.0 + i * 2, gaen(b"\x07" * 16)))
    assert p.flush(200.0) == []  # nothing ready to publish...
    held = p.take_held()
    assert p.take_held() == []  # ...and nothing kept: it is the shell's now
    pres = [h for h in held if h.record["kind"] == "presence"]
    assert len(pres) == 1
    assert pres[0].record["clock"] == "unsynced"
    assert "rebased" not in pres[0].record
    assert (pres[0].record["start"], pres[0].record["end"]) == (10.0, 68.0)
    box.append_many([], 200.0, held)
    assert box.claim(100) == []  # held rows are never handed out
    offset = p.observe_clock(250.0, T0 + 250.0, True)  # NTP step
    assert offset == T0
    assert box.rebase(offset, T0 + 250.0) == len(held)
    out = [c.record for c in box.claim(100)]
    out += p.flush(T0 + 260.0) + p.close()
    assert p.take_held() == []
    pres = [r for r in out if r["kind"] == "presence"]
    assert len(pres) == 1
    assert pres[0]["clock"] == "unsynced"
    assert pres[0]["rebased"] is True
    assert pres[0]["start"] == T0 + 10.0
    assert pres[0]["end"] == T0 + 68.0
    # Occupancy made after the sync is stamped synced, on the same time line.
    occ = [r for r in out if r["kind"] == "occupancy"]
    assert {r["clock"] for r in occ} == {"synced", "unsynced"}
    assert all(T0 <= r["t"] < T0 + 400 for r in occ)


payloads = st.one_of(
    st.binary(max_size=40),
    st.integers(0, 3).map(lambda i: gaen(bytes([i]) * 16)),
    st.integers(0, 3).map(lambda i: bluezone(bytes([i]) * 12)),
    st.integers(0, 2).map(lambda i: ibeacon(1, i)),
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 400),
            payloads,
            st.integers(-100, -30),
            st.sampled_from([None, "g1", "g2"]),
        ),
        max_size=80,
    ),
    st.sampled_from(["shift_room", "bus", "entrance", "yard", "dormitory"]),
)
def test_every_report_is_accounted(items, kind):
    p = EdgePipeline(cfg(kind))
    items.sort(key=lambda x: x[0])
    seen = 0
    out = []
    for i, (dt, data, rssi, gw) in enumerate(items):
        p.feed(rep(T0 + dt, data, rssi=rssi, gw=gw, addr=f"00:00:00:00:00:{i % 4:02X}"))
        seen += 1
        if i % 7 == 0:
            out += p.flush(T0 + dt)
        assert p.accounting().balanced
    out += p.close()
    acc = p.accounting()
    assert acc.reports == seen
    assert acc.pending == 0
    assert acc.balanced
    assert acc.recorded == sum(r["n"] for r in out if r["kind"] == "presence")
