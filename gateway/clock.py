"""Pure: clock provenance of edge records (design.md, Rules: Time).

Most Pis have no battery-backed clock: after a power cut the wall clock starts from
fake-hwclock's last save (or 1970) and steps when NTP first synchronises, maybe
hours later -- or never, on a bus that runs a whole shift without network and loses
power at ignition-off. So the pipeline keeps monotonic time and this module turns it
into wall time when a record leaves the pipeline, at once, whatever the clock:

* while the clock is synchronised, wall = mono + offset, the offset learnt from the
  latest synchronised (mono, wall) pair; such records say `"clock": "synced"` and
  are ready to publish;
* a record made while the clock is NOT synchronised leaves stamped with that clock's
  guess (mono + the unsynchronised wall - mono), marked `"clock": "unsynced"`, as a
  `Held` carrying the guessed offset. The shell commits it to the outbox at once,
  held (never published), so a power cut loses nothing (gateway/outbox, "held");
* when the clock synchronises, `observe` returns the offset learnt then; the shell
  has the outbox rebase every held row of this boot (`rebase_times`: each row moves by
  sync offset - its own guessed offset; `"rebased": true`) and they leave. A held
  row whose boot ended before a sync can never be rebased (the monotonic clock was
  reset): the next boot releases it with its guess, `"rebased": false`.

Monotonic time also keeps stays whole across a clock step: the aggregators never
see the step. Everything takes (mono, wall, synced) as parameters.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

_LOGGER = logging.getLogger(__name__)

# Fields of edge records that hold an instant (design.md, Edge records).
TIME_FIELDS: Final = ("start", "end", "t", "stay_start")


@dataclass(frozen=True, slots=True)
class Held:
    """A record made while the wall clock was not synchronised.

    `record`'s times are the unsynchronised clock's guess (mono + `offset_s`); the
    outbox keeps it held until `rebase_times(record, sync_offset - offset_s)`.
    """

    record: dict[str, Any]
    offset_s: float  # wall - mono of the unsynchronised clock that stamped it


@dataclass(slots=True)
class ClockStats:
    unsynced: int = 0  # records that left stamped with the unsynchronised clock
    syncs: int = 0  # times the clock became synchronised (each one rebases)
    steps: int = 0  # steps of a synchronised clock beyond the tolerance


def shift_times(record: dict[str, Any], delta_s: float) -> dict[str, Any]:
    """Move every instant of `record` by `delta_s` (in place; returns it)."""
    for f in TIME_FIELDS:
        value = record.get(f)
        if isinstance(value, int | float) and not isinstance(value, bool):
            record[f] = value + delta_s
    return record


def rebase_times(record: dict[str, Any], delta_s: float) -> dict[str, Any]:
    """A held record whose clock has since synchronised: times corrected by
    `delta_s` (sync offset - guessed offset), provenance kept and marked."""
    shift_times(record, delta_s)
    record["clock"] = "unsynced"
    record["rebased"] = True
    return record


def unrebased(record: dict[str, Any]) -> dict[str, Any]:
    """A held record whose boot ended before a sync: it keeps the guess, marked."""
    record["clock"] = "unsynced"
    record["rebased"] = False
    return record


class Clock:
    """Monotonic -> wall conversion; records made before a sync leave as `Held`."""

    def __init__(self, step_tolerance_s: float = 1.0) -> None:
        self.step_tolerance_s = step_tolerance_s
        self.synced = False
        self._sync_offset: float | None = None  # wall - mono, learnt while synced
        self._guess_offset = 0.0  # wall - mono of the unsynchronised clock
        # The offset before the latest step, and the latest reading's mono: reports
        # stamped just before a step reach the pipeline just after it (`to_mono`).
        self._prev_offset: float | None = None
        self._last_mono: float | None = None
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

    def observe(self, mono_s: float, wall_s: float, synced: bool) -> float | None:
        """Learn from one clock reading.

        Returns the offset (wall - mono) to rebase held records with when this reading
        is the first synchronised one (at start, or after a loss of sync): held rows
        left by an earlier process of the same boot are rebased then too.
        """
        offset = wall_s - mono_s
        current = self.best_offset_s
        if (
            self._last_mono is not None
            and abs(offset - current) > self.step_tolerance_s
        ):
            self._prev_offset = current
        self._last_mono = mono_s
        if not synced:
            if self.synced:
                _LOGGER.info("wall clock no longer synchronised: records are held")
            self.synced = False
            self._guess_offset = offset
            return None
        if (
            self.synced
            and self._sync_offset is not None
            and abs(offset - self._sync_offset) > self.step_tolerance_s
        ):
            self.stats.steps += 1
            _LOGGER.info("wall clock stepped by %.3f s", offset - self._sync_offset)
        was_synced = self.synced
        self.synced = True
        self._sync_offset = offset
        self._guess_offset = offset
        if was_synced:
            return None
        self.stats.syncs += 1
        _LOGGER.info("wall clock synchronised: held records are rebased")
        return offset

    def to_mono(self, wall_s: float) -> float:
        """Monotonic time of a report stamped with the wall clock at `wall_s`.

        A report received just before a step is stamped with the old clock but fed
        after the reading that saw the step: of the two offsets, the one that puts
        it nearer the latest reading is right (steps are large, delays are not)."""
        mono = wall_s - self.best_offset_s
        if self._prev_offset is None or self._last_mono is None:
            return mono
        before = wall_s - self._prev_offset
        if abs(before - self._last_mono) < abs(mono - self._last_mono):
            return before
        return mono

    def emit(
        self, records: Iterable[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[Held]]:
        """Records (times in mono) -> (ready records, held records), times in wall."""
        if self.synced and self._sync_offset is not None:
            offset = self._sync_offset
            ready = []
            for rec in records:
                rec["clock"] = "synced"
                ready.append(shift_times(rec, offset))
            return ready, []
        guess = self._guess_offset
        held = []
        for rec in records:
            rec["clock"] = "unsynced"
            held.append(Held(shift_times(rec, guess), guess))
        self.stats.unsynced += len(held)
        return [], held
