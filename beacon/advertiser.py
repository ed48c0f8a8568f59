"""Shell: advertising through BlueZ's D-Bus API (org.bluez.LEAdvertisingManager1).

The only beacon module that talks to the outside world's Bluetooth stack. It uses
dbus-fast (asyncio) and never touches HCI directly, so bluetoothd stays the one
owner of the controller's advertising state and the gateway's scanning on the same
adapter (bluepy-helper) keeps working: Linux multiplexes scanning and advertising
on one controller (an LE controller may scan while it sends non-connectable
advertisements; the Core spec's permitted state combinations).

How one advertisement is shown (BlueZ doc/advertising-api.txt):

1. export an `org.bluez.LEAdvertisement1` object on our connection (Type,
   ManufacturerData, ServiceUUIDs, ServiceData, Includes, Discoverable, and the
   interval and TX power where BlueZ supports them);
2. call `RegisterAdvertisement(path, {})` on `/org/bluez/<adapter>`: bluetoothd reads
   the properties back from our object (Properties.GetAll) before it answers;
3. at the next slot boundary: `UnregisterAdvertisement` and register a NEW object
   with the new ID.

Address rotation. With Type "broadcast" (non-connectable, the default) the Linux
kernel gives each advertising instance it (re)starts a fresh non-resolvable private
address (hci_get_random_address with require_privacy and no RPA), so unregister +
re-register at the slot boundary changes the address together with the ID, as
Bluezone and EN phones do. With Type "peripheral" (connectable) the kernel uses the
adapter's identity address unless LE privacy is enabled (`Privacy = device` in
/etc/bluetooth/main.conf or `btmgmt privacy on`), and then rotates a resolvable
private address on its own timer (15 min by default), not on our slot boundary.
The test suite checks the D-Bus side (a new registration per slot against a test
service speaking BlueZ's interface); what address the controller then uses is the
kernel's, and is verified on hardware with `btmon`, not here.

`MinInterval`/`MaxInterval`/`TxPower` are experimental properties (BlueZ >= 5.56
with `-E`); older bluetoothd ignores them and uses its default interval.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Annotated, Any

from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusSignature
from dbus_fast.constants import PropertyAccess
from dbus_fast.errors import DBusError
from dbus_fast.service import ServiceInterface, dbus_property, method

from beacon.config import AdvertisingConfig
from beacon.plan import Advert
from gateway.errors import BlueGateError

_LOGGER = logging.getLogger(__name__)

BLUEZ = "org.bluez"
ADV_MANAGER = "org.bluez.LEAdvertisingManager1"
ADV_IFACE = "org.bluez.LEAdvertisement1"
OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"
CALL_TIMEOUT_S = 10.0

Nothing = Annotated[None, DBusSignature("")]
Str = Annotated[str, DBusSignature("s")]
StrList = Annotated[list[str], DBusSignature("as")]
Bool = Annotated[bool, DBusSignature("b")]
UInt32 = Annotated[int, DBusSignature("u")]
Int16 = Annotated[int, DBusSignature("n")]
MfrDict = Annotated[dict[int, Variant], DBusSignature("a{qv}")]
SvcDict = Annotated[dict[str, Variant], DBusSignature("a{sv}")]


class AdvertiseError(BlueGateError):
    """BlueZ refused or could not be reached; the daemon retries."""


@dataclass(frozen=True, slots=True)
class AdProperties:
    """What one LEAdvertisement1 object exposes."""

    type: str
    manufacturer_data: dict[int, bytes]
    service_uuids: tuple[str, ...]
    service_data: dict[str, bytes]
    interval_ms: int
    tx_power_dbm: int | None
    discoverable: bool = True


def properties_for(advert: Advert, cfg: AdvertisingConfig) -> AdProperties:
    return AdProperties(
        type=cfg.type,
        manufacturer_data=dict(advert.manufacturer_data),
        service_uuids=advert.service_uuids,
        service_data=dict(advert.service_data),
        interval_ms=cfg.interval_ms,
        tx_power_dbm=cfg.tx_power_dbm,
    )


class Advertisement(ServiceInterface):
    """org.bluez.LEAdvertisement1 (read-only properties, Release)."""

    def __init__(self, props: AdProperties) -> None:
        super().__init__(ADV_IFACE)
        self.props = props
        self.released = False

    @method()
    def Release(self) -> Nothing:
        # bluetoothd dropped us (adapter powered off or removed): re-register later.
        self.released = True
        _LOGGER.warning("BlueZ released the advertisement")

    @dbus_property(access=PropertyAccess.READ)
    def Type(self) -> Str:
        return self.props.type

    @dbus_property(access=PropertyAccess.READ)
    def ManufacturerData(self) -> MfrDict:
        return {k: Variant("ay", v) for k, v in self.props.manufacturer_data.items()}

    @dbus_property(access=PropertyAccess.READ)
    def ServiceUUIDs(self) -> StrList:
        return list(self.props.service_uuids)

    @dbus_property(access=PropertyAccess.READ)
    def ServiceData(self) -> SvcDict:
        return {k: Variant("ay", v) for k, v in self.props.service_data.items()}

    @dbus_property(access=PropertyAccess.READ)
    def Includes(self) -> StrList:
        # No local name, appearance or TX-power AD: Bluezone's layout has none
        # (protocols.md 1.3), and the 31 bytes are for the ID.
        return []

    @dbus_property(access=PropertyAccess.READ)
    def Discoverable(self) -> Bool:
        # LE General Discoverable in Flags: iOS does not report advertisers without it.
        return self.props.discoverable

    @dbus_property(access=PropertyAccess.READ)
    def MinInterval(self) -> UInt32:
        return self.props.interval_ms

    @dbus_property(access=PropertyAccess.READ)
    def MaxInterval(self) -> UInt32:
        return self.props.interval_ms


class AdvertisementWithTxPower(Advertisement):
    """The same, plus a requested TX power (only when configured)."""

    @dbus_property(access=PropertyAccess.READ)
    def TxPower(self) -> Int16:
        return self.props.tx_power_dbm or 0


class BluezAdvertiser:
    """Shows one advertisement at a time on `adapter`; a new object per `show`."""

    def __init__(
        self,
        adapter: str,
        cfg: AdvertisingConfig,
        *,
        bus_address: str | None = None,
        path_prefix: str = "/org/bluegate/beacon",
    ) -> None:
        self.adapter = adapter
        self.adapter_path = f"/org/bluez/{adapter}"
        self.cfg = cfg
        self.bus_address = bus_address
        self.path_prefix = path_prefix
        self.bus: MessageBus | None = None
        self.current: tuple[str, Advertisement, Advert] | None = None
        self.registrations = 0
        self.failures = 0
        self.last_error: str | None = None
        self._serial = 0
        self._bluez_restarted = False

    # -- connection

    async def connect(self) -> None:
        if self.bus is not None and self.bus.connected:
            return
        try:
            if self.bus_address is not None:
                bus = MessageBus(bus_address=self.bus_address)
            else:
                bus = MessageBus(bus_type=BusType.SYSTEM)
            self.bus = await asyncio.wait_for(bus.connect(), CALL_TIMEOUT_S)
        except (OSError, DBusError, TimeoutError, EOFError) as exc:
            self.bus = None
            raise AdvertiseError(
                f"cannot connect to the D-Bus system bus: {exc}"
            ) from None
        self.bus.add_message_handler(self._on_signal)
        await self._call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "AddMatch",
            "s",
            [
                "type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged',"
                f"arg0='{BLUEZ}'"
            ],
        )

    def _on_signal(self, msg: Message) -> bool:
        if (
            msg.message_type == MessageType.SIGNAL
            and msg.member == "NameOwnerChanged"
            and msg.body
            and msg.body[0] == BLUEZ
        ):
            # bluetoothd restarted or stopped: our registration died with it.
            _LOGGER.warning("bluetoothd left the bus; will re-register")
            self._bluez_restarted = True
        return False

    async def check_adapter(self) -> dict[str, Any]:
        """The adapter's interfaces from BlueZ's object tree; errors say what to fix."""
        reply = await self._call(
            BLUEZ, "/", OBJECT_MANAGER, "GetManagedObjects", "", []
        )
        objects: dict[str, dict[str, dict[str, Variant]]] = reply.body[0]
        interfaces = objects.get(self.adapter_path)
        if interfaces is None:
            raise AdvertiseError(f"BlueZ has no adapter {self.adapter}")
        if ADV_MANAGER not in interfaces:
            raise AdvertiseError(
                f"{self.adapter} has no LE advertising manager (not an LE controller?)"
            )
        adapter = interfaces.get("org.bluez.Adapter1", {})
        powered = adapter.get("Powered")
        if powered is not None and not powered.value:
            raise AdvertiseError(
                f"{self.adapter} is powered off (bluetoothctl power on)"
            )
        manager = interfaces[ADV_MANAGER]
        return {k: v.value for k, v in manager.items()}

    # -- advertising

    @property
    def registered(self) -> bool:
        return (
            self.current is not None
            and not self.current[1].released
            and not self._bluez_restarted
            and self.bus is not None
            and self.bus.connected
        )

    def showing(self) -> Advert | None:
        return self.current[2] if self.registered and self.current else None

    async def show(self, advert: Advert) -> None:
        """Replace whatever is advertised by `advert` (new object, new address)."""
        await self.connect()
        assert self.bus is not None
        await self.withdraw()
        self._serial += 1
        path = f"{self.path_prefix}/adv{self._serial}"
        props = properties_for(advert, self.cfg)
        obj: Advertisement = (
            AdvertisementWithTxPower(props)
            if props.tx_power_dbm is not None
            else Advertisement(props)
        )
        self.bus.export(path, obj)
        self._bluez_restarted = False
        try:
            await self._call(
                BLUEZ, self.adapter_path, ADV_MANAGER, "RegisterAdvertisement",
                "oa{sv}", [path, {}],
            )  # fmt: skip
        except AdvertiseError:
            self.bus.unexport(path, obj)
            self.failures += 1
            raise
        self.current = (path, obj, advert)
        self.registrations += 1
        _LOGGER.info(
            "advertising slot %s until %s (%s)", advert.slot, advert.slot_end, path
        )
        _LOGGER.debug("advertising %s", advert.key)

    async def withdraw(self) -> None:
        """Unregister the current advertisement (if BlueZ still has it)."""
        if self.current is None or self.bus is None:
            return
        path, obj, _ = self.current
        self.current = None
        try:
            if not obj.released and not self._bluez_restarted and self.bus.connected:
                await self._call(
                    BLUEZ, self.adapter_path, ADV_MANAGER, "UnregisterAdvertisement",
                    "o", [path],
                )  # fmt: skip
        except AdvertiseError as exc:
            # Already gone (bluetoothd restarted, adapter reset): nothing to undo.
            _LOGGER.info("unregister %s: %s", path, exc)
        finally:
            if self.bus.connected:
                self.bus.unexport(path, obj)

    async def close(self) -> None:
        try:
            await self.withdraw()
        finally:
            if self.bus is not None:
                self.bus.disconnect()
                self.bus = None

    async def _call(
        self,
        destination: str,
        path: str,
        interface: str,
        member: str,
        signature: str,
        body: list[Any],
    ) -> Message:
        if self.bus is None:
            raise AdvertiseError("not connected to D-Bus")
        msg = Message(
            destination=destination,
            path=path,
            interface=interface,
            member=member,
            signature=signature,
            body=body,
        )
        try:
            reply = await asyncio.wait_for(self.bus.call(msg), CALL_TIMEOUT_S)
        except TimeoutError:
            self.last_error = f"{member}: no answer in {CALL_TIMEOUT_S:.0f}s"
            raise AdvertiseError(self.last_error) from None
        except (OSError, EOFError, DBusError) as exc:
            self.last_error = f"{member}: {exc}"
            raise AdvertiseError(self.last_error) from None
        if reply is None:
            raise AdvertiseError(f"{member}: no reply")
        if reply.message_type == MessageType.ERROR:
            detail = reply.body[0] if reply.body else ""
            self.last_error = f"{member}: {reply.error_name} {detail}".strip()
            raise AdvertiseError(self.last_error)
        return reply
