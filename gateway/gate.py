"""Pure: gate passages at `entrance` units, with hysteresis and dwell.

The rule (one unit, `gate.role: single`), per identity (a presence stay, so a
phone's chained rotating IDs are one identity):

1. The signal is smoothed: the median of its last 3 RSSI readings (one reflection
   or one body-blocked packet does not move it).
2. An identity is ARMED when first heard. A passage is counted when the smoothed
   RSSI of an ARMED identity reaches `enter_dbm`; the identity is then AT GATE and
   the `gate` record is stamped with that sighting's time.
3. It re-arms only after being AWAY for `dwell_s` without interruption: smoothed
   RSSI below `exit_dbm` (hysteresis: between exit and enter nothing changes), or
   not heard at all. A worker loitering at the gate, drifting between -62 and
   -78 dBm, is counted once however long he stays; one who steps out of range for
   less than `dwell_s` and comes back is not counted again.
4. Direction, single unit: one antenna cannot tell which side of the gate a phone
   is on. The unit alternates `in`, `out`, `in`, ... per identity, remembered for
   `direction_memory_s` (a shift plus margin). That is right for worker tags
   (fixed iBeacon/Eddystone keys) that pass twice a day; for phones it is only a
   guess, because their IDs rotate every 10-20 minutes and a new ID starts at `in`.
   Records say how the direction was decided: `"basis": "alternate"`.
5. A pair of units, one inside and one outside the gate (`role: inside|outside`),
   each count passages the same way; `pair_direction()` orders the two units'
   passages of one identity: outside then inside within `pair_window_s` is `in`,
   inside then outside is `out`. Each unit marks its records with its role so that
   central (or a unit hearing both antennas) can pair them; a unit never sees the
   other unit's radio, so the edge record itself keeps `"basis": "alternate"`.

Limits: a Bluezone phone advertises 15 s on / 15 s off, so a brisk walk through
the gate during its "off" half is not heard at all; an iPhone in the background
may not be heard for minutes. Gate counts of phones are therefore lower bounds;
worker tags advertising every 100-1000 ms are counted reliably.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Final, Literal

_LOGGER = logging.getLogger(__name__)

SMOOTH_N: Final = 3
Direction = Literal["in", "out"]


@dataclass(frozen=True, slots=True)
class GateRules:
    enter_dbm: float = -60.0
    exit_dbm: float = -75.0
    dwell_s: float = 60.0
    absent_s: float = 600.0
    direction_memory_s: float = 57_600.0
    role: str = "single"

    def __post_init__(self) -> None:
        if self.exit_dbm > self.enter_dbm:
            raise ValueError("exit_dbm must not be above enter_dbm")


class _Track:
    __slots__ = ("at_gate", "away_since", "last_t", "recent")

    def __init__(self) -> None:
        self.recent: deque[int] = deque(maxlen=SMOOTH_N)
        self.at_gate = False
        self.away_since: float | None = None
        self.last_t = 0.0


class GateCounter:
    """Sightings of one entrance unit -> `gate` records (times in pipeline time)."""

    def __init__(self, gateway: str, rules: GateRules) -> None:
        self.gateway = gateway
        self.rules = rules
        self._tracks: OrderedDict[str, _Track] = OrderedDict()
        # identity -> (last direction, when): bounded by direction_memory_s.
        self._last_dir: OrderedDict[str, tuple[Direction, float]] = OrderedDict()
        self.passages = 0

    @property
    def tracked(self) -> int:
        return len(self._tracks)

    def add(self, t: float, identity: str, rssi_dbm: float) -> dict[str, Any] | None:
        """One sighting (RSSI already offset-corrected); a gate record or None."""
        rules = self.rules
        track = self._tracks.get(identity)
        if track is None:
            track = self._tracks[identity] = _Track()
        else:
            self._tracks.move_to_end(identity)
            # Unheard time counts as away (step 3).
            if (
                track.at_gate
                and track.away_since is None
                and t - track.last_t >= rules.dwell_s
            ) or (
                track.at_gate
                and track.away_since is not None
                and t - track.away_since >= rules.dwell_s
            ):
                track.at_gate = False
        track.last_t = t
        track.recent.append(int(rssi_dbm))
        smooth = sorted(track.recent)[len(track.recent) // 2]
        if track.at_gate:
            if smooth < rules.exit_dbm:
                if track.away_since is None:
                    track.away_since = t
                elif t - track.away_since >= rules.dwell_s:
                    track.at_gate = False
                    track.away_since = None
            else:
                track.away_since = None
            if track.at_gate:
                return None
        if smooth < rules.enter_dbm:
            return None
        track.at_gate = True
        track.away_since = None
        return self._passage(t, identity)

    def _passage(self, t: float, identity: str) -> dict[str, Any]:
        prev = self._last_dir.pop(identity, None)
        direction: Direction = "in"
        if prev is not None and t - prev[1] <= self.rules.direction_memory_s:
            direction = "out" if prev[0] == "in" else "in"
        self._last_dir[identity] = (direction, t)
        self.passages += 1
        return {
            "kind": "gate",
            "gateway": self.gateway,
            "key": identity,
            "t": t,
            "direction": direction,
            "basis": "alternate",
            "role": self.rules.role,
        }

    def rekey(self, old: str, new: str) -> None:
        """A chain made `new` the identity of what was tracked as `old`."""
        track = self._tracks.pop(old, None)
        if track is not None and new not in self._tracks:
            self._tracks[new] = track
        d = self._last_dir.pop(old, None)
        if d is not None and new not in self._last_dir:
            self._last_dir[new] = d

    def advance(self, now: float) -> None:
        """Forget identities unheard for absent_s and directions past their memory."""
        horizon = now - self.rules.absent_s
        tracks = self._tracks
        while tracks:
            ident, track = next(iter(tracks.items()))
            if track.last_t > horizon:
                break
            del tracks[ident]
        dir_horizon = now - self.rules.direction_memory_s
        dirs = self._last_dir
        while dirs:
            ident, (_, t) = next(iter(dirs.items()))
            if t > dir_horizon:
                break
            del dirs[ident]


def pair_direction(
    outside_t: float, inside_t: float, pair_window_s: float = 30.0
) -> Direction | None:
    """Direction of one passage seen by an outside and an inside unit, or None."""
    delta = inside_t - outside_t
    if abs(delta) > pair_window_s or delta == 0:
        return None
    return "in" if delta > 0 else "out"
