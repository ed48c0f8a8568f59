"""The beacon daemon's status (retained, last will) and health over a real Mosquitto."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import queue
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from beacon import bluezone, keystore
from beacon.advertiser import BluezAdvertiser
from beacon.app import BeaconApp, MqttStatus
from beacon.config import BeaconConfig
from gateway.config import MqttConfig, ZoneConfig
from gateway.systemd import Notifier
from tests.beacon.fake_bluez import DbusDaemon, FakeBluez
from tests.beacon.test_advertiser import T_START, VirtualClock

pytestmark = pytest.mark.integration


def test_status_and_health_over_mqtt(tmp_path: Path, mosquitto) -> None:
    key_file = tmp_path / "key.json"
    keystore.enroll(key_file, dt.date(2026, 11, 20))
    cfg = BeaconConfig(
        "mine-a", "room-a-beacon", ZoneConfig("room-a", "shift_room"),
        key_file=str(key_file), mqtt=MqttConfig(host="127.0.0.1", port=mosquitto.port),
        health_interval_s=300.0,
    )  # fmt: skip
    got: queue.SimpleQueue[tuple[str, bytes, bool]] = queue.SimpleQueue()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-sub")
    sub.on_message = lambda c, u, m: got.put((m.topic, m.payload, m.retain))
    sub.connect("127.0.0.1", mosquitto.port)
    sub.subscribe("bluegate/v1/mine-a/room-a-beacon/#", qos=1)
    sub.loop_start()
    dbus = DbusDaemon(tmp_path / "dbus").start()
    try:

        async def main() -> None:
            fake = await FakeBluez(dbus.address).start()
            status = MqttStatus(cfg)
            for _ in range(100):  # wait for the connection before the run starts
                if status.client.is_connected():
                    break
                await asyncio.sleep(0.02)
            clock = VirtualClock(T_START, T_START + 1000)
            adv = BluezAdvertiser("hci0", cfg.advertising, bus_address=dbus.address)
            app = BeaconApp(cfg, adv, clock=clock, notifier=Notifier({}), status=status)
            clock.app = app
            await app.run()
            await fake.stop()

        asyncio.run(asyncio.wait_for(main(), 30))
        messages: list[tuple[str, bytes, bool]] = []
        while True:
            try:
                messages.append(got.get(timeout=2))
            except queue.Empty:
                break
            if messages[-1][1] == b"offline":
                break
    finally:
        sub.loop_stop()
        sub.disconnect()
        dbus.stop()
    status_msgs = [p for t, p, _ in messages if t.endswith("/status")]
    health = [json.loads(p) for t, p, _ in messages if t.endswith("/health")]
    online = json.loads(status_msgs[0])
    assert online == {"status": "online", "kind": "beacon", "beacon": "room-a-beacon",
                      "zone": "room-a", "zone_kind": "shift_room", "scheme": "bluezone"}  # fmt: skip
    assert status_msgs[-1] == b"offline"
    # 1000 virtual seconds at one health message per 300 s.
    assert len(health) >= 3
    assert health[0]["advertising"] is True
    assert health[0]["slot"] == bluezone.slot_of(T_START)
    assert health[0]["key"] == keystore.load_key(key_file).fingerprint
    # Never the key or the ID itself.
    text = b"".join(p for _, p, _ in messages).decode()
    assert keystore.load_key(key_file).base_key.hex() not in text
    assert "bluezone:" not in text
