"""A real dbus-daemon for tests, and a test service that speaks BlueZ's advertising
interface on it (org.bluez.LEAdvertisingManager1 on /org/bluez/hci0, plus the
ObjectManager tree clients read the adapter from).

Like bluetoothd, RegisterAdvertisement reads the advertisement's properties back
from the caller's exported object (Properties.GetAll) before it replies, and
builds the advertising data the way BlueZ's bt_ad_generate + the kernel do (Flags
first, then service UUIDs, manufacturer data, service data). Like the kernel, every
non-connectable ("broadcast") registration gets a fresh non-resolvable private
address. Only the radio is fake.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

DBUS_DAEMON = shutil.which("dbus-daemon") or "/usr/bin/dbus-daemon"
ADV_MANAGER = "org.bluez.LEAdvertisingManager1"
ADV_IFACE = "org.bluez.LEAdvertisement1"

CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    <allow user="*"/>
  </policy>
</busconfig>
"""


class DbusDaemon:
    """Debian's dbus-daemon on a private socket, started and stopped by the test."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.socket = workdir / "bus"
        self.address = f"unix:path={self.socket}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DbusDaemon:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "bus.conf"
        conf.write_text(CONFIG.format(socket=self.socket))
        self.proc = subprocess.Popen(
            [DBUS_DAEMON, f"--config-file={conf}", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if not line:
            raise RuntimeError(
                self.proc.stderr.read().decode() if self.proc.stderr else ""
            )
        deadline = time.monotonic() + 5
        while not self.socket.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()
            self.proc = None


@dataclass
class Registration:
    sender: str
    path: str
    props: dict[str, Any]
    address: str
    ad: bytes


@dataclass
class FakeBluez:
    bus_address: str
    adapter: str = "hci0"
    max_instances: int = 5
    powered: bool = True
    adapter_address: str = "B8:27:EB:00:00:01"
    refuse: str | None = None  # an org.bluez.Error name to answer Register with
    bus: MessageBus | None = None
    active: dict[tuple[str, str], Registration] = field(default_factory=dict)
    events: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def adapter_path(self) -> str:
        return f"/org/bluez/{self.adapter}"

    async def start(self) -> FakeBluez:
        self.bus = await MessageBus(bus_address=self.bus_address).connect()
        self.bus.add_message_handler(self._handle)
        await self.bus.request_name("org.bluez")
        return self

    async def stop(self) -> None:
        """bluetoothd exits: its name leaves the bus, registrations die with it."""
        if self.bus is not None:
            self.bus.disconnect()
            await self.bus.wait_for_disconnect()
            self.bus = None
        self.active.clear()

    # -- D-Bus

    def _reply(
        self, msg: Message, signature: str = "", body: list[Any] | None = None
    ) -> Message:
        return Message.new_method_return(msg, signature, body or [])

    def _handle(self, msg: Message) -> Message | bool | None:
        if msg.message_type != MessageType.METHOD_CALL:
            return None
        if msg.path == "/" and msg.member == "GetManagedObjects":
            return self._reply(msg, "a{oa{sa{sv}}}", [self._objects()])
        if msg.path == self.adapter_path and msg.interface == ADV_MANAGER:
            if msg.member == "RegisterAdvertisement":
                asyncio.get_running_loop().create_task(self._register(msg))
                return True
            if msg.member == "UnregisterAdvertisement":
                reg = self.active.pop((msg.sender, msg.body[0]), None)
                if reg is None:
                    return Message.new_error(
                        msg, "org.bluez.Error.DoesNotExist", "Does Not Exist"
                    )
                self.events.append(("unregister", msg.body[0]))
                return self._reply(msg)
        return Message.new_error(
            msg, "org.freedesktop.DBus.Error.UnknownMethod", f"no {msg.member} here"
        )

    def _objects(self) -> dict[str, Any]:
        return {
            "/org/bluez": {},
            self.adapter_path: {
                "org.bluez.Adapter1": {
                    "Address": Variant("s", self.adapter_address),
                    "Powered": Variant("b", self.powered),
                },
                ADV_MANAGER: {
                    "ActiveInstances": Variant("y", len(self.active)),
                    "SupportedInstances": Variant(
                        "y", self.max_instances - len(self.active)
                    ),
                    "SupportedIncludes": Variant(
                        "as", ["tx-power", "appearance", "local-name"]
                    ),
                },
            },
        }

    async def _register(self, msg: Message) -> None:
        assert self.bus is not None
        path = msg.body[0]
        if self.refuse:
            self.bus.send(Message.new_error(msg, self.refuse, "refused by the test"))
            return
        if (msg.sender, path) in self.active:
            self.bus.send(
                Message.new_error(
                    msg, "org.bluez.Error.AlreadyExists", "Already Exists"
                )
            )
            return
        if len(self.active) >= self.max_instances:
            self.bus.send(
                Message.new_error(
                    msg,
                    "org.bluez.Error.NotPermitted",
                    "Maximum advertisements reached",
                )
            )
            return
        # As bluetoothd: read the object's properties back from the caller.
        reply = await self.bus.call(
            Message(
                destination=msg.sender,
                path=path,
                interface="org.freedesktop.DBus.Properties",
                member="GetAll",
                signature="s",
                body=[ADV_IFACE],
            )
        )
        if reply is None or reply.message_type == MessageType.ERROR:
            self.bus.send(
                Message.new_error(
                    msg, "org.bluez.Error.Failed", "Failed to parse advertisement."
                )
            )
            return
        props = {k: v.value for k, v in reply.body[0].items()}
        if props.get("Type") not in ("broadcast", "peripheral"):
            self.bus.send(
                Message.new_error(
                    msg, "org.bluez.Error.Failed", "Failed to parse advertisement."
                )
            )
            return
        ad = self._serialise(props)
        if len(ad) > 31:
            self.bus.send(
                Message.new_error(
                    msg, "org.bluez.Error.InvalidLength", "Advertising data too long."
                )
            )
            return
        if props["Type"] == "broadcast":
            nrpa = bytearray(secrets.token_bytes(6))
            nrpa[0] &= 0x3F  # top bits 00: non-resolvable private address
            address = ":".join(f"{b:02X}" for b in nrpa)
        else:
            address = self.adapter_address
        reg = Registration(msg.sender, path, props, address, ad)
        self.active[(msg.sender, path)] = reg
        self.events.append(("register", reg))
        self.bus.send(self._reply(msg))

    @staticmethod
    def _serialise(props: dict[str, Any]) -> bytes:
        """Advertising data as bluetoothd + the kernel build it (src/shared/ad.c)."""
        out = b""
        if props.get("Discoverable"):
            out += bytes([2, 0x01, 0x06])
        uuids = props.get("ServiceUUIDs") or []
        if uuids:
            data = b"".join(struct.pack("<H", int(u, 16)) for u in uuids)
            out += bytes([len(data) + 1, 0x03]) + data
        for company, value in (props.get("ManufacturerData") or {}).items():
            data = struct.pack("<H", company) + bytes(value.value)
            out += bytes([len(data) + 1, 0xFF]) + data
        for uuid16, value in (props.get("ServiceData") or {}).items():
            data = struct.pack("<H", int(uuid16, 16)) + bytes(value.value)
            out += bytes([len(data) + 1, 0x16]) + data
        return out


def env_without_session_bus() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    return env
