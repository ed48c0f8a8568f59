"""Pure: when to read an iPhone's Bluezone ID over GATT, and what to do with it.

An iPhone running Bluezone v3 does not put its 12-byte ID in the advertisement; a
central has to connect, read characteristic `...A689` of service `...A667` and
disconnect (protocols.md 1.4). A connection costs 1-10 s of radio time during which
the adapter hears less, and a phone that is not running Bluezone (the background
overflow bit collides) only wastes it. So the gateway reads sparingly:

* one connection at a time;
* at most `reads_per_minute` connections started in ANY 60-s window (a sliding
  window, not a refilling bucket: a token bucket of capacity N allows 2N reads in
  the first minute, which is not what an ops user means by "12 reads a minute");
* the ID is cached per address until the end of its 15-minute Bluezone slot
  (slots aligned to :00/:15/:30/:45 UTC, protocols.md 1.5), as Bluezone's own Android
  reader does (`isBluezoneIdChanged`);
* exponential back-off per address on failure, capped; an address that connected
  but has no Bluezone service goes straight to the cap;
* a bounded queue of candidates: addresses whose ID the gateway knew in the slot
  just ended first (people already in the zone, whose stays must not break), then
  strongest RSSI, then most recently heard;
* the sightings of an address heard while its read is pending are HELD (bounded per
  address and in time, `hold_max_s`) and released with the ID once it is read: every
  Bluezone iPhone changes its ID at the same instant (:00/:15/:30/:45 UTC), so all
  cached IDs expire together and the budget needs minutes to re-read a full shift
  room; dropping those sightings would cut every iPhone's stay at every boundary.
  Only sightings of the slot the read was made in are released (the phone shows one
  ID per slot, protocols.md 1.5); with each goes the key the same address had in the
  slot before (`Released.continues`), so the aggregator continues that stay (chain
  evidence "address": one address is one radio).

Time is one parameter, `now`: wall-clock Unix seconds (slots are defined on UTC).
A Pi without a battery-backed clock steps its clock when NTP first syncs; a backward
step would freeze budgets and back-offs, so every stored instant is rebased by the
size of the step (`_rebase`). Forward steps only expire things early, which is safe.

`GattResolver` is the facade the pipeline uses; it drives any `GattReader` (the
bluepy shell in `gateway.gatt_bluepy`, or a test double) and never blocks.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from gateway.models import AddrType, Decoded, Sighting

if TYPE_CHECKING:
    from gateway.config import GattConfig

_LOGGER = logging.getLogger(__name__)

# protocols.md 1.2/1.4
BLUEZONE_SERVICE_UUID = "00004e56-73f5-4bc4-a12f-17d1ad07a667"
BLUEZONE_CHAR_UUID = "00004e56-73f5-4bc4-a12f-17d1ad07a689"
BLUEZONE_ID_LEN = 12
# protocols.md 1.5: 96 slots a day in v3, i.e. 15 minutes aligned on UTC midnight.
SLOT_S = 900

WINDOW_S = 60.0
# A backward clock step smaller than this is jitter, not a step.
_STEP_TOLERANCE_S = 1.0

# ReadResult.error values (the shell maps bluepy's exceptions to these).
ERR_CONNECT = "connect"  # connection refused or failed (device gone, busy)
ERR_TIMEOUT = "timeout"  # no answer within the connect / I/O timeout
ERR_NO_SERVICE = "no_service"  # connected, but no Bluezone service: not Bluezone
ERR_NO_CHAR = "no_characteristic"
ERR_LENGTH = "length"  # characteristic value is not exactly 12 bytes
ERR_GATT = "gatt"  # any other ATT error
ERR_HELPER = "helper"  # bluepy-helper died or could not start
ERR_LOST = "lost"  # the reader never answered (policy-side deadline)


def slot_index(t_s: float) -> int:
    """Bluezone slot number (15-minute slots since the epoch, UTC-aligned)."""
    return math.floor(t_s / SLOT_S)


def slot_end(t_s: float) -> float:
    """Unix time at which the slot containing `t_s` ends."""
    return float((slot_index(t_s) + 1) * SLOT_S)


@dataclass(frozen=True, slots=True)
class GattPolicy:
    reads_per_minute: int = 12
    connect_timeout_s: float = 10.0
    backoff_initial_s: float = 30.0
    backoff_max_s: float = 900.0
    # A candidate not heard for this long has walked away: connecting would time out.
    candidate_ttl_s: float = 20.0
    max_pending: int = 64
    max_cached: int = 4096
    max_backoff_entries: int = 4096
    # After connect_timeout_s plus this, a read the reader never answered is failed.
    inflight_grace_s: float = 20.0
    # Sightings held while an address's read is pending: how long, and how many per
    # address (one report a second for hold_max_s), at most max_pending addresses.
    hold_max_s: float = 300.0
    max_held_per_addr: int = 600

    @classmethod
    def from_config(cls, cfg: GattConfig) -> GattPolicy:
        return cls(
            reads_per_minute=cfg.reads_per_minute if cfg.enabled else 0,
            connect_timeout_s=cfg.connect_timeout_s,
            backoff_initial_s=cfg.backoff_initial_s,
            backoff_max_s=max(cfg.backoff_max_s, cfg.backoff_initial_s),
        )


@dataclass(frozen=True, slots=True)
class ReadRequest:
    addr: str
    addr_type: AddrType
    rssi: int


@dataclass(frozen=True, slots=True)
class ReadResult:
    addr: str
    value: bytes | None  # the characteristic value when the read succeeded
    error: str | None = None  # one of the ERR_* values when it did not
    detail: str = ""  # bluepy's message, for DEBUG logs

    @property
    def ok(self) -> bool:
        return self.error is None and self.value is not None


@dataclass(slots=True)
class _Candidate:
    addr: str
    addr_type: AddrType
    rssi: int
    last_seen: float
    known: bool = False  # its ID was read in the previous slot: re-read it first


@dataclass(slots=True)
class _Backoff:
    failures: int
    until: float


@dataclass(slots=True)
class _Inflight:
    request: ReadRequest
    started: float


@dataclass(slots=True)
class GattStats:
    reads_started: int = 0
    reads_ok: int = 0
    reads_failed: int = 0
    failures_by_reason: dict[str, int] = field(default_factory=dict)
    cache_hits: int = 0
    budget_exhausted: int = 0  # next_read calls refused by the per-minute budget
    candidates_dropped: int = 0  # pending queue full and the newcomer was weakest
    results_unexpected: int = 0
    clock_steps: int = 0
    held: int = 0  # sightings held while their address's read was pending
    released: int = 0  # ... released with the ID read
    held_dropped: int = 0  # ... given up (read failed, too old, bounds)


class GattScheduler:
    """The policy: which address to read next, and what we already know."""

    def __init__(self, policy: GattPolicy) -> None:
        self.policy = policy
        self.stats = GattStats()
        self._pending: dict[str, _Candidate] = {}
        self._cache: dict[str, tuple[int, bytes]] = {}  # addr -> (slot, id)
        # IDs of the slot just ended, kept for one slot: which addresses were people
        # already here (re-read first), and which key a released sighting continues.
        self._prev: dict[str, tuple[int, bytes]] = {}
        self._backoff: dict[str, _Backoff] = {}
        self._starts: deque[float] = deque()
        self._inflight: _Inflight | None = None
        self._last_now: float | None = None

    # -- time -------------------------------------------------------------------

    def _clock(self, now: float) -> None:
        last = self._last_now
        if last is None:
            self._last_now = now
        elif now < last - _STEP_TOLERANCE_S:
            self._rebase(now - last)
            self._last_now = now
        elif now > last:
            self._last_now = now

    def _rebase(self, delta: float) -> None:
        """Shift every stored instant by a backward clock step of `delta` (< 0)."""
        self.stats.clock_steps += 1
        _LOGGER.warning("wall clock stepped back %.1f s; GATT timers rebased", -delta)
        self._starts = deque(t + delta for t in self._starts)
        for cand in self._pending.values():
            cand.last_seen += delta
        for off in self._backoff.values():
            off.until += delta
        if self._inflight is not None:
            self._inflight.started += delta
        # Cached IDs are tied to a slot index, which the new clock recomputes.

    # -- queries ----------------------------------------------------------------

    def lookup(self, addr: str, now: float) -> bytes | None:
        """The ID read from `addr` in the current slot, or None."""
        hit = self._cache.get(addr)
        if hit is None or hit[0] != slot_index(now):
            return None
        self.stats.cache_hits += 1
        return hit[1]

    def previous(self, addr: str, now: float) -> bytes | None:
        """The ID read from `addr` in the slot before the current one, or None."""
        want = slot_index(now) - 1
        for table in (self._cache, self._prev):
            hit = table.get(addr)
            if hit is not None and hit[0] == want:
                return hit[1]
        return None

    def cached(self, addr: str, now: float) -> bool:
        """Is the current slot's ID of `addr` known (without counting a cache hit)?"""
        hit = self._cache.get(addr)
        return hit is not None and hit[0] == slot_index(now)

    def reading(self, addr: str) -> bool:
        return self._inflight is not None and self._inflight.request.addr == addr

    def will_read(self, addr: str, now: float, within_s: float) -> bool:
        """Is a read of `addr` running, or queued and not backed off past `within_s`?"""
        if self.reading(addr):
            return True
        return addr in self._pending and self.read_expected(addr, now, within_s)

    def read_expected(self, addr: str, now: float, within_s: float) -> bool:
        """Not backed off past `within_s` (a phone without Bluezone is, for long)."""
        off = self._backoff.get(addr)
        return off is None or off.until <= now + within_s

    @property
    def inflight(self) -> ReadRequest | None:
        return self._inflight.request if self._inflight is not None else None

    def pending_count(self) -> int:
        return len(self._pending)

    def cached_count(self) -> int:
        return len(self._cache)

    def backoff_until(self, addr: str) -> float | None:
        off = self._backoff.get(addr)
        return off.until if off is not None else None

    def reads_in_window(self, now: float) -> int:
        return sum(1 for t in self._starts if t > now - WINDOW_S)

    # -- updates ----------------------------------------------------------------

    def offer(
        self,
        addr: str,
        addr_type: AddrType,
        rssi: int,
        now: float,
        *,
        known: bool = False,
    ) -> None:
        """A sighting of `addr` that needs its ID read (it is not cached).

        `known`: the address's ID was read in the previous slot (a person already
        here), which puts it ahead of newcomers."""
        self._clock(now)
        if self.policy.reads_per_minute <= 0 or addr_type == AddrType.ANONYMOUS:
            return
        if self._inflight is not None and self._inflight.request.addr == addr:
            return
        hit = self._cache.get(addr)
        if hit is not None and hit[0] == slot_index(now):
            return
        cand = self._pending.get(addr)
        if cand is not None:
            cand.rssi = rssi
            cand.last_seen = now
            cand.addr_type = addr_type
            cand.known = cand.known or known
            return
        if len(self._pending) >= self.policy.max_pending:
            worst = min(self._pending.values(), key=_priority)
            newcomer = _Candidate(addr, addr_type, rssi, now, known)
            if _priority(newcomer) <= _priority(worst):
                self.stats.candidates_dropped += 1
                return
            del self._pending[worst.addr]
            self.stats.candidates_dropped += 1
        self._pending[addr] = _Candidate(addr, addr_type, rssi, now, known)

    def next_read(self, now: float) -> ReadRequest | None:
        """Start the best eligible read, or None (busy, over budget, nothing due)."""
        self._clock(now)
        self.expire(now)
        if self._inflight is not None or not self._pending:
            return None
        best: _Candidate | None = None
        slot = slot_index(now)
        for cand in self._pending.values():
            hit = self._cache.get(cand.addr)
            if hit is not None and hit[0] == slot:
                continue
            off = self._backoff.get(cand.addr)
            if off is not None and off.until > now:
                continue
            if best is None or _priority(cand) > _priority(best):
                best = cand
        if best is None:
            return None
        while self._starts and self._starts[0] <= now - WINDOW_S:
            self._starts.popleft()
        if len(self._starts) >= self.policy.reads_per_minute:
            self.stats.budget_exhausted += 1
            return None
        del self._pending[best.addr]
        request = ReadRequest(best.addr, best.addr_type, best.rssi)
        self._starts.append(now)
        self._inflight = _Inflight(request, now)
        self.stats.reads_started += 1
        return request

    def complete(self, result: ReadResult, now: float) -> None:
        """Record what the reader answered for the read in flight."""
        self._clock(now)
        inflight = self._inflight
        if inflight is None or inflight.request.addr != result.addr:
            self.stats.results_unexpected += 1
            return
        self._inflight = None
        value = result.value
        if result.error is None and value is not None:
            if len(value) == BLUEZONE_ID_LEN:
                self._succeeded(result.addr, value, inflight.started, now)
                return
            result = replace(result, error=ERR_LENGTH, detail=f"{len(value)} bytes")
        self._failed(result.addr, result.error or ERR_GATT, now, result.detail)

    def _succeeded(self, addr: str, value: bytes, started: float, now: float) -> None:
        self.stats.reads_ok += 1
        self._backoff.pop(addr, None)
        if slot_index(started) != slot_index(now):
            # The phone may have answered with either slot's ID: do not pin it to the
            # new slot. The next sighting queues a fresh read (no back-off).
            _LOGGER.debug("GATT read of %s straddled a slot boundary; discarded", addr)
            return
        if addr not in self._cache and len(self._cache) >= self.policy.max_cached:
            oldest = min(self._cache, key=lambda a: self._cache[a][0])
            del self._cache[oldest]
        self._cache[addr] = (slot_index(now), value)

    def _failed(self, addr: str, reason: str, now: float, detail: str) -> None:
        self.stats.reads_failed += 1
        by = self.stats.failures_by_reason
        by[reason] = by.get(reason, 0) + 1
        off = self._backoff.get(addr)
        failures = (off.failures if off is not None else 0) + 1
        if reason == ERR_NO_SERVICE:
            # It answered GATT without the Bluezone service: an iPhone whose overflow
            # bit collided (protocols.md 8.2). Do not spend the budget on it again soon.
            delay = self.policy.backoff_max_s
        else:
            delay = min(
                self.policy.backoff_initial_s * 2.0 ** (failures - 1),
                self.policy.backoff_max_s,
            )
        if addr not in self._backoff and len(self._backoff) >= (
            self.policy.max_backoff_entries
        ):
            soonest = min(self._backoff, key=lambda a: self._backoff[a].until)
            del self._backoff[soonest]
        self._backoff[addr] = _Backoff(failures, now + delay)
        _LOGGER.debug(
            "GATT read of %s failed (%s: %s); retry in %.0f s",
            addr,
            reason,
            detail,
            delay,
        )

    def expire(self, now: float) -> None:
        """Forget stale candidates, IDs of past slots and long-expired back-offs."""
        ttl = self.policy.candidate_ttl_s
        for addr in [a for a, c in self._pending.items() if c.last_seen < now - ttl]:
            del self._pending[addr]
        slot = slot_index(now)
        for addr in [a for a, (s, _) in self._prev.items() if s != slot - 1]:
            del self._prev[addr]
        for addr in [a for a, (s, _) in self._cache.items() if s != slot]:
            if self._cache[addr][0] == slot - 1:
                self._prev[addr] = self._cache[addr]
            del self._cache[addr]
        # Keep a failure count for one cap-length after the back-off ends, so that a
        # phone that keeps failing keeps doubling instead of starting over.
        keep = self.policy.backoff_max_s
        for addr in [a for a, o in self._backoff.items() if o.until + keep < now]:
            del self._backoff[addr]
        inflight = self._inflight
        if inflight is not None:
            deadline = (
                inflight.started
                + self.policy.connect_timeout_s
                + self.policy.inflight_grace_s
            )
            if now > deadline:
                self._inflight = None
                self._failed(inflight.request.addr, ERR_LOST, now, "no answer")


