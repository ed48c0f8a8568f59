"""iPhone Bluezone IDs over GATT: the pure policy (table tests) and the bluepy shell
driven through bluepy's own Peripheral against the fake bluepy-helper."""

from __future__ import annotations

import time

import pytest

from gateway import gatt as g
from gateway.gatt_bluepy import BluepyGattReader
from gateway.models import AddrType, Decoded, Sighting
from gateway.sources import bluepy_backend as bb
from tests.fakes.adapter import BLUEZONE_ID, BLUEZONE_IOS_FG, FakeAdapter

# 2020-08-08T06:00:00Z, the start of Bluezone slot 24 of that day
T0 = 1596866400.0
IPHONE = "70:AA:BB:CC:DD:EE"
ID = bytes.fromhex(BLUEZONE_ID)


def policy(**kw):
    base = {
        "reads_per_minute": 12,
        "backoff_initial_s": 30.0,
        "backoff_max_s": 900.0,
        "candidate_ttl_s": 20.0,
    }
    base.update(kw)
    return g.GattPolicy(**base)


def addr(i):
    return f"70:00:00:00:00:{i:02X}"


# -- slots -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "slot", "end"),
    [
        (T0, 1774296, T0 + 900),
        (T0 + 899.999, 1774296, T0 + 900),
        (T0 + 900, 1774297, T0 + 1800),
        (T0 - 0.001, 1774295, T0),
    ],
)
def test_slots_are_utc_quarter_hours(t, slot, end):
    assert g.slot_index(t) == slot
    assert g.slot_end(t) == end
    assert int(g.slot_end(t)) % 900 == 0


# -- the scheduler -----------------------------------------------------------------


def test_one_read_at_a_time():
    s = g.GattScheduler(policy())
    s.offer(addr(1), AddrType.RANDOM, -60, T0)
    s.offer(addr(2), AddrType.RANDOM, -61, T0)
    first = s.next_read(T0)
    assert first is not None
    assert s.next_read(T0 + 1) is None  # busy
    s.complete(g.ReadResult(first.addr, ID), T0 + 2)
    second = s.next_read(T0 + 2)
    assert second is not None
    assert second.addr != first.addr


def test_budget_holds_in_every_sixty_second_window():
    s = g.GattScheduler(policy(reads_per_minute=3, backoff_initial_s=1000))
    starts = []
    now = T0
    while now < T0 + 300:
        for i in range(20):
            s.offer(addr(i), AddrType.RANDOM, -60 - i, now)
        req = s.next_read(now)
        if req is not None:
            starts.append(now)
            s.complete(g.ReadResult(req.addr, None, g.ERR_CONNECT), now + 0.5)
        now += 1.0
    for t in starts:
        assert sum(1 for u in starts if t <= u < t + 60) <= 3
    assert len(starts) == 15  # and the budget is used: 3 a minute for 5 minutes
    assert s.stats.budget_exhausted > 0


def test_id_is_cached_until_its_slot_ends():
    s = g.GattScheduler(policy())
    t = T0 + 600
    s.offer(IPHONE, AddrType.RANDOM, -60, t)
    req = s.next_read(t)
    assert req == g.ReadRequest(IPHONE, AddrType.RANDOM, -60)
    s.complete(g.ReadResult(IPHONE, ID), t + 2)
    assert s.lookup(IPHONE, t + 2) == ID
    assert s.lookup(IPHONE, T0 + 899.9) == ID
    assert s.lookup(IPHONE, T0 + 900) is None  # next slot: a new ID
    s.expire(T0 + 900)
    assert s.cached_count() == 0
    s.offer(IPHONE, AddrType.RANDOM, -60, T0 + 901)
    assert s.next_read(T0 + 901) is not None  # read again in the new slot


def test_read_straddling_a_slot_boundary_is_not_cached_nor_penalised():
    s = g.GattScheduler(policy())
    s.offer(IPHONE, AddrType.RANDOM, -60, T0 + 898)
    s.next_read(T0 + 898)
    s.complete(g.ReadResult(IPHONE, ID), T0 + 901)
    assert s.lookup(IPHONE, T0 + 901) is None
    assert s.backoff_until(IPHONE) is None


