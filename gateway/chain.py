"""Pure: may the stay of a new rotating ID continue the stay of an ID that just fell silent?

design.md (Rotating IDs): a Bluezone phone changes its ID every 15 minutes, an
Exposure Notification phone every 10 to 20; a 40-minute bus ride must be one stay
with all its keys. Only evidence from ONE gateway and ONE continuous signal is used;
the aggregator (gateway/aggregate) never offers a pair across gateways, and never a
pair separated by more than `handover_s` (always shorter than the stay gap), so a
chain never spans a gap.

The rules, strongest first. Each link states its evidence and a confidence; a
chain's confidence is the weakest of its links.

| evidence | when | confidence |
|---|---|---|
| `address` | the new ID is first heard from the very address the old one was last heard from (Bluezone Android does not always restart its advertiser with a new address; a GATT-read iPhone keeps its address across the slot change) | 0.95 |
| `slot` | Bluezone: the old ID last heard before a 15-min UTC slot boundary, the new one first heard after it (protocols.md 1.5), within `handover_s`, RSSI within `rssi_db`, no competing candidate | 0.8 |
| `rotation` | Exposure Notification: address and RPI change together (protocols.md 2.1) at no fixed time; new address, within `handover_s`, RSSI within `rssi_db`, no competing candidate | 0.6 |

"No competing candidate": exactly one ID of the family fell silent in the window
before the new one appeared, and exactly one new ID appeared after the old one fell
silent. Two phones rotating within the same half minute at one gateway are left
unchained (counted as `ambiguous`): a wrong chain would merge two people, which is
worse for contact tracing than an unchained stay. The `slot` rule needs the wall
clock; while the clock is unsynchronised it is not used (gateway/clock).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# Formats whose key rotates, and the family a successor must belong to.
ROTATING_FAMILY: Final[dict[str, str]] = {
    "bluezone": "bluezone",
    "gaen": "gaen",
}
BLUEZONE_SLOT_S: Final = 900.0  # protocols.md 1.5: 96 slots a day in v3

CONFIDENCE: Final[dict[str, float]] = {"address": 0.95, "slot": 0.8, "rotation": 0.6}
# A phone switches IDs atomically; reports of the old ID that arrive after the first
# of the new one can only come from reordering in the source (merged scan responses,
# extended reports). Tolerate that much overlap.
OVERLAP_TOLERANCE_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class Ending:
    """The old ID: its last sighting."""

    key: str
    family: str
    last_t: float
    last_addr: str
    rssi_dbm: float  # median of its last few sightings


@dataclass(frozen=True, slots=True)
class Beginning:
    """The new ID: its first sighting(s)."""

    key: str
    family: str
    first_t: float
    first_addr: str
    rssi_dbm: float  # median of its first few sightings


@dataclass(frozen=True, slots=True)
class Link:
    evidence: str
    confidence: float


def family_of(fmt: str) -> str | None:
    return ROTATING_FAMILY.get(fmt)


def in_window(old: Ending, new: Beginning, handover_s: float) -> bool:
    """Can `new` follow `old` in time at all (same family, within the handover)?"""
    if old.family != new.family or old.key == new.key:
        return False
    delta = new.first_t - old.last_t
    return -OVERLAP_TOLERANCE_S <= delta <= handover_s


def crosses_slot(last_wall: float, first_wall: float) -> bool:
    """True if a 15-min UTC slot boundary lies between the two wall-clock instants."""
    return int(first_wall // BLUEZONE_SLOT_S) > int(last_wall // BLUEZONE_SLOT_S)


def decide(
    old: Ending,
    new: Beginning,
    *,
    handover_s: float,
    rssi_db: float,
    competing: bool,
    wall_offset_s: float | None,
) -> Link | None:
    """The link between `old` and `new`, or None when the evidence does not allow it.

    `competing`: another old ID or another new ID of the same family is in the window.
    `wall_offset_s`: add to the stay time to get UTC (None while the clock is unsynced).
    """
    if not in_window(old, new, handover_s):
        return None
    if old.last_addr == new.first_addr:
        # One address is one radio at one instant: competition does not matter.
        return Link("address", CONFIDENCE["address"])
    if competing or abs(old.rssi_dbm - new.rssi_dbm) > rssi_db:
        return None
    if old.family == "bluezone":
        if wall_offset_s is None:
            return None
        if crosses_slot(old.last_t + wall_offset_s, new.first_t + wall_offset_s):
            return Link("slot", CONFIDENCE["slot"])
        return None
    if old.family == "gaen":
        return Link("rotation", CONFIDENCE["rotation"])
    return None
