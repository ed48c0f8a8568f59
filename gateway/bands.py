"""Pure: proximity bands of a received signal strength (docs/proximity.md).

A band is a coarse class of the *adjusted* RSSI, never a distance in metres:

    adjusted_dbm = rssi_dbm + rssi_offset_db (this receiver) + format_offset_db[format]

`immediate` >= immediate_dbm > `near` >= near_dbm > `far`. The per-gateway offset
corrects the receiver (a Pi 3, a Pi 4 or a USB dongle with its own antenna, the
unit's mounting); the per-format offset corrects what the sender transmits (an
Exposure Notification phone advertises at TX_POWER_LOW, a worker tag at its
configured power). The defaults were chosen on real Raspberry Pi receiver data by
tools/calibrate_bands.py; docs/proximity.md has the precision and recall they give
and what RSSI cannot tell.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from gateway.config import BandsConfig

_LOGGER = logging.getLogger(__name__)

Band = Literal["immediate", "near", "far"]
BANDS: Final[tuple[Band, ...]] = ("immediate", "near", "far")
IMMEDIATE: Final = 0
NEAR: Final = 1
FAR: Final = 2

# The distance classes the calibration scores against (GAEN's own wording, and the
# classes of the Lanfer et al. data set): immediate < 1.5 m <= near <= 3 m < far.
IMMEDIATE_MAX_M: Final = 1.5
NEAR_MAX_M: Final = 3.0

# Defaults chosen by tools/calibrate_bands.py on the Pi-receiver data (NIST Pi 3 to
# Pi 3, Lanfer et al. Pi 4 receiver); tests/test_calibration.py re-derives them.
DEFAULT_IMMEDIATE_DBM: Final = -49.0
DEFAULT_NEAR_DBM: Final = -65.0


def distance_band(distance_m: float) -> int:
    """The ground-truth band index of a measured distance."""
    if distance_m < IMMEDIATE_MAX_M:
        return IMMEDIATE
    if distance_m <= NEAR_MAX_M:
        return NEAR
    return FAR


@dataclass(frozen=True, slots=True)
class Bands:
    """Thresholds and offsets; `index(rssi, fmt)` is on the per-sighting hot path."""

    immediate_dbm: float = DEFAULT_IMMEDIATE_DBM
    near_dbm: float = DEFAULT_NEAR_DBM
    rssi_offset_db: float = 0.0
    format_offset_db: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.near_dbm > self.immediate_dbm:
            raise ValueError("near_dbm must not be above immediate_dbm")

    @classmethod
    def from_config(cls, cfg: BandsConfig) -> Bands:
        return cls(
            immediate_dbm=cfg.immediate_dbm,
            near_dbm=cfg.near_dbm,
            rssi_offset_db=cfg.rssi_offset_db,
            format_offset_db=dict(cfg.format_offset_db),
        )

    def offset_db(self, fmt: str) -> float:
        """Total offset for a format at this receiver (added to the raw RSSI)."""
        return self.rssi_offset_db + self.format_offset_db.get(fmt, 0.0)

    def adjusted(self, rssi_dbm: float, fmt: str) -> float:
        return rssi_dbm + self.offset_db(fmt)

    def index_adjusted(self, adjusted_dbm: float) -> int:
        if adjusted_dbm >= self.immediate_dbm:
            return IMMEDIATE
        if adjusted_dbm >= self.near_dbm:
            return NEAR
        return FAR

    def index(self, rssi_dbm: float, fmt: str) -> int:
        return self.index_adjusted(rssi_dbm + self.offset_db(fmt))

    def band(self, rssi_dbm: float, fmt: str) -> Band:
        return BANDS[self.index(rssi_dbm, fmt)]