@pytest.mark.parametrize(
    ("failures", "until"),
    [(1, 30.0), (2, 60.0), (3, 120.0), (4, 240.0), (5, 480.0), (6, 900.0), (7, 900.0)],
)
def test_exponential_backoff_is_capped(failures, until):
    s = g.GattScheduler(policy())
    now = T0
    for _ in range(failures):
        s.offer(IPHONE, AddrType.RANDOM, -60, now)
        req = s.next_read(now)
        assert req is not None
        s.complete(g.ReadResult(IPHONE, None, g.ERR_TIMEOUT), now)
        wait = s.backoff_until(IPHONE) - now
        # inside the back-off the address is not read again
        s.offer(IPHONE, AddrType.RANDOM, -60, now + wait - 1)
        assert s.next_read(now + wait - 1) is None
        now += wait
    assert wait == until


def test_success_resets_backoff():
    s = g.GattScheduler(policy())
    s.offer(IPHONE, AddrType.RANDOM, -60, T0)
    s.next_read(T0)
    s.complete(g.ReadResult(IPHONE, None, g.ERR_CONNECT), T0)
    s.offer(IPHONE, AddrType.RANDOM, -60, T0 + 30)
    s.next_read(T0 + 30)
    s.complete(g.ReadResult(IPHONE, ID), T0 + 31)
    assert s.backoff_until(IPHONE) is None


def test_no_bluezone_service_backs_off_to_the_cap_at_once():
    s = g.GattScheduler(policy())
    s.offer(IPHONE, AddrType.RANDOM, -60, T0)
    s.next_read(T0)
    s.complete(g.ReadResult(IPHONE, None, g.ERR_NO_SERVICE), T0 + 1)
    assert s.backoff_until(IPHONE) == T0 + 1 + 900


@pytest.mark.parametrize("size", [0, 11, 13, 16])
def test_wrong_length_is_a_failure(size):
    s = g.GattScheduler(policy())
    s.offer(IPHONE, AddrType.RANDOM, -60, T0)
    s.next_read(T0)
    s.complete(g.ReadResult(IPHONE, bytes(size)), T0 + 1)
    assert s.lookup(IPHONE, T0 + 1) is None
    assert s.stats.failures_by_reason == {g.ERR_LENGTH: 1}


def test_strongest_then_newest_first():
    s = g.GattScheduler(policy())
    s.offer(addr(1), AddrType.RANDOM, -80, T0)
    s.offer(addr(2), AddrType.RANDOM, -55, T0)
    s.offer(addr(3), AddrType.RANDOM, -55, T0 + 1)
    s.offer(addr(4), AddrType.RANDOM, -70, T0 + 2)
    order = []
    now = T0 + 2
    while (req := s.next_read(now)) is not None:
        order.append(req.addr)
        s.complete(g.ReadResult(req.addr, ID), now)
    assert order == [addr(3), addr(2), addr(4), addr(1)]


def test_queue_is_bounded_and_keeps_the_strongest():
    s = g.GattScheduler(policy(max_pending=3))
    for i, rssi in enumerate([-70, -60, -80]):
        s.offer(addr(i), AddrType.RANDOM, rssi, T0)
    s.offer(addr(9), AddrType.RANDOM, -90, T0)  # weaker than all: dropped
    s.offer(addr(8), AddrType.RANDOM, -50, T0)  # evicts the -80
    assert s.pending_count() == 3
    assert s.stats.candidates_dropped == 2
    got = set()
    while (req := s.next_read(T0)) is not None:
        got.add(req.addr)
        s.complete(g.ReadResult(req.addr, ID), T0)
    assert got == {addr(0), addr(1), addr(8)}


def test_rotating_addresses_keep_every_table_bounded():
    s = g.GattScheduler(policy(max_pending=64, max_cached=100, max_backoff_entries=100))
    for i in range(5000):
        now = T0 + i * 0.05
        a = f"7{i >> 20:01X}:{(i >> 16) & 15:02X}:{(i >> 8) & 255:02X}:{i & 255:02X}:00:01"
        s.offer(a, AddrType.RANDOM, -60, now)
        req = s.next_read(now)
        if req is not None:
            ok = i % 2 == 0
            s.complete(
                g.ReadResult(req.addr, ID if ok else None, None if ok else "connect"),
                now,
            )
    assert s.pending_count() <= 64
    assert s.cached_count() <= 100
    assert len(s._backoff) <= 100


def test_stale_candidates_are_forgotten():
    s = g.GattScheduler(policy(reads_per_minute=1))
    s.offer(addr(1), AddrType.RANDOM, -60, T0)
    s.offer(addr(2), AddrType.RANDOM, -70, T0)
    req = s.next_read(T0)
    s.complete(g.ReadResult(req.addr, ID), T0 + 1)
    assert s.next_read(T0 + 30) is None  # addr(2) not heard for 30 s: gone
    assert s.pending_count() == 0


