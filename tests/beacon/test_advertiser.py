"""The advertiser's BlueZ calls over a real D-Bus (Debian's dbus-daemon, started
here) against a test service implementing BlueZ's advertising interface. The
daemon is driven across slot boundaries in virtual time; at each slot the data
BlueZ read back from our object must decode (gateway decoder) to the beacon's
Bluezone ID for that slot, with a fresh registration and a fresh address."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from beacon import bluezone, keystore
from beacon.advertiser import AdvertiseError, BluezAdvertiser
from beacon.app import FAIL_GIVE_UP_S, BeaconApp, assess
from beacon.config import AdvertisingConfig, BeaconConfig, load_beacon_config
from gateway.config import ZoneConfig
from gateway.decoders import decode_ad
from gateway.systemd import Notifier
from tests.beacon.fake_bluez import DbusDaemon, FakeBluez
from tests.beacon.helpers import REPO, beacon_yaml

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 11, 23)
T_START = (
    bluezone.midnight_of(DAY) + 10 * 3600 + 14 * 60 + 50
)  # 10:14:50, slot 40 ends soon


@pytest.fixture
def dbus(tmp_path: Path) -> Iterator[DbusDaemon]:
    daemon = DbusDaemon(tmp_path / "dbus").start()
    try:
        yield daemon
    finally:
        daemon.stop()


class VirtualClock:
    """Wall and monotonic time that advance only when the daemon sleeps."""

    def __init__(self, start: float, stop_at: float) -> None:
        self.t = start
        self.m = 10_000.0
        self.stop_at = stop_at
        self.app: BeaconApp | None = None
        self.hooks: list[tuple[float, Callable[[], Awaitable[None]]]] = []
        self.sleeps = 0

    def wall(self) -> float:
        return self.t

    def mono(self) -> float:
        return self.m

    async def sleep(self, seconds: float, wake: asyncio.Event) -> None:
        self.sleeps += 1
        target = self.t + max(0.0, seconds)
        if self.hooks and self.hooks[0][0] <= target:
            at, hook = self.hooks.pop(0)
            step = max(0.0, at - self.t)
            self.t += step
            self.m += step
            await hook()
        else:
            self.m += target - self.t
            self.t = target
        await asyncio.sleep(0)
        if self.t >= self.stop_at and self.app is not None:
            self.app.request_stop()


def config(key_file: Path, **adv: object) -> BeaconConfig:
    return BeaconConfig(
        "mine-a", "room-a-beacon", ZoneConfig("room-a", "shift_room"),
        key_file=str(key_file), advertising=AdvertisingConfig(**adv),  # type: ignore[arg-type]
    )  # fmt: skip


def expected_id(key: keystore.BaseKey, t: float) -> str:
    daily = key.daily_key(bluezone.date_of(t))
    return "bluezone:" + bluezone.ids_for_day(daily)[bluezone.slot_of(t)].hex()


def registrations(fake: FakeBluez) -> list:
    return [e[1] for e in fake.events if e[0] == "register"]


def run(coro: Awaitable[object]) -> object:
    return asyncio.run(asyncio.wait_for(coro, 30))  # type: ignore[arg-type]


def test_new_id_and_address_at_every_slot(dbus: DbusDaemon, tmp_path: Path) -> None:
    key_file = tmp_path / "key.json"
    key = keystore.enroll(key_file, DAY - dt.timedelta(days=3))
    cfg = config(key_file, interval_ms=200, tx_power_dbm=-4)
    sent: list[str] = []
    notifier = Notifier(
        {"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "60000000"},
        sender=lambda m: sent.append(m) or True,
    )
    slots = 5
    stop_at = bluezone.slot_start(T_START) + (slots - 0.5) * 900

    async def main() -> tuple[FakeBluez, BeaconApp, VirtualClock]:
        fake = await FakeBluez(dbus.address).start()
        clock = VirtualClock(T_START, stop_at)
        adv = BluezAdvertiser("hci0", cfg.advertising, bus_address=dbus.address)
        await adv.connect()
        manager = await adv.check_adapter()
        assert manager["SupportedInstances"] == 5
        app = BeaconApp(cfg, adv, clock=clock, notifier=notifier)
        clock.app = app
        await app.run()
        await fake.stop()
        return fake, app, clock

    fake, app, clock = run(main())
    regs = registrations(fake)
    assert len(regs) == slots
    slot_times = [bluezone.slot_start(T_START) + i * 900 for i in range(slots)]
    # What BlueZ read back decodes, with the gateway's own decoder, to the ID of
    # each consecutive slot.
    got = [decode_ad(r.ad) for r in regs]
    assert [d.key if d else None for d in got] == [
        expected_id(key, t) for t in slot_times
    ]
    for r in regs:
        assert r.props["Type"] == "broadcast"
        assert r.props["ServiceUUIDs"] == ["4e56"]
        assert r.props["Includes"] == []
        assert (r.props["MinInterval"], r.props["MaxInterval"]) == (200, 200)
        assert r.props["TxPower"] == -4
        assert set(r.props["ManufacturerData"]) == {0x22B5}
    # A new object and a new random address per slot; the old one unregistered first.
    assert len({r.path for r in regs}) == slots
    assert len({r.address for r in regs}) == slots
    unregs = [e[1] for e in fake.events if e[0] == "unregister"]
    assert unregs == [r.path for r in regs]  # each replaced one, and the last at stop
    kinds = [e[0] for e in fake.events]
    assert kinds == ["register"] + ["unregister", "register"] * (slots - 1) + [
        "unregister"
    ]
    # systemd: READY once advertising, pings while healthy, STOPPING at the end.
    assert sent[0].startswith("READY=1")
    assert sum(m == "WATCHDOG=1" for m in sent) >= slots
    assert sent[-1].startswith("STOPPING=1")
    # It slept to the boundaries and the pings (every 30 s), not in a busy loop.
    assert clock.sleeps <= (stop_at - T_START) / 30 + 2 * slots + 2


def test_rekey_takes_effect_at_next_slot(dbus: DbusDaemon, tmp_path: Path) -> None:
    key_file = tmp_path / "key.json"
    old = keystore.enroll(key_file, DAY)
    cfg = config(key_file)
    rekey_at = T_START + 60  # 10:15:50, inside slot 41
    state: dict[str, keystore.BaseKey] = {}

    async def do_rekey() -> None:
        _, state["new"] = keystore.rekey(key_file, rekey_at, 96)

    async def main() -> FakeBluez:
        fake = await FakeBluez(dbus.address).start()
        clock = VirtualClock(T_START, bluezone.slot_start(T_START) + 2.5 * 900)
        clock.hooks.append((rekey_at, do_rekey))
        adv = BluezAdvertiser("hci0", cfg.advertising, bus_address=dbus.address)
        app = BeaconApp(cfg, adv, clock=clock, notifier=Notifier({}))
        clock.app = app
        await app.run()
        await fake.stop()
        return fake

    fake = run(main())
    keys = [decode_ad(r.ad).key for r in registrations(fake)]
    s0 = bluezone.slot_start(T_START)
    new = state["new"]
    # Slot 40 and the start of 41 on the old key; the new key as soon as the daemon
    # sees the file change (its next tick), then slot 42 on the new key.
    assert keys == [
        expected_id(old, s0),
        expected_id(old, s0 + 900),
        expected_id(new, s0 + 900),
        expected_id(new, s0 + 1800),
    ]
    # The archive's end of validity (end of the rekey's slot) bounds the switch, so
    # an export of that slot carries both keys.
    archived = keystore.load_history(key_file)[0]
    assert archived.retired == s0 + 1800


def test_refusal_is_retried_then_bluetoothd_restart_recovers(
    dbus: DbusDaemon, tmp_path: Path
) -> None:
    key_file = tmp_path / "key.json"
    key = keystore.enroll(key_file, DAY)
    cfg = config(key_file, retry_s=5.0)
    sent: list[str] = []
    notifier = Notifier(
        {"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "20000000"},
        sender=lambda m: sent.append(m) or True,
    )
    holder: dict[str, FakeBluez] = {}

    async def lift() -> None:
        holder["fake"].refuse = None

    async def restart() -> None:
        await holder["fake"].stop()
        holder["fake2"] = await FakeBluez(dbus.address).start()
        await asyncio.sleep(0.05)  # NameOwnerChanged reaches the advertiser

    async def main() -> BeaconApp:
        holder["fake"] = await FakeBluez(
            dbus.address, refuse="org.bluez.Error.NotPermitted"
        ).start()
        clock = VirtualClock(T_START, T_START + 120)
        clock.hooks += [(T_START + 12, lift), (T_START + 60, restart)]
        adv = BluezAdvertiser("hci0", cfg.advertising, bus_address=dbus.address)
        app = BeaconApp(cfg, adv, clock=clock, notifier=notifier)
        clock.app = app
        await app.run()
        await holder["fake2"].stop()
        return app

    app = run(main())
    assert app.advertiser.failures >= 2  # refused at start and on the first retry
    assert not sent[0].startswith("READY")  # not ready while refused...
    assert any(m.startswith("READY=1") for m in sent)  # ...ready once registered
    first = registrations(holder["fake"])
    second = registrations(holder["fake2"])
    assert len(first) == 1
    assert len(second) == 1  # re-registered with the restarted bluetoothd
    assert decode_ad(second[0].ad).key == expected_id(key, T_START + 60)


def test_health_rule() -> None:
    assert assess(True, None, 100.0, FAIL_GIVE_UP_S).healthy
    assert assess(False, None, 100.0, FAIL_GIVE_UP_S).healthy  # starting
    assert assess(False, 50.0, 100.0, FAIL_GIVE_UP_S).healthy  # retrying
    verdict = assess(False, 0.0, FAIL_GIVE_UP_S, FAIL_GIVE_UP_S)
    assert not verdict.healthy
    assert "not advertising" in verdict.reason


def test_adapter_problems_are_one_clear_error(dbus: DbusDaemon, tmp_path: Path) -> None:
    async def main() -> list[str]:
        fake = await FakeBluez(dbus.address, powered=False).start()
        errors = []
        for adapter in ("hci0", "hci1"):
            adv = BluezAdvertiser(
                adapter, AdvertisingConfig(), bus_address=dbus.address
            )
            await adv.connect()
            try:
                await adv.check_adapter()
            except AdvertiseError as exc:
                errors.append(str(exc))
            await adv.close()
        await fake.stop()
        adv = BluezAdvertiser("hci0", AdvertisingConfig(), bus_address=dbus.address)
        await adv.connect()
        try:
            await adv.check_adapter()
        except AdvertiseError as exc:
            errors.append(str(exc))
        await adv.close()
        return errors

    errors = run(main())
    assert "powered off" in errors[0]
    assert "no adapter hci1" in errors[1]
    assert "GetManagedObjects" in errors[2]  # no bluetoothd on the bus at all


def test_run_command_under_notify_socket(dbus: DbusDaemon, tmp_path: Path) -> None:
    """The real `bluegate-beacon run` process: READY after registering, the frame
    for the current slot, STOPPING and a withdrawn advertisement on SIGTERM."""
    key_file = tmp_path / "key.json"
    keystore.enroll(key_file, dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))
    cfg_path = beacon_yaml(tmp_path, key_file)
    notify_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    sock.setblocking(False)

    async def main() -> tuple[list[str], int, FakeBluez]:
        fake = await FakeBluez(dbus.address).start()
        env = dict(os.environ, NOTIFY_SOCKET=str(notify_path), WATCHDOG_USEC="4000000",
                   PYTHONPATH=str(REPO))  # fmt: skip
        env.pop("WATCHDOG_PID", None)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "beacon", "run", "--config", str(cfg_path),
            "--bus-address", dbus.address, env=env, cwd=REPO,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        loop = asyncio.get_running_loop()
        messages: list[str] = []

        async def wait_for(prefix: str) -> None:
            while not any(m.startswith(prefix) for m in messages):
                messages.append((await loop.sock_recv(sock, 4096)).decode())

        await asyncio.wait_for(wait_for("READY=1"), 15)
        await asyncio.wait_for(wait_for("WATCHDOG=1"), 15)
        assert len(fake.active) == 1
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(wait_for("STOPPING=1"), 5)
        code = await asyncio.wait_for(proc.wait(), 5)
        stderr = await proc.stderr.read() if proc.stderr else b""
        assert b"Traceback" not in stderr, stderr
        await asyncio.sleep(0.05)
        await fake.stop()
        return messages, code, fake

    messages, code, fake = run(main())
    sock.close()
    assert code == 0
    regs = registrations(fake)
    assert len(regs) == 1
    assert fake.active == {}  # withdrawn before exit
    key = keystore.load_key(key_file)
    now = dt.datetime.now(dt.UTC).timestamp()
    assert decode_ad(regs[0].ad).key in {
        expected_id(key, now),
        expected_id(key, now - 900),
    }
    assert "slot" in "".join(messages)


def test_check_config_and_missing_key(tmp_path: Path) -> None:
    from tests.beacon.helpers import cli

    cfg_path = beacon_yaml(tmp_path, tmp_path / "nokey.json")
    res = cli(
        "beacon", "run", "--config", str(cfg_path), "--check-config", "--format", "json"
    )
    assert res.returncode == 0, res.stderr
    shown = json.loads(res.stdout)
    assert shown["advertising"]["type"] == "broadcast"
    assert "key_file does not exist yet" in res.stderr
    res = cli(
        "beacon",
        "run",
        "--config",
        str(cfg_path),
        "--bus-address",
        "unix:path=/nonexistent",
    )
    assert res.returncode == 78
    assert "enroll" in res.stderr
    assert load_beacon_config(str(cfg_path)).beacon == "room-a-beacon"
