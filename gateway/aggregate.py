"""Pure, stateful: sightings at one gateway -> presence stays (design.md, Edge records).

A *stay* is one device continuously heard at this gateway: consecutive sightings of
its key(s) no more than `gap_s` apart. Stays longer than `max_record_s` leave as
consecutive records (one record's `end` is the next one's `start`, same
`stay_start`, `part` 0, 1, ...). Rotating IDs of one phone are chained into one stay
(gateway/chain) when the evidence allows. Zone rules (gateway/zones) decide which
stays are people in the zone: a rejected stay's sightings are counted, by reason.

Time is a parameter everywhere (`t` of a sighting, `now` of `advance`). It is the
pipeline's monotonic time; gateway/clock turns it into wall time when records leave.

Per sighting the work is O(1): a dict lookup, a histogram bump, a band credit.
Memory: one small object per open stay plus a bounded RSSI histogram (RSSI is an
integer dBm, so at most ~130 entries however long the stay).

Seconds per band: the interval between two consecutive sightings of a stay is
credited to the band of the earlier one (sample and hold), so the band seconds of a
record add up exactly to `end - start`.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from gateway import chain
from gateway.bands import BANDS, Bands
from gateway.zones import HEARD_WINDOW_S, ZoneRules

_LOGGER = logging.getLogger(__name__)

# Reasons a sighting is accounted without a presence record.
REJECT_SHORT: Final = "stay_too_short"
REJECT_WEAK: Final = "stay_too_weak"
REJECT_SPARSE: Final = "stay_not_persistent"
_RECENT_N: Final = 5


class Stay:
    """One (possibly chained) stay at this gateway. Mutable, internal."""

    __slots__ = (
        "accepted",
        "decided",
        "family",
        "first_addr",
        "first_t",
        "fmt",
        "fresh",
        "heard_windows",
        "held_t",
        "key",
        "keys",
        "last_addr",
        "last_band",
        "last_t",
        "last_window",
        "links",
        "merged_into",
        "occ_bucket",
        "offset_db",
        "part",
        "pending_n",
        "recent",
        "seg_band_s",
        "seg_hist",
        "seg_max",
        "seg_min",
        "seg_n",
        "seg_start",
        "status",
    )

    def __init__(
        self, key: str, fmt: str, t: float, addr: str, offset_db: float
    ) -> None:
        self.key = key
        self.keys = [key]
        self.fmt = fmt
        self.family = chain.family_of(fmt)
        self.offset_db = offset_db
        self.first_t = t
        self.last_t = t
        # Latest instant its device was heard but not yet identified (an iPhone whose
        # new slot ID is being read, gateway/gatt): the stay is still going on.
        self.held_t = t
        self.last_addr = addr
        self.first_addr = addr
        self.last_band = 2
        self.seg_start = t
        self.seg_n = 0
        self.seg_hist: dict[int, int] = {}
        self.seg_min = 127
        self.seg_max = -128
        self.seg_band_s = [0.0, 0.0, 0.0]
        self.part = 0
        self.pending_n = 0  # sightings not yet in an emitted record
        self.accepted = False
        self.status = "open"  # open | closed | rejected | merged
        self.recent: deque[int] = deque(maxlen=_RECENT_N)
        self.heard_windows = 0
        self.last_window = -1
        self.decided = False  # chain decision taken for the current silence
        self.fresh = self.family is not None  # may still become a successor
        self.merged_into: Stay | None = None
        self.links: list[chain.Link] = []
        self.occ_bucket = -1

    def root(self) -> Stay:
        s = self
        while s.merged_into is not None:
            s = s.merged_into
        return s

    @property
    def confidence(self) -> float:
        return min((link.confidence for link in self.links), default=1.0)

    def first_rssi(self) -> float:
        return hist_median(self.seg_hist, self.seg_n) if self.seg_n else -127.0

    def heard_ratio(self) -> float:
        windows = int((self.last_t - self.first_t) // HEARD_WINDOW_S) + 1
        return min(1.0, self.heard_windows / windows)


def _median_list(values: list[int]) -> float:
    if not values:
        return -127.0
    values.sort()
    n = len(values)
    mid = n // 2
    return float(values[mid]) if n % 2 else (values[mid - 1] + values[mid]) / 2.0


def hist_median(hist: dict[int, int], n: int) -> float:
    """Median of a histogram of integer values (mean of the middle two for even n)."""
    if n <= 0:
        return 0.0
    lo_rank = (n - 1) // 2
    hi_rank = n // 2
    seen = 0
    lo_val: int | None = None
    for value in sorted(hist):
        seen += hist[value]
        if lo_val is None and seen > lo_rank:
            lo_val = value
        if seen > hi_rank:
            return (lo_val + value) / 2.0 if lo_val is not None else float(value)
    raise ValueError("histogram holds fewer values than n")


@dataclass(slots=True)
class ChainStats:
    links: Counter[str]
    ambiguous: int = 0
    unmatched: int = 0


class PresenceAggregator:
    """Sightings of one gateway -> presence records (times in the pipeline's time)."""

    def __init__(
        self,
        *,
        gateway: str,
        zone: str,
        zone_kind: str,
        rules: ZoneRules,
        bands: Bands,
        chaining: bool = True,
        chain_rssi_db: float = 10.0,
        wall_offset: Callable[[], float | None] = lambda: 0.0,
    ) -> None:
        self.gateway = gateway
        self.zone = zone
        self.zone_kind = zone_kind
        self.rules = rules
        self.bands = bands
        self.chaining = chaining
        self.chain_rssi_db = chain_rssi_db
        self.wall_offset = wall_offset
        self._by_key: dict[str, Stay] = {}
        # Open stays, least recently heard first (re-inserted on every sighting).
        self._open: dict[Stay, None] = {}
        # Stays created recently whose first key may succeed a silent one.
        self._fresh: deque[Stay] = deque()
        self._offsets: dict[str, float] = {}
        self._emitted: list[dict[str, Any]] = []
        self.rejected: Counter[str] = Counter()
        self.recorded = 0  # sightings inside emitted presence records
        self.chain_stats = ChainStats(Counter())
        self._imm = bands.immediate_dbm
        self._near = bands.near_dbm
        # A stay cannot close before its chain decision: wait for competitors too.
        self._decide_after = 2 * rules.handover_s + chain.OVERLAP_TOLERANCE_S
        self._close_after = max(rules.gap_s, self._decide_after if chaining else 0.0)

    # ------------------------------------------------------------------ input

    @property
    def open_stays(self) -> int:
        return len(self._open)

    @property
    def pending(self) -> int:
        """Sightings held in open stays (not yet recorded or rejected)."""
        return sum(s.pending_n for s in self._open)

    def keepalive(self, key: str, t: float) -> None:
        """The device of `key`'s stay was heard at `t` under a new ID not yet known
        (gateway/gatt holds those sightings): keep the stay open, undecided, until the
        held sightings arrive through `add(..., continues=key)`."""
        stay = self._by_key.get(key)
        if stay is None:
            return
        stay = stay.root()
        if stay.status == "open" and t > stay.held_t:
            stay.held_t = t
            del self._open[stay]
            self._open[stay] = None

    def _continue(self, key: str, prev_key: str, t: float) -> Stay | None:
        """The open stay of `prev_key`, now also `key`: the GATT reader read both
        from the same address in consecutive slots (evidence "address")."""
        prev = self._by_key.get(prev_key)
        if prev is None:
            return None
        prev = prev.root()
        if prev.status != "open" or not 0 <= t - prev.last_t <= self.rules.gap_s:
            return None
        link = chain.Link("address", chain.CONFIDENCE["address"])
        prev.links.append(link)
        self.chain_stats.links[link.evidence] += 1
        self._by_key[key] = prev
        return prev

    def add(
        self,
        t: float,
        key: str,
        fmt: str,
        addr: str,
        rssi: int,
        *,
        continues: str | None = None,
    ) -> Stay:
        """One sighting of a person's key; returns the stay it joined.

        `continues`: the key the same address had in the previous slot (a sighting
        held while the new ID was read over GATT); its open stay is continued."""
        stay = self._by_key.get(key)
        if stay is not None:
            stay = stay.root() if stay.merged_into is not None else stay
            if stay.status != "open" or t - stay.last_t > self.rules.gap_s:
                stay = None
        if stay is None and continues is not None and continues != key:
            stay = self._continue(key, continues, t)
        out_band: int
        if stay is None:
            offset = self._offsets.get(fmt)
            if offset is None:
                offset = self._offsets[fmt] = self.bands.offset_db(fmt)
            stay = Stay(key, fmt, t, addr, offset)
            self._by_key[key] = stay
            if stay.fresh:
                self._fresh.append(stay)
        else:
            dt = t - stay.last_t
            if dt > 0:
                if t - stay.seg_start >= self.rules.max_record_s:
                    self._split(stay)
                stay.seg_band_s[stay.last_band] += dt
                stay.last_t = t
            del self._open[stay]
            if key != stay.keys[-1] and key not in stay.keys:
                stay.keys.append(key)
        self._open[stay] = None
        adjusted = rssi + stay.offset_db
        out_band = 0 if adjusted >= self._imm else 1 if adjusted >= self._near else 2
        stay.last_band = out_band
        stay.last_addr = addr
        stay.decided = False
        stay.seg_n += 1
        stay.pending_n += 1
        hist = stay.seg_hist
        hist[rssi] = hist.get(rssi, 0) + 1
        if rssi < stay.seg_min:
            stay.seg_min = rssi
        if rssi > stay.seg_max:
            stay.seg_max = rssi
        stay.recent.append(rssi)
        window = int(t // HEARD_WINDOW_S)
        if window != stay.last_window:
            stay.last_window = window
            stay.heard_windows += 1
        return stay

    # ------------------------------------------------------------ time passes

    def advance(self, now: float) -> list[dict[str, Any]]:
        """Chain decisions, closed stays and split records due at `now`."""
        out: list[dict[str, Any]] = []
        silent_after = now - self.rules.handover_s
        close_before = now - self._close_after
        silent: list[Stay] = []
        closing: list[Stay] = []
        for stay in self._open:
            heard = stay.last_t if stay.last_t >= stay.held_t else stay.held_t
            if heard > silent_after:
                break
            if heard <= close_before:
                closing.append(stay)
            elif stay.family is not None:
                silent.append(stay)
        if self.chaining and (silent or closing):
            self._decide(now, silent, closing)
        for stay in closing:
            # A chain may just have made the stay current again.
            if stay.status == "open" and max(stay.last_t, stay.held_t) <= close_before:
                out.extend(self._close(stay))
        self._prune_fresh(now)
        out.extend(self.drain_emitted())
        return out

    def close_all(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self.chaining:
            silent = [s for s in self._open if s.family is not None]
            self._decide(float("inf"), silent, [])
        for stay in list(self._open):
            if stay.status == "open":
                out.extend(self._close(stay))
        self._fresh.clear()
        return out

    # ---------------------------------------------------------------- chaining

    def _prune_fresh(self, now: float) -> None:
        horizon = now - 2 * self._decide_after
        fresh = self._fresh
        while fresh and (fresh[0].first_t < horizon or not fresh[0].fresh):
            fresh.popleft().fresh = False

    def _decide(self, now: float, silent: list[Stay], closing: list[Stay]) -> None:
        """Link silent stays whose decision is due to unique successors."""
        handover = self.rules.handover_s
        due_before = now - self._decide_after
        endings = [s for s in silent if s.status == "open"]
        endings.extend(s for s in closing if s.family is not None and not s.decided)
        due = [s for s in endings if not s.decided and s.last_t <= due_before]
        if not due:
            return
        offset = self.wall_offset()
        rssi_db = self.chain_rssi_db

        def ending(s: Stay) -> chain.Ending:
            return chain.Ending(
                s.keys[-1],
                s.family or "",
                s.last_t,
                s.last_addr,
                _median_list(list(s.recent)),
            )

        def beginning(s: Stay) -> chain.Beginning:
            return chain.Beginning(
                s.key, s.family or "", s.first_t, s.first_addr, s.first_rssi()
            )

        def edge(e: chain.Ending, b: chain.Beginning) -> bool:
            if not chain.in_window(e, b, handover):
                return False
            return (
                e.last_addr == b.first_addr or abs(e.rssi_dbm - b.rssi_dbm) <= rssi_db
            )

        end_views = {id(s): ending(s) for s in endings}
        fresh = [
            b
            for b in self._fresh
            if b.fresh and b.status == "open" and len(b.keys) == 1
        ]
        begin_views = {id(b): beginning(b) for b in fresh}
        for p in due:
            p.decided = True
            if p.status != "open":
                continue
            pe = end_views[id(p)]
            cands = [
                b
                for b in fresh
                if b is not p and b.fresh and edge(pe, begin_views[id(b)])
            ]
            if not cands:
                self.chain_stats.unmatched += 1
                continue
            competing = len(cands) > 1
            best = cands[0]
            if not competing:
                bv = begin_views[id(best)]
                rivals = [
                    q
                    for q in endings
                    if q is not p and q.status == "open" and edge(end_views[id(q)], bv)
                ]
                competing = bool(rivals)
            link = None
            for b in cands:
                link = chain.decide(
                    pe,
                    begin_views[id(b)],
                    handover_s=handover,
                    rssi_db=rssi_db,
                    competing=competing,
                    wall_offset_s=offset,
                )
                if link is not None:
                    best = b
                    break
            if link is None:
                if competing:
                    self.chain_stats.ambiguous += 1
                else:
                    self.chain_stats.unmatched += 1
                continue
            self._absorb(p, best, link)
            self.chain_stats.links[link.evidence] += 1

    def _absorb(self, p: Stay, b: Stay, link: chain.Link) -> None:
        """Stay `b` (a new rotating ID) continues stay `p`."""
        b.fresh = False
        b.status = "merged"
        b.merged_into = p
        del self._open[b]
        p.links.append(link)
        gap = b.first_t - p.last_t
        if gap > 0:
            p.seg_band_s[p.last_band] += gap
        for i in range(3):
            p.seg_band_s[i] += b.seg_band_s[i]
        for rssi, n in b.seg_hist.items():
            p.seg_hist[rssi] = p.seg_hist.get(rssi, 0) + n
        p.seg_n += b.seg_n
        p.pending_n += b.pending_n
        p.seg_min = min(p.seg_min, b.seg_min)
        p.seg_max = max(p.seg_max, b.seg_max)
        for k in b.keys:
            if k not in p.keys:
                p.keys.append(k)
        p.last_t = max(p.last_t, b.last_t)
        p.held_t = max(p.held_t, b.held_t)
        p.last_addr = b.last_addr
        p.last_band = b.last_band
        p.recent = b.recent
        p.heard_windows += b.heard_windows
        p.last_window = b.last_window
        p.decided = False
        # Keep the LRU order: p is now as recent as b.
        del self._open[p]
        self._open[p] = None
        for k in b.keys:
            self._by_key[k] = p

    # ---------------------------------------------------------------- records

    def _qualifies(self, stay: Stay) -> str | None:
        """None if the stay counts as a person in the zone, else the reason."""
        rules = self.rules
        if stay.accepted:
            return None
        if stay.last_t - stay.first_t < rules.min_stay_s:
            return REJECT_SHORT
        if rules.min_rssi_dbm is not None:
            median = hist_median(stay.seg_hist, stay.seg_n) + stay.offset_db
            if median < rules.min_rssi_dbm:
                return REJECT_WEAK
        if rules.min_heard_ratio > 0 and stay.heard_ratio() < rules.min_heard_ratio:
            return REJECT_SPARSE
        return None

    def counts_now(self, stay: Stay) -> bool:
        """For occupancy: is this stay (so far) a person in the zone?"""
        stay = stay.root()
        if stay.status == "rejected":
            return False
        if stay.accepted:
            return True
        return self._qualifies(stay) is None

    def _record(self, stay: Stay, end: float) -> dict[str, Any] | None:
        reason = self._qualifies(stay)
        n = stay.seg_n
        if reason is not None:
            self.rejected[reason] += n
            stay.pending_n -= n
            return None
        stay.accepted = True
        self.recorded += n
        stay.pending_n -= n
        band_s = stay.seg_band_s
        rec: dict[str, Any] = {
            "kind": "presence",
            "gateway": self.gateway,
            "zone": self.zone,
            "zone_kind": self.zone_kind,
            "key": stay.key,
            "keys": list(stay.keys),
            "start": stay.seg_start,
            "end": end,
            "n": n,
            "rssi_min": stay.seg_min,
            "rssi_median": hist_median(stay.seg_hist, n),
            "rssi_max": stay.seg_max,
            "band_s": {BANDS[i]: round(band_s[i], 3) for i in range(3)},
            "format": stay.fmt,
            "stay_start": stay.first_t,
            "part": stay.part,
            "chain_confidence": stay.confidence,
            "chain_evidence": [link.evidence for link in stay.links],
        }
        return rec

    def _reset_segment(self, stay: Stay, start: float) -> None:
        stay.seg_start = start
        stay.seg_n = 0
        stay.seg_hist = {}
        stay.seg_min = 127
        stay.seg_max = -128
        stay.seg_band_s = [0.0, 0.0, 0.0]
        stay.part += 1

    def _split(self, stay: Stay) -> None:
        """Close the current record at the last sighting; the next starts there."""
        rec = self._record(stay, stay.last_t)
        if rec is not None:
            self._emitted.append(rec)
        self._reset_segment(stay, stay.last_t)

    def _close(self, stay: Stay) -> list[dict[str, Any]]:
        del self._open[stay]
        out = self.drain_emitted()
        if stay.seg_n:
            rec = self._record(stay, stay.last_t)
            if rec is not None:
                out.append(rec)
        stay.status = "closed" if stay.accepted else "rejected"
        for k in stay.keys:
            if self._by_key.get(k) is stay:
                del self._by_key[k]
        return out

    def drain_emitted(self) -> list[dict[str, Any]]:
        """Records split off long stays since the last call."""
        out = self._emitted
        self._emitted = []
        return out