def test_backward_clock_step_rebases_backoff():
    s = g.GattScheduler(policy())
    s.offer(IPHONE, AddrType.RANDOM, -60, T0)
    s.next_read(T0)
    s.complete(g.ReadResult(IPHONE, None, g.ERR_CONNECT), T0)
    assert s.backoff_until(IPHONE) == T0 + 30
    step = -86400.0 * 365  # NTP corrects a clock that was a year ahead
    s.offer(IPHONE, AddrType.RANDOM, -60, T0 + step + 10)
    # The 10 s that passed cannot be told from the step: the wait restarts in full.
    assert s.backoff_until(IPHONE) == T0 + step + 10 + 30
    assert s.next_read(T0 + step + 39) is None
    s.offer(IPHONE, AddrType.RANDOM, -60, T0 + step + 41)
    assert s.next_read(T0 + step + 41) is not None
    assert s.stats.clock_steps == 1


def test_lost_read_fails_after_the_deadline():
    s = g.GattScheduler(policy(connect_timeout_s=10, inflight_grace_s=5))
    s.offer(IPHONE, AddrType.RANDOM, -60, T0)
    s.next_read(T0)
    s.expire(T0 + 14)
    assert s.inflight is not None
    s.expire(T0 + 16)
    assert s.inflight is None
    assert s.stats.failures_by_reason == {g.ERR_LOST: 1}
    s.complete(g.ReadResult(IPHONE, ID), T0 + 17)  # late answer ignored
    assert s.stats.results_unexpected == 1


def test_disabled_budget_never_reads():
    s = g.GattScheduler(policy(reads_per_minute=0))
    s.offer(IPHONE, AddrType.RANDOM, -60, T0)
    assert s.next_read(T0) is None


# -- the facade with a synchronous reader --------------------------------------------


class ScriptedReader:
    """Answers each submitted read from a table at the next results() call."""

    def __init__(self, answers):
        self.answers = answers
        self.submitted = []
        self._pending = None

    @property
    def busy(self):
        return self._pending is not None

    def submit(self, request):
        assert self._pending is None
        self.submitted.append(request)
        self._pending = request

    def results(self):
        if self._pending is None:
            return []
        req, self._pending = self._pending, None
        value, error = self.answers[req.addr]
        return [g.ReadResult(req.addr, value, error)]

    def close(self):
        pass


def iphone_sighting(t, a=IPHONE, rssi=-60):
    decoded = Decoded(
        "bluezone", None, {"os": "ios", "state": "foreground"}, needs_gatt=True
    )
    return Sighting(t, a, AddrType.RANDOM, rssi, decoded, gateway="bus-07")


def test_resolver_turns_iphones_into_bluezone_keys():
    reader = ScriptedReader({IPHONE: (ID, None)})
    r = g.GattResolver(reader, policy())
    assert r.observe(iphone_sighting(T0), T0) is None
    r.pump(T0)  # submits
    r.pump(T0 + 1)  # collects
    out = r.observe(iphone_sighting(T0 + 2), T0 + 2)
    assert out is not None
    assert out.key == "bluezone:" + BLUEZONE_ID.lower()
    assert out.to_json()["via"] == "gatt"
    assert out.to_json()["os"] == "ios"
    assert (out.addr, out.rssi, out.gateway) == (IPHONE, -60, "bus-07")
    assert "needs_gatt" not in out.to_json()
    other = Sighting(
        T0, "5E:00:00:00:00:01", AddrType.RANDOM, -70, Decoded("gaen", "gaen:00")
    )
    assert r.observe(other, T0) is other
    assert len(reader.submitted) == 1


def test_bluetrace_phones_do_not_spend_the_connection_budget():
    reader = ScriptedReader({})
    r = g.GattResolver(reader, policy())
    decoded = Decoded("bluetrace", None, {"os": "android"}, needs_gatt=True)
    tt = Sighting(T0, "5E:00:00:00:00:02", AddrType.RANDOM, -60, decoded)
    assert r.observe(tt, T0) is tt
    r.pump(T0)
    assert reader.submitted == []


# -- the bluepy shell against the fake helper ------------------------------------------


@pytest.fixture
def fake(tmp_path, monkeypatch):
    return FakeAdapter(tmp_path, monkeypatch)


@pytest.fixture
def reader():
    readers = []

    def _make(**kw):
        kw.setdefault("connect_timeout_s", 2.0)
        rd = BluepyGattReader("hci0", **kw)
        readers.append(rd)
        return rd

    yield _make
    for rd in readers:
        rd.close()


