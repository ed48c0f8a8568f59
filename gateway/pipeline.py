"""The edge pipeline: Reports -> merge -> decode -> [GATT] -> presence/gate/occupancy.

Pure apart from what it is given: time comes from the reports and from `flush(now)`;
the decoder, the advertisement/scan-response merger and the GATT resolver are
injected (defaults: gateway.decoders, gateway.merge; no GATT).

Accounting (the issue's invariant, checked by tests/test_pipeline.py): every report
fed ends in exactly one of
  * a presence record (its sighting is one of the record's `n`),
  * one counted rejection (`rejected[reason]`: a scan response folded into its
    advertisement, undecodable, no identity, not a person, a site beacon, another
    gateway's line, an iPhone still waiting for its GATT read, a stay the zone rules
    refuse, ...),
  * or, until `close()`, `pending` (open stays and the merger's buffer).
`accounting()` returns the three; `reports == recorded + sum(rejected) + pending`.
Gate and occupancy records are views of the same sightings, not extra outcomes.

Time: the aggregators run on monotonic time; gateway/clock stamps wall time when
records leave. For a recorded source the trace's own time is both (`Clock.fixed()`).
A live shell calls `observe_clock(mono, wall, synced)` every tick (it returns the
offset to rebase held records with when the clock has just synchronised); a report's
`t` (the receiver's wall clock at reception) is mapped to monotonic time with the
latest offset. Records made while the clock is not synchronised are not kept here:
`take_held()` hands them over at once, for the shell to commit to the outbox held.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gateway.aggregate import PresenceAggregator
from gateway.bands import Bands
from gateway.clock import Clock, Held
from gateway.config import GatewayConfig
from gateway.gate import GateCounter, GateRules
from gateway.models import Decoded, Report, Sighting
from gateway.occupancy import BaseKey, Occupancy, SiteBeacons
from gateway.zones import rules_for

if TYPE_CHECKING:
    from gateway.gatt import Released

_LOGGER = logging.getLogger(__name__)

# Rejection reasons of the pipeline itself (the aggregator adds its own).
R_MERGED = "scan_rsp_merged"
R_UNDECODED = "undecoded"
R_NEEDS_GATT = "needs_gatt"
R_NO_KEY = "no_key"
R_NOT_PERSON = "not_person"
R_SITE_BEACON = "site_beacon"
R_OTHER_GATEWAY = "other_gateway"

Decode = Callable[[Report], Sighting | None]


class GattHook(Protocol):
    """gateway.gatt.GattResolver as the pipeline uses it (wall-clock `now`)."""

    def observe(self, sighting: Sighting, now: float) -> Sighting | None: ...

    def pump(self, now: float) -> None: ...


class Merger(Protocol):
    """Advertisement + scan response per address (gateway.merge, adapted)."""

    def push(self, report: Report) -> list[Report]: ...

    def drain(self) -> list[Report]: ...

    @property
    def folded(self) -> int: ...

    @property
    def held(self) -> int: ...


class PassThrough:
    """No merging: every report is decoded on its own."""

    folded = 0
    held = 0

    def push(self, report: Report) -> list[Report]:
        return [report]

    def drain(self) -> list[Report]:
        return []


@dataclass(frozen=True, slots=True)
class Accounting:
    reports: int
    recorded: int
    rejected: dict[str, int]
    pending: int

    @property
    def balanced(self) -> bool:
        return (
            self.reports == self.recorded + sum(self.rejected.values()) + self.pending
        )


def default_decode() -> tuple[Decode, Any]:
    """gateway.decoders' report -> sighting function and its stats object."""
    # issue 2's module, imported lazily so that this one imports without it.
    decoders: Any = importlib.import_module("gateway.decoders")
    stats = decoders.DecodeStats()

    def decode(report: Report) -> Sighting | None:
        result: Sighting | None = decoders.sighting_from_report(report, stats)
        return result

    return decode, stats


def default_merger() -> Merger:
    try:
        merge: Any = importlib.import_module("gateway.merge")
    except ImportError:
        return PassThrough()
    factory = getattr(merge, "pipeline_merger", None)
    if factory is None:
        return PassThrough()
    merger: Merger = factory()
    return merger


