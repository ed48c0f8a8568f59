"""Pure: clock provenance of edge records (design.md, Rules: Time).

Most Pis have no battery-backed clock: after a power cut the wall clock starts from
fake-hwclock's last save (or 1970) and steps when NTP first synchronises, maybe
hours later on a bus without network. So the pipeline keeps monotonic time and this
module turns it into wall time when a record leaves:

* while the clock is synchronised, wall = mono + offset, the offset learnt from the
  latest synchronised (mono, wall) pair; such records say `"clock": "synced"`;
* a record made while the clock is NOT synchronised is held, in monotonic time, and
  marked `"clock": "unsynced"`; when the clock synchronises, the offset learnt then
  rebases every held record (`"rebased": true`) and they leave;
* more than `max_held` held records (a unit that never syncs): the oldest leave
  stamped with the unsynchronised clock's guess, `"rebased": false`, and are counted.

Monotonic time also keeps stays whole across a clock step: the aggregators never
see the step. Everything takes (mono, wall, synced) as parameters.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

_LOGGER = logging.getLogger(__name__)

# Fields of edge records that hold an instant (design.md, Edge records).
TIME_FIELDS: Final = ("start", "end", "t", "stay_start")


@dataclass(slots=True)
class ClockStats:
    held_max: int = 0
    rebased: int = 0
    released_unrebased: int = 0
    steps: int = 0


class Clock:
    """Monotonic -> wall conversion with hold-and-rebase of pre-sync records."""

    def __init__(self, max_held: int = 20_000, step_tolerance_s: float = 1.0) -> None:
        self.max_held = max_held
        self.step_tolerance_s = step_tolerance_s
        self.synced = False
        self._sync_offset: float | None = None  # wall - mono, learnt while synced
        self._guess_offset = 0.0  # wall - mono of the unsynchronised clock
        self._held: deque[dict[str, Any]] = deque()
        self.stats = ClockStats()

    @classmethod
    def fixed(cls, offset_s: float = 0.0) -> Clock:
        """A clock that is synchronised forever (recorded sources: the trace's time)."""
        clock = cls()
        clock.synced = True
        clock._sync_offset = offset_s
        clock._guess_offset = offset_s
        return clock

    @property
    def offset_s(self) -> float | None:
        """wall - mono when known to be right, else None."""
        return self._sync_offset if self.synced else None

    @property
    def best_offset_s(self) -> float:
        """The best available guess of wall - mono (for bucketing, not for stamping)."""
        return (
            self._sync_offset if self._sync_offset is not None else self._guess_offset
        )

    @property
    def held(self) -> int:
        return len(self._held)

    def observe(
        self, mono_s: float, wall_s: float, synced: bool
    ) -> list[dict[str, Any]]:
        """Learn from one clock reading; return held records released by a sync."""
        offset = wall_s - mono_s
        if not synced:
            self.synced = False
            self._guess_offset = offset
            return []
        if (
            self._sync_offset is not None
            and abs(offset - self._sync_offset) > self.step_tolerance_s
        ):
            self.stats.steps += 1
            _LOGGER.info("wall clock stepped by %.3f s", offset - self._sync_offset)
        was_synced = self.synced
        self.synced = True
        self._sync_offset = offset
        self._guess_offset = offset
        if was_synced or not self._held:
            return []
        released = [self._stamp(r, offset, rebased=True) for r in self._held]
        self.stats.rebased += len(released)
        self._held.clear()
        _LOGGER.info("clock synchronised: %d held records rebased", len(released))
        return released

    def emit(self, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Records (times in mono) -> records ready to leave (times in wall)."""
        out: list[dict[str, Any]] = []
        if self.synced and self._sync_offset is not None:
            offset = self._sync_offset
            for rec in records:
                rec["clock"] = "synced"
                for f in TIME_FIELDS:
                    if f in rec:
                        rec[f] = rec[f] + offset
                out.append(rec)
            return out
        for rec in records:
            self._held.append(rec)
        if len(self._held) > self.stats.held_max:
            self.stats.held_max = len(self._held)
        while len(self._held) > self.max_held:
            out.append(
                self._stamp(self._held.popleft(), self._guess_offset, rebased=False)
            )
            self.stats.released_unrebased += 1
        return out

    def release_all(self) -> list[dict[str, Any]]:
        """At shutdown: what is still held leaves with the unsynchronised guess."""
        out = [self._stamp(r, self._guess_offset, rebased=False) for r in self._held]
        self.stats.released_unrebased += len(out)
        self._held.clear()
        return out

    @staticmethod
    def _stamp(rec: dict[str, Any], offset: float, *, rebased: bool) -> dict[str, Any]:
        rec["clock"] = "unsynced"
        rec["rebased"] = rebased
        for f in TIME_FIELDS:
            if f in rec:
                rec[f] = rec[f] + offset
        return rec