def read_once(rd, a=IPHONE, addr_type=AddrType.RANDOM, timeout_s=10.0):
    rd.submit(g.ReadRequest(a, addr_type, -60))
    assert rd.busy
    results = rd.wait(timeout_s)
    assert len(results) == 1
    assert not rd.busy
    return results[0]


def connects(fake):
    return [e[3].split()[1] for e in fake.events() if e[3].startswith("connect ")]


def test_bluepy_read_success_disconnects_and_reaps(fake, reader):
    fake.set(gatt={IPHONE: {"value": BLUEZONE_ID}})
    result = read_once(reader())
    assert result == g.ReadResult(IPHONE, ID)
    events = [e[3] for e in fake.events()]
    assert f"cmd conn {IPHONE} random hci0" in events
    assert "cmd svcs 00004e56-73f5-4bc4-a12f-17d1ad07a667" in events
    assert "cmd rd 3" in events
    assert events.index(f"read {IPHONE}") < events.index(f"disconnect {IPHONE}")
    assert events[-1] == "quit"


@pytest.mark.parametrize(
    ("device", "error"),
    [
        ({"connect": "fail"}, g.ERR_CONNECT),
        ({"service": False}, g.ERR_NO_SERVICE),
        ({"char": False}, g.ERR_NO_CHAR),
        ({"value": BLUEZONE_ID[:-2]}, g.ERR_LENGTH),
        ({"value": BLUEZONE_ID + "00"}, g.ERR_LENGTH),
    ],
)
def test_bluepy_read_failures(fake, reader, device, error):
    fake.set(gatt={IPHONE: {"value": BLUEZONE_ID, **device}})
    result = read_once(reader())
    assert result.error == error
    assert result.value is None
    events = [e[3] for e in fake.events()]
    assert events[-1] == "quit"  # disconnected and the helper stopped every time


def test_bluepy_connect_timeout_kills_the_helper(fake, reader):
    fake.set(gatt={IPHONE: {"connect": "hang"}})
    rd = reader(connect_timeout_s=0.5)
    started = time.monotonic()
    result = read_once(rd)
    assert result.error == g.ERR_TIMEOUT
    assert time.monotonic() - started < 3.0
    assert rd._current is None


def test_public_address_type_is_passed(fake, reader):
    tag = "00:1A:7D:DA:71:13"
    fake.set(gatt={tag: {"value": BLUEZONE_ID}})
    assert read_once(reader(), tag, AddrType.PUBLIC).ok
    assert f"cmd conn {tag} public hci0" in [e[3] for e in fake.events()]


def drive(resolver, sightings, now, until, step=0.05):
    """Run the tick loop on a fake wall clock while the worker reads for real."""
    out = []
    end = time.monotonic() + until
    while time.monotonic() < end:
        for s in sightings:
            r = resolver.observe(s, now)
            if r is not None:
                out.append(r)
        resolver.pump(now)
        time.sleep(step)
    return out


def test_resolver_with_bluepy_caches_until_slot_end_and_backs_off(fake, reader):
    good, bad = IPHONE, "70:AA:BB:CC:DD:01"
    fake.set(gatt={good: {"value": BLUEZONE_ID}, bad: {"connect": "fail"}})
    res = g.GattResolver(reader(), policy())
    now = T0 + 800
    seen = drive(
        res, [iphone_sighting(now, good), iphone_sighting(now, bad, -70)], now, 1.0
    )
    assert {s.key for s in seen} == {"bluezone:" + BLUEZONE_ID.lower()}
    assert connects(fake) == [good, bad]  # strongest first, each once
    # same slot, later: cached, and the failed one is in back-off -> no new connection
    drive(
        res,
        [iphone_sighting(now + 20, good), iphone_sighting(now + 20, bad)],
        now + 20,
        0.3,
    )
    assert connects(fake) == [good, bad]
    # next slot: the cached ID is stale, read again; back-off (30 s) has also passed
    later = T0 + 900 + 1
    seen = drive(
        res,
        [iphone_sighting(later, good), iphone_sighting(later, bad, -70)],
        later,
        1.0,
    )
    assert connects(fake) == [good, bad, good, bad]
    assert res.stats.reads_ok == 2
    assert res.stats.failures_by_reason == {g.ERR_CONNECT: 2}


