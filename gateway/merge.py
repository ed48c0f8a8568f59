"""PURE: merge an advertisement with its scan response, per address (protocols.md 5.3, 7).

An iPhone puts its 128-bit service UUID in the ADV and its name in the SCAN_RSP (or
the other way round); Bluezone v1 iOS hides its code in that name (1.8). A decoder
needs both halves, so each report leaves the merger with its data followed by the
other half last heard from the same address (if heard within `ttl_s`): ADV
structures first, so an ADV field wins over a SCAN_RSP one (decoders keep the first
of each kind). Nothing is held back: every report comes out at once. An empty
report (the empty scan responses phones send) is passed through unmerged.

Memory is bounded: at most `max_entries` addresses, least recently heard evicted
first; entries older than `ttl_s` are forgotten (rotating addresses never come
back). Time is a parameter (the report's own `t`), never the clock.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from typing import Final

from gateway.adstruct import significant
from gateway.models import AddrType, Report

DEFAULT_TTL_S: Final = 10.0
DEFAULT_MAX_ENTRIES: Final = 4096


class _Halves:
    __slots__ = ("adv", "adv_t", "rsp", "rsp_t")

    def __init__(self) -> None:
        self.adv = b""
        self.adv_t = float("-inf")
        self.rsp = b""
        self.rsp_t = float("-inf")


class ScanMerger:
    __slots__ = ("_entries", "evicted", "max_entries", "merged", "ttl_s")

    def __init__(
        self, *, ttl_s: float = DEFAULT_TTL_S, max_entries: int = DEFAULT_MAX_ENTRIES
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max(1, max_entries)
        self._entries: OrderedDict[tuple[str, AddrType], _Halves] = OrderedDict()
        self.merged = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._entries)

    def feed(self, report: Report, now: float | None = None) -> Report:
        """`report` with the other half appended when one is fresh; remembers this half."""
        t = report.t if now is None else now
        entries = self._entries
        key = (report.addr, report.addr_type)
        entry = entries.get(key)
        if entry is None:
            self._expire(t, room=1)
            entry = entries[key] = _Halves()
        else:
            entries.move_to_end(key)
        data = significant(report.data)
        if report.scan_rsp:
            entry.rsp, entry.rsp_t = data, t
            other, other_t = entry.adv, entry.adv_t
        else:
            entry.adv, entry.adv_t = data, t
            other, other_t = entry.rsp, entry.rsp_t
        # An empty half (phones answer SCAN_REQ with empty scan responses) adds
        # nothing: merging it would only duplicate the other half's sighting.
        if not data or not other or abs(t - other_t) > self.ttl_s:
            return report
        self.merged += 1
        merged = other + data if report.scan_rsp else data + other
        return replace(report, data=merged)

    def _expire(self, now: float, room: int = 0) -> None:
        entries = self._entries
        while len(entries) + room > self.max_entries:
            entries.popitem(last=False)
            self.evicted += 1
        # Least recently heard first: stop at the first entry still fresh.
        while entries:
            key, entry = next(iter(entries.items()))
            if now - max(entry.adv_t, entry.rsp_t) <= self.ttl_s:
                break
            del entries[key]


class PipelineMerger:
    """ScanMerger in the shape gateway.pipeline's `Merger` protocol asks for.

    Nothing is held back and nothing is folded away: each report comes out once,
    completed with its other half, so the pipeline's accounting stays one in, one out.
    """

    __slots__ = ("merger",)

    def __init__(self, merger: ScanMerger | None = None) -> None:
        self.merger = merger if merger is not None else ScanMerger()

    def push(self, report: Report) -> list[Report]:
        return [self.merger.feed(report)]

    def drain(self) -> list[Report]:
        return []

    @property
    def folded(self) -> int:
        return 0

    @property
    def held(self) -> int:
        return 0


def pipeline_merger() -> PipelineMerger:
    """The factory gateway.pipeline looks up (`default_merger`)."""
    return PipelineMerger()
