"""Pure: the aggregation rules each zone kind starts from (design.md, Zone kinds).

Every value can be overridden in the unit's `aggregation:` section; these are the
defaults when it says nothing. Why each number:

* gap_s: a Bluezone phone advertises 15 s on / 15 s off (protocols.md 1.3), and a
  new slot's ID may appear up to ~30 s late; a scanner also misses advertisements
  (Wi-Fi coexistence, bodies). 60 s tolerates losing one whole "on" window between
  two "off" windows (15 + 15 + 15 s) with margin. Exposure Notification phones
  advertise every ~250 ms but Android may pause advertising in Doze, hence the
  longer dormitory gap (phones lie still on a bed for hours, body-shadowed).
* max_record_s: long stays are split into consecutive records so that central sees
  a dormitory night or a bus shift while it is still going on, and a power cut loses
  at most one unfinished record per person.
* handover_s: the longest silence across an ID change that still counts as one
  continuous signal (Bluezone re-reads its ID at each advertising restart: <= 30 s
  after the slot boundary, plus one missed "on" window). Always < gap_s.
* min_stay_s / min_rssi_dbm / min_heard_ratio: who counts as being *in* the zone.
  Zero / None for rooms. A bus stops at roadsides: someone waiting at the stop is
  heard for the minute or two the bus stands there, through the cabin wall. A rider
  is heard for the whole leg: so on a bus a stay must last >= 180 s, its median RSSI
  must reach -85 dBm (inside the metal cabin, not through it), and it must be heard in
  >= 50 % of its 20-s windows (persistence while the bus moves; a passer-by walking
  along the stopped bus is heard in bursts). Limits: a person who stands next to a bus
  stopped for more than 3 minutes, close to its door, is indistinguishable from a
  rider by radio alone; so is a rider who boards and leaves within 3 minutes.
* A `yard` is open: a faint phone 30 m away is not sharing the space, so its stays
  need the signal to reach -85 dBm and last 30 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from gateway.config import AggregationConfig, ZoneKind


@dataclass(frozen=True, slots=True)
class ZoneRules:
    gap_s: float
    max_record_s: float
    handover_s: float
    min_stay_s: float = 0.0
    min_rssi_dbm: float | None = None
    min_heard_ratio: float = 0.0
    gate: bool = False  # gate passages are decided at `entrance` units

    def __post_init__(self) -> None:
        if not 0 < self.handover_s < self.gap_s:
            raise ValueError("handover_s must be > 0 and shorter than gap_s")
        if self.max_record_s <= self.gap_s:
            raise ValueError("max_record_s must be longer than gap_s")


ZONE_DEFAULTS: Final[dict[str, ZoneRules]] = {
    "shift_room": ZoneRules(gap_s=60.0, max_record_s=1800.0, handover_s=35.0),
    "dormitory": ZoneRules(gap_s=180.0, max_record_s=3600.0, handover_s=35.0),
    "bus": ZoneRules(
        gap_s=60.0,
        max_record_s=1800.0,
        handover_s=35.0,
        min_stay_s=180.0,
        min_rssi_dbm=-85.0,
        min_heard_ratio=0.5,
    ),
    "entrance": ZoneRules(gap_s=45.0, max_record_s=900.0, handover_s=30.0, gate=True),
    "yard": ZoneRules(
        gap_s=90.0,
        max_record_s=1800.0,
        handover_s=35.0,
        min_stay_s=30.0,
        min_rssi_dbm=-85.0,
    ),
}

# The window of min_heard_ratio: a stay is "heard" in a 20-s window if any of its
# advertisements arrived in it (longer than Bluezone's 15-s "off" half, so a
# Bluezone rider is heard in every window).
HEARD_WINDOW_S: Final = 20.0


def rules_for(kind: ZoneKind | str, agg: AggregationConfig | None = None) -> ZoneRules:
    """The zone kind's defaults with the unit's `aggregation:` overrides applied."""
    base = ZONE_DEFAULTS[kind]
    if agg is None:
        return base
    gap_s = agg.gap_s if agg.gap_s is not None else base.gap_s
    handover_s = agg.handover_s if agg.handover_s is not None else base.handover_s
    # An overridden gap shorter than the default handover keeps the invariant.
    handover_s = min(handover_s, gap_s * 0.75)
    max_record_s = (
        agg.max_record_s if agg.max_record_s is not None else base.max_record_s
    )
    return ZoneRules(
        gap_s=gap_s,
        max_record_s=max(max_record_s, gap_s * 2),
        handover_s=handover_s,
        min_stay_s=agg.min_stay_s if agg.min_stay_s is not None else base.min_stay_s,
        min_rssi_dbm=agg.min_rssi_dbm
        if agg.min_rssi_dbm is not None
        else base.min_rssi_dbm,
        min_heard_ratio=(
            agg.min_heard_ratio
            if agg.min_heard_ratio is not None
            else base.min_heard_ratio
        ),
        gate=base.gate,
    )