def test_one_connection_at_a_time_and_budget_with_bluepy(fake, reader):
    phones = [f"70:AA:BB:CC:00:{i:02X}" for i in range(5)]
    fake.set(gatt={p: {"value": BLUEZONE_ID, "read_delay_s": 0.05} for p in phones})
    res = g.GattResolver(reader(), policy(reads_per_minute=3))
    now = T0 + 10
    drive(
        res, [iphone_sighting(now, p, -60 - i) for i, p in enumerate(phones)], now, 1.5
    )
    assert connects(fake) == phones[:3]  # budget: 3 in this minute
    open_link = None
    for _, _, _, ev in fake.events():
        if ev.startswith("connect "):
            assert open_link is None  # never two connections at once
            open_link = ev.split()[1]
        elif ev.startswith(("disconnect ", "connfail ")):
            open_link = None
    later = now + 61
    drive(
        res,
        [iphone_sighting(later, p, -60 - i) for i, p in enumerate(phones)],
        later,
        1.0,
    )
    assert connects(fake) == phones  # the rest once the window moved on


def test_scanning_continues_during_a_gatt_read(fake, reader):
    fake.set(
        adv=[
            {
                "addr": "5E:12:34:56:78:9A",
                "type": 2,
                "rssi": -67,
                "data": BLUEZONE_IOS_FG,
            }
        ],
        repeat=400,
        interval_s=0.01,
        gatt={IPHONE: {"value": BLUEZONE_ID, "read_delay_s": 0.8}},
    )
    src = bb.open_bluepy_source("hci0")
    try:
        rd = reader()
        rd.submit(g.ReadRequest(IPHONE, AddrType.RANDOM, -60))
        heard = 0
        end = time.monotonic() + 5
        while rd.busy and time.monotonic() < end:
            heard += len(src.poll(0.1))
            done = rd.results()
            if done:
                assert done[0].ok
        assert not rd.busy
        assert heard >= 20  # ~0.8 s of reports at 100/s while the read was held
    finally:
        src.close()


def test_bluepy_missing_helper_is_a_helper_failure(fake, reader, monkeypatch):
    from bluepy import btle

    monkeypatch.setattr(btle, "helperExe", str(fake.dir / "nope"))
    result = read_once(reader())
    assert result.error == g.ERR_HELPER


# -- held sightings across the slot change -------------------------------------------

ID2 = bytes.fromhex("0102030405060708090a0b0c")


def key_of(value):
    return "bluezone:" + value.hex()


def read_at(r, reader, t):
    """Pump until the read submitted at `t` has been answered."""
    r.pump(t)
    r.pump(t + 0.5)


def test_known_addresses_are_re_read_before_newcomers():
    s = g.GattScheduler(policy())
    s.offer(addr(1), AddrType.RANDOM, -50, T0)  # newcomer, strong
    s.offer(addr(2), AddrType.RANDOM, -80, T0, known=True)  # here last slot, weak
    assert s.next_read(T0).addr == addr(2)


def test_held_sightings_are_released_with_the_new_id_and_the_old_key():
    reader = ScriptedReader({IPHONE: (ID, None)})
    r = g.GattResolver(reader, policy(reads_per_minute=2))
    assert r.observe(iphone_sighting(T0 + 800), T0 + 800) is None
    read_at(r, reader, T0 + 800)
    assert r.take_released()[0].sighting.key == key_of(ID)  # the first one, too
    assert r.observe(iphone_sighting(T0 + 850), T0 + 850).key == key_of(ID)
    # The slot changes at T0 + 900: the phone now shows ID2. The read first fails
    # (back-off 30 s), meanwhile every sighting is held.
    reader.answers[IPHONE] = (None, g.ERR_CONNECT)
    times = [T0 + 900 + i for i in range(1, 40, 3)]
    for t in times[:2]:
        assert r.observe(iphone_sighting(t), t) is None
        assert r.holding(IPHONE, t) == key_of(ID)
        read_at(r, reader, t)
    reader.answers[IPHONE] = (ID2, None)
    for t in times[2:]:  # (no pump: the back-off and the budget hold the read)
        assert r.observe(iphone_sighting(t), t) is None
    assert r.held_count == len(times)
    assert r.take_released() == ()
    read_at(r, reader, times[-1] + 1)
    released = r.take_released()
    assert [x.sighting.t for x in released] == times
    assert {x.sighting.key for x in released} == {key_of(ID2)}
    assert {x.continues for x in released} == {key_of(ID)}
    assert released[0].sighting.to_json()["via"] == "gatt"
    assert (r.held_count, r.stats.held, r.stats.released) == (0, 14, 14)
    assert r.stats.held_dropped == 0
    assert r.holding(IPHONE, times[-1] + 2) is None