def _priority(cand: _Candidate) -> tuple[bool, int, float]:
    """Higher is better: known last slot (a stay to keep whole), then strongest RSSI
    (closest, most likely to connect), then newest."""
    return (cand.known, cand.rssi, cand.last_seen)


class GattReader(Protocol):
    """Performs reads one at a time in the background (see gateway.gatt_bluepy)."""

    @property
    def busy(self) -> bool:
        """True from submit() until results() has returned that read's result."""
        ...

    def submit(self, request: ReadRequest) -> None: ...

    def results(self) -> list[ReadResult]:
        """Results finished since the last call; never blocks."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Released:
    """A held sighting, now with its Bluezone key."""

    sighting: Sighting  # its own time `t`; decoded key `bluezone:<id>`, via "gatt"
    continues: str | None  # the key the same address had in the previous slot


class GattResolver:
    """Facade for the pipeline: turns iPhone sightings into `bluezone:` sightings.

    Call `observe()` for every sighting and `pump()` once per tick. Neither blocks:
    reads run in the reader's worker while scanning continues. Sightings of an
    address whose read is pending are held; `take_released()` hands them over, with
    their key, once the read succeeds (`held_count` are still waiting).
    """

    def __init__(self, reader: GattReader, policy: GattPolicy | None = None) -> None:
        self.reader = reader
        self.scheduler = GattScheduler(policy or GattPolicy())
        self._held: dict[str, deque[Sighting]] = {}
        self._held_n = 0
        self._released: list[Released] = []

    @property
    def stats(self) -> GattStats:
        return self.scheduler.stats

    @property
    def held_count(self) -> int:
        """Sightings held now (neither released nor given up)."""
        return self._held_n

    def _with_id(self, sighting: Sighting, value: bytes) -> Sighting:
        fields = dict(sighting.decoded.fields)
        fields["via"] = "gatt"
        decoded = Decoded(
            format="bluezone", key="bluezone:" + value.hex(), fields=fields
        )
        return replace(sighting, decoded=decoded)

    def observe(self, sighting: Sighting, now: float) -> Sighting | None:
        """A sighting with its Bluezone key, or None while the ID is being read (the
        sighting is then held if a read is coming: see `holding`).

        Sightings that do not need a GATT read are returned unchanged.
        """
        if not sighting.decoded.needs_gatt:
            return sighting
        if sighting.decoded.format != "bluezone":
            # BlueTrace also needs a GATT exchange, but its TempID is only readable by
            # the health authority: spending the connection budget on it buys nothing.
            return sighting
        scheduler = self.scheduler
        addr = sighting.addr
        value = scheduler.lookup(addr, now)
        if value is not None:
            return self._with_id(sighting, value)
        known = scheduler.previous(addr, now) is not None
        scheduler.offer(addr, sighting.addr_type, sighting.rssi, now, known=known)
        self._hold(sighting, now)
        return None

    def _hold(self, sighting: Sighting, now: float) -> None:
        policy = self.scheduler.policy
        addr = sighting.addr
        queue = self._held.get(addr)
        if queue is None:
            if len(self._held) > policy.max_pending or not self.scheduler.will_read(
                addr, now, policy.hold_max_s
            ):
                return  # no read coming in time (back-off, budget 0): not held
            queue = self._held[addr] = deque()
        if len(queue) >= policy.max_held_per_addr:
            queue.popleft()
            self._held_n -= 1
            self.stats.held_dropped += 1
        queue.append(sighting)
        self._held_n += 1
        self.stats.held += 1

    def holding(self, addr: str, now: float) -> str | None:
        """If `addr`'s sightings are being held and it had an ID in the previous slot:
        that slot's key (the stay the held sightings will continue), else None."""
        if addr not in self._held:
            return None
        value = self.scheduler.previous(addr, now)
        return None if value is None else "bluezone:" + value.hex()

    def take_released(self) -> Sequence[Released]:
        """Held sightings whose ID has been read since the last call, in time order
        per address."""
        if not self._released:
            return ()
        out = self._released
        self._released = []
        return out

    def _release(self, addr: str, now: float) -> None:
        queue = self._held.pop(addr, None)
        if not queue:
            return
        self._held_n -= len(queue)
        value = self.scheduler.lookup(addr, now)
        slot = slot_index(now)
        prev = self.scheduler.previous(addr, now)
        continues = None if prev is None else "bluezone:" + prev.hex()
        for sighting in queue:
            if value is not None and slot_index(sighting.t) == slot:
                self._released.append(
                    Released(self._with_id(sighting, value), continues)
                )
                self.stats.released += 1
            else:
                self.stats.held_dropped += 1

    def _expire_held(self, now: float) -> None:
        policy = self.scheduler.policy
        horizon = now - policy.hold_max_s
        for addr in list(self._held):
            queue = self._held[addr]
            while queue and queue[0].t < horizon:
                queue.popleft()
                self._held_n -= 1
                self.stats.held_dropped += 1
            # Given up with the candidate queue's own rule (not heard for a while: gone)
            # or when the next read is too far away (long back-off: not Bluezone).
            scheduler = self.scheduler
            gone = queue and queue[-1].t < now - policy.candidate_ttl_s
            if (
                not queue
                or (gone and not scheduler.reading(addr))
                or not scheduler.read_expected(addr, now, policy.hold_max_s)
            ):
                self._held_n -= len(queue)
                self.stats.held_dropped += len(queue)
                del self._held[addr]

    def pump(self, now: float) -> None:
        """Collect finished reads (releasing what they resolve) and start the next
        one if the policy allows."""
        for result in self.reader.results():
            self.scheduler.complete(result, now)
            if result.addr in self._held and self.scheduler.cached(result.addr, now):
                self._release(result.addr, now)
        self._expire_held(now)
        if self.reader.busy:
            self.scheduler.expire(now)
            return
        request = self.scheduler.next_read(now)
        if request is not None:
            self.reader.submit(request)

    def close(self) -> None:
        self.reader.close()
