"""`bluegate-central serve` as a process: ingests from a real Mosquitto, stops on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from central.store import open_store
from tests.central.helpers import T0, batch, presence, public_pem, signing_key, topic
from tests.servers import free_port

pytestmark = pytest.mark.integration


def test_serve_ingests_and_stops_cleanly(mosquitto, tmp_path):
    db = tmp_path / "central.sqlite"
    cfg = tmp_path / "central.yaml"
    cfg.write_text(
        f"storage: sqlite://{db}\n"
        f"mqtt: {{port: {mosquitto.port}, workers: 2, client_id: serve-test}}\n"
        f"http: {{port: {free_port()}}}\n"
    )
    key = signing_key()
    store = open_store(f"sqlite://{db}")
    store.enroll_gateway("gw-1", public_pem(key), T0)
    proc = subprocess.Popen(
        [sys.executable, "-m", "central", "serve", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    pub = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5
    )
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    try:
        deadline = time.monotonic() + 20
        payload = batch([presence("k:1", T0, T0 + 60, seq=i) for i in range(10)], key)
        while time.monotonic() < deadline and store.stats()["records"]["presence"] < 10:
            # Re-published until the workers are subscribed; idempotency keeps one copy.
            pub.publish(topic(), payload, qos=1).wait_for_publish(5)
            time.sleep(0.3)
        assert store.stats()["records"]["presence"] == 10
        assert store.stats()["batches"] == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        pub.loop_stop()
        pub.disconnect()
        store.close()