@pytest.mark.parametrize(
    ("case", "held", "dropped"),
    [
        ("not_bluezone", 0, 1),  # connected without the service: not held again
        ("too_many", 3, 2),  # bounded per address: the oldest go
        ("walked_away", 0, 2),  # not heard for candidate_ttl_s: given up
        ("too_old", 4, 1),  # held longer than hold_max_s
    ],
)
def test_holding_is_bounded(case, held, dropped):
    reader = ScriptedReader({IPHONE: (None, g.ERR_NO_SERVICE)})
    kw = {"max_held_per_addr": 10 if case == "too_old" else 3, "hold_max_s": 300.0}
    r = g.GattResolver(reader, policy(reads_per_minute=1, **kw))
    if case == "not_bluezone":
        r.observe(iphone_sighting(T0), T0)
        read_at(r, reader, T0)  # no service: back-off 900 s; dropped
        r.observe(iphone_sighting(T0 + 5), T0 + 5)  # not held: no read coming
    elif case == "too_many":
        reader.answers[IPHONE] = (None, g.ERR_CONNECT)
        r.observe(iphone_sighting(T0), T0)
        read_at(r, reader, T0)  # failed, retry in 30 s
        for i in range(1, 5):
            r.observe(iphone_sighting(T0 + i), T0 + i)
    elif case == "walked_away":
        reader.answers[IPHONE] = (None, g.ERR_CONNECT)
        r.observe(iphone_sighting(T0), T0)
        r.observe(iphone_sighting(T0 + 1), T0 + 1)
        read_at(r, reader, T0 + 1)
        r.pump(T0 + 30)
    else:
        r2 = g.GattResolver(reader, policy(reads_per_minute=0, **kw))
        assert r2.observe(iphone_sighting(T0), T0) is None
        assert r2.held_count == 0  # no budget: nothing is ever read, nothing held
        reader.answers[IPHONE] = (None, g.ERR_TIMEOUT)
        for t in (T0, T0 + 15, T0 + 31):
            r.observe(iphone_sighting(t), t)
            read_at(r, reader, t)
        for t in (T0 + 290, T0 + 310):
            r.observe(iphone_sighting(t), t)
        r.pump(T0 + 310)
    assert (r.held_count, r.stats.held_dropped) == (held, dropped)
    assert r.stats.released == 0


def test_pipeline_keeps_an_iphone_stay_whole_across_a_slow_re_read():
    """Through the real pipeline: the ID changes at T0 + 900 and the re-read fails for
    three minutes (back-off 30, 60, 120 s); the held sightings arrive late with the
    new ID and continue the same stay, which was kept open meanwhile."""
    from gateway.config import GatewayConfig, ZoneConfig
    from gateway.models import Report
    from gateway.pipeline import EdgePipeline

    reader = ScriptedReader({IPHONE: (ID, None)})
    resolver = g.GattResolver(reader, policy())
    cfg = GatewayConfig(site="s", gateway="g1", zone=ZoneConfig("room", "shift_room"))
    p = EdgePipeline(cfg, gatt=resolver)
    records = []
    data = bytes.fromhex(BLUEZONE_IOS_FG)
    for i in range(450):
        t = T0 + 600 + 2 * i
        if t == T0 + 900:
            reader.answers[IPHONE] = (None, g.ERR_CONNECT)
        if t == T0 + 1000:
            reader.answers[IPHONE] = (ID2, None)
        p.feed(Report(t=t, addr=IPHONE, addr_type=AddrType.RANDOM, rssi=-60, data=data))
        records += p.flush(t + 1)
        if t == T0 + 1050:  # mid-hold: the held sightings are pending, not rejected
            acc = p.accounting()
            assert acc.balanced
            assert acc.pending >= resolver.held_count > 60
            assert acc.rejected.get("needs_gatt", 0) == 0
    assert resolver.stats.reads_failed == 3
    records += p.close()
    (rec,) = [r for r in records if r["kind"] == "presence"]
    assert rec["keys"] == [key_of(ID), key_of(ID2)]
    assert rec["chain_evidence"] == ["address"]
    assert (rec["start"], rec["end"]) == (T0 + 600, T0 + 600 + 2 * 449)
    acc = p.accounting()
    assert acc.balanced
    assert acc.rejected.get("needs_gatt", 0) == 0
    assert acc.recorded == 450
