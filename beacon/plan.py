"""Pure: what the beacon advertises at a given time (one `Advert` per slot).

The advertiser shell and `bluegate-beacon frame` both ask this module, so what
`frame` prints for a time is what the Pi puts on air in that slot.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from beacon import bluezone, frames
from beacon.config import BeaconConfig


@dataclass(frozen=True, slots=True)
class Advert:
    """One advertisement and the window it is valid for.

    `ad` is the AD payload in the layout the scheme's own senders use (Bluezone's
    Android layout for bluezone); `manufacturer_data`, `service_uuids` and
    `service_data` are the same content as BlueZ's LEAdvertisement1 wants it.
    `slot_end` is None for a static identity (iBeacon, Eddystone-UID tags)."""

    key: str
    ad: bytes
    slot: int | None
    slot_start: float | None
    slot_end: float | None
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)
    service_uuids: tuple[str, ...] = ()
    service_data: dict[str, bytes] = field(default_factory=dict)


def bluezone_id_at(
    base_key: bytes, created: dt.date, t: float, slots_per_day: int
) -> tuple[int, bytes]:
    """(slot, 12-byte ID) a Bluezone sender with this base key uses at `t`."""
    day = bluezone.date_of(t)
    days = (day - created).days
    if days < 0:
        raise ValueError(f"no Bluezone ID before the key's date {created.isoformat()}")
    daily = bluezone.daily_key_from_base(base_key, days)
    slot = bluezone.slot_of(t, slots_per_day)
    return slot, bluezone.ids_for_day(daily, slots_per_day)[slot]


def slot_bounds_ms(t: float, slots_per_day: int) -> tuple[float, float]:
    """Slot start and end in Unix seconds, with Bluezone's whole-ms slot length."""
    slot_ms = 86_400_000 // slots_per_day
    day0_ms = bluezone.day_start(t) * 1000
    slot = bluezone.slot_of(t, slots_per_day)
    start_ms = day0_ms + slot * slot_ms
    end_ms = day0_ms + 86_400_000 if slot == slots_per_day - 1 else start_ms + slot_ms
    return start_ms / 1000, end_ms / 1000


def advert_at(
    cfg: BeaconConfig,
    t: float,
    base_key: bytes | None = None,
    created: dt.date | None = None,
) -> Advert:
    """The advertisement of `cfg`'s scheme at Unix time `t`."""
    if cfg.scheme == "bluezone":
        if base_key is None or created is None:
            raise ValueError("the bluezone scheme needs the base key")
        slot, rolling_id = bluezone_id_at(base_key, created, t, cfg.slots_per_day)
        start, end = slot_bounds_ms(t, cfg.slots_per_day)
        return Advert(
            key="bluezone:" + rolling_id.hex(),
            ad=frames.bluezone_android(rolling_id),
            slot=slot,
            slot_start=start,
            slot_end=end,
            manufacturer_data={frames.BLUEZONE_COMPANY: rolling_id},
            service_uuids=(f"{frames.BLUEZONE_UUID16:04x}",),
        )
    if cfg.scheme == "ibeacon":
        ib = cfg.ibeacon
        assert ib is not None  # BeaconConfig.check
        proximity = uuid.UUID(ib.uuid)
        ad = frames.ibeacon(proximity, ib.major, ib.minor, ib.measured_power_dbm)
        body = ad[3 + 4 :]  # after Flags and the mfr AD header + company ID
        return Advert(
            key=f"ibeacon:{proximity}:{ib.major}:{ib.minor}",
            ad=ad,
            slot=None,
            slot_start=None,
            slot_end=None,
            manufacturer_data={frames.APPLE_COMPANY: body},
        )
    ed = cfg.eddystone
    assert ed is not None  # BeaconConfig.check
    namespace = bytes.fromhex(ed.namespace)
    instance = bytes.fromhex(ed.instance)
    ad = frames.eddystone_uid(namespace, instance, ed.tx_power_0m_dbm)
    service = dict(frames.split_ad(ad))[frames.AD_SERVICE_DATA16][2:]
    uuid16 = f"{frames.EDDYSTONE_UUID16:04x}"
    return Advert(
        key=f"eddystone-uid:{namespace.hex()}:{instance.hex()}",
        ad=ad,
        slot=None,
        slot_start=None,
        slot_end=None,
        service_uuids=(uuid16,),
        service_data={uuid16: service},
    )