def load_site_beacons(cfg: GatewayConfig) -> SiteBeacons:
    """Shell: read the site beacons' key files (config `site_beacons`)."""
    import datetime as dt

    keys: list[str] = []
    base: list[BaseKey] = []
    for sb in cfg.site_beacons:
        if sb.key:
            keys.append(sb.key.lower())
        if sb.base_key_file:
            doc = json.loads(Path(sb.base_key_file).read_text())
            base.append(
                BaseKey(
                    bytes.fromhex(doc["base_key"]),
                    dt.date.fromisoformat(doc["created"]),
                )
            )
    return SiteBeacons(keys, base)


class EdgePipeline:
    """One gateway's whole edge pipeline; see the module docstring."""

    def __init__(
        self,
        cfg: GatewayConfig,
        *,
        decode: Decode | None = None,
        merger: Merger | None = None,
        gatt: GattHook | None = None,
        clock: Clock | None = None,
        site_beacons: SiteBeacons | None = None,
        tick_s: float = 1.0,
    ) -> None:
        self.cfg = cfg
        self.gateway = cfg.gateway
        if decode is None:
            decode, self.decode_stats = default_decode()
        else:
            self.decode_stats = None
        self._decode = decode
        self._merger = merger if merger is not None else default_merger()
        self.gatt = gatt
        # Optional parts of the GATT hook (gateway.gatt.GattResolver has them): held
        # sightings of iPhones whose new slot ID is being read.
        self._gatt_take: Callable[[], Sequence[Released]] | None = getattr(
            gatt, "take_released", None
        )
        self._gatt_holding: Callable[[str, float], str | None] | None = getattr(
            gatt, "holding", None
        )
        # Recorded time (or a shell that never reads the clock): the report's own
        # time is wall time. A live shell's first observe_clock() switches to
        # monotonic time; records made unsynchronised leave as Held (gateway/clock).
        self.clock = clock if clock is not None else Clock.fixed()
        self._clock_live = clock is not None
        self._clock_ignored = False
        self.beacons = (
            site_beacons if site_beacons is not None else load_site_beacons(cfg)
        )
        self.tick_s = tick_s
        self.rules = rules_for(cfg.zone.kind, cfg.aggregation)
        self.bands = Bands.from_config(cfg.bands)
        self.not_person = frozenset(cfg.aggregation.not_person_formats)
        self.presence = PresenceAggregator(
            gateway=cfg.gateway,
            zone=cfg.zone.name,
            zone_kind=cfg.zone.kind,
            rules=self.rules,
            bands=self.bands,
            chaining=cfg.aggregation.chain,
            chain_rssi_db=cfg.aggregation.chain_rssi_db,
            wall_offset=lambda: self.clock.offset_s,
        )
        delay = 2 * self.rules.handover_s + 1.0 + self.rules.min_stay_s
        self.occupancy = Occupancy(
            gateway=cfg.gateway,
            zone=cfg.zone.name,
            interval_s=cfg.aggregation.occupancy_interval_s,
            delay_s=delay,
            counts=self.presence.counts_now,
            beacons_expected=self.beacons.expected,
        )
        self.gate: GateCounter | None = None
        if self.rules.gate:
            g = cfg.gate
            self.gate = GateCounter(
                cfg.gateway,
                GateRules(
                    g.enter_dbm,
                    g.exit_dbm,
                    g.dwell_s,
                    g.absent_s,
                    g.direction_memory_s,
                    g.role,
                ),
            )
        self.reports = 0
        self.rejected: Counter[str] = Counter()
        self._out: list[dict[str, Any]] = []
        self._held: list[Held] = []
        self._next_tick: float | None = None
        self._now = float("-inf")
        self._beacon_heard = False
        self.closed = False

    @classmethod
    def from_config(cls, cfg: GatewayConfig) -> EdgePipeline:
        return cls(cfg)

    # ------------------------------------------------------------------ input

    def observe_clock(self, mono_s: float, wall_s: float, synced: bool) -> float | None:
        """A live shell's clock reading (every tick).

        Returns wall - mono when the clock has just synchronised: the shell rebases
        the held records of this boot with it (gateway/outbox `rebase`).
        """
        if not self._clock_live:
            if self.reports:
                # The aggregators already run on the report's own time: switching
                # time base now would tear open stays apart. Keep it.
                _LOGGER.warning("clock readings arrived after reports; ignored")
                self._clock_live = True
                self._clock_ignored = True
                return None
            self.clock = Clock()
            self._clock_live = True
        if self._clock_ignored:
            return None
        return self.clock.observe(mono_s, wall_s, synced)

    def feed(self, reports: Report | Iterable[Report]) -> None:
        """One report, or a batch (the run daemon hands one poll's worth)."""
        if isinstance(reports, Report):
            self._feed_one(reports)
            return
        for report in reports:
            self._feed_one(report)

    def _feed_one(self, report: Report) -> None:
        self.reports += 1
        if report.gateway is not None and report.gateway != self.gateway:
            self.rejected[R_OTHER_GATEWAY] += 1
            return
        for merged in self._merger.push(report):
            self._sighting(merged)

    def _sighting(self, report: Report) -> None:
        t = self.clock.to_mono(report.t)  # monotonic time of the report
        if self._next_tick is None:
            self._next_tick = t + self.tick_s
        elif t >= self._next_tick:
            self._advance(t)
        if t > self._now:
            self._now = t
        self._released()
        sighting = self._decode(report)
        if sighting is None:
            self.rejected[R_UNDECODED] += 1
            self.occupancy.other(t)
            return
        decoded = sighting.decoded
        if decoded.needs_gatt:
            resolved = (
                self.gatt.observe(sighting, report.t) if self.gatt is not None else None
            )
            if resolved is None or resolved.decoded.needs_gatt:
                # Counted as waiting; a sighting the resolver holds and later
                # releases with its ID comes back through _released().
                self.rejected[R_NEEDS_GATT] += 1
                self.occupancy.other(t)
                if self._gatt_holding is not None:
                    prev_key = self._gatt_holding(sighting.addr, report.t)
                    if prev_key is not None:
                        self.presence.keepalive(prev_key, t)
                return
            decoded = resolved.decoded
        self._person(t, report.t, sighting, decoded)

    def _released(self) -> None:
        """Sightings the GATT resolver held until their address's ID was read: they
        join the stays at their own time (occupancy and gate counted them live)."""
        if self._gatt_take is None:
            return
        for rel in self._gatt_take():
            self.rejected[R_NEEDS_GATT] -= 1
            s = rel.sighting
            t = self.clock.to_mono(s.t)
            self._person(t, s.t, s, s.decoded, continues=rel.continues, late=True)

    def _person(
        self,
        t: float,
        wall_t: float,
        sighting: Sighting,
        decoded: Decoded,
        *,
        continues: str | None = None,
        late: bool = False,
    ) -> None:
        """A decoded sighting with its key: a person's stay, or counted why not.
        `late`: released by the GATT resolver (already counted by occupancy)."""
        key = decoded.key
        fmt = decoded.format
        if key is None:
            self.rejected[R_NO_KEY] += 1
            if not late:
                self.occupancy.other(t)
            return
        if fmt in self.not_person:
            self.rejected[R_NOT_PERSON] += 1
            if not late:
                self.occupancy.other(t)
            return
        if self.beacons and self.beacons.match(key, wall_t):
            self.rejected[R_SITE_BEACON] += 1
            self._beacon_heard = True
            if not late:
                self.occupancy.site_beacon(t, key)
            return
        stay = self.presence.add(
            t, key, fmt, sighting.addr, sighting.rssi, continues=continues
        )
        if late:
            return
        self.occupancy.person(t, stay)
        if self.gate is not None:
            root = stay.root()
            self.gate_record(self.gate.add(t, root.key, sighting.rssi + root.offset_db))

    def gate_record(self, rec: dict[str, Any] | None) -> None:
        if rec is not None:
            rec["zone"] = self.cfg.zone.name
            self._emit([rec])

    # ------------------------------------------------------------ time passes

    def _emit(self, records: list[dict[str, Any]]) -> None:
        if records:
            ready, held = self.clock.emit(records)
            self._out.extend(ready)
            self._held.extend(held)

    def _advance(self, now: float, *, final: bool = False) -> None:
        if now < self._now:
            now = self._now
        self._emit(self.presence.advance(now))
        if self.gate is not None:
            self.gate.advance(now)
        self._emit(self.occupancy.advance(now, final=final))
        if self._next_tick is not None:
            self._next_tick = now + self.tick_s

    def flush(self, now: float) -> list[dict[str, Any]]:
        """Records due by wall time `now`, ready to publish (the clock synchronised).

        Records made meanwhile on an unsynchronised clock are in `take_held()`."""
        if self.gatt is not None:
            self.gatt.pump(now)
            self._released()
        mono = now - self.clock.best_offset_s
        if mono != float("inf") and self._next_tick is not None:
            self._advance(mono)
        out = self._out
        self._out = []
        return out

    def close(self, now: float | None = None) -> list[dict[str, Any]]:
        """End of input: close every stay; return every remaining ready record (the
        held ones are in `take_held()`)."""
        for report in self._merger.drain():
            self._sighting(report)
        self._released()
        self._emit(self.presence.close_all())
        if self._next_tick is not None:
            end = (
                self._now
                if now is None
                else max(self._now, now - self.clock.best_offset_s)
            )
            self._emit(self.occupancy.advance(end, final=True))
        self.closed = True
        out = self._out
        self._out = []
        return out

    def take_held(self) -> list[Held]:
        """Records made on an unsynchronised clock since the last call: the shell
        commits them to the outbox held, in the same transaction as `flush`'s."""
        held = self._held
        self._held = []
        return held

    # the run daemon's names for the same thing
    def close_all(self, now: float | None = None) -> list[dict[str, Any]]:
        return self.close(now)

    # ------------------------------------------------------------ introspection

    def site_beacon_heard(self) -> bool:
        """True if one of this site's beacons was heard since the last call."""
        heard = self._beacon_heard
        self._beacon_heard = False
        return heard

    def accounting(self) -> Accounting:
        rejected = Counter(self.rejected)
        rejected.update(self.presence.rejected)
        if self._merger.folded:
            rejected[R_MERGED] += self._merger.folded
        # Sightings the GATT resolver still holds are pending, not rejected.
        held = int(getattr(self.gatt, "held_count", 0))
        if held:
            rejected[R_NEEDS_GATT] -= held
        return Accounting(
            reports=self.reports,
            recorded=self.presence.recorded,
            rejected=dict(rejected),
            pending=self.presence.pending + self._merger.held + held,
        )

    def stats(self) -> dict[str, Any]:
        acc = self.accounting()
        return {
            "reports": acc.reports,
            "recorded": acc.recorded,
            "rejected": acc.rejected,
            "pending": acc.pending,
            "open_stays": self.presence.open_stays,
            "chains": dict(self.presence.chain_stats.links),
            "chain_ambiguous": self.presence.chain_stats.ambiguous,
            "gate_passages": self.gate.passages if self.gate is not None else 0,
            "clock": {
                "synced": self.clock.synced,
                "unsynced_records": self.clock.stats.unsynced,
                "syncs": self.clock.stats.syncs,
                "steps": self.clock.stats.steps,
            },
        }


def from_config(cfg: GatewayConfig) -> EdgePipeline:
    return EdgePipeline(cfg)


def run_records(
    pipeline: EdgePipeline, reports: Iterable[Report]
) -> Iterable[dict[str, Any]]:
    """Feed a recorded source through; yield records as they are made, then the rest."""
    feed = pipeline._feed_one
    out = pipeline._out
    for report in reports:
        feed(report)
        if out:
            yield from out
            out.clear()
            out = pipeline._out
    yield from pipeline.close()


__all__: Sequence[str] = ("Accounting", "EdgePipeline", "from_config", "run_records")
