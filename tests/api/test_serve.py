"""`bluegate-central serve` runs ingest and the HTTP API together: a batch published to
a real Mosquitto is visible through the API of the same process."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from central import auth
from central.api import HttpComponent
from central.config import CentralConfig, CentralMqttConfig, HttpConfig
from central.service import build_service
from central.store import open_store
from gateway.envelope import encode_batch, make_body
from tests.api.site import SITE, build_reports, records_of
from tests.servers import free_port

pytestmark = pytest.mark.integration


def test_serve_runs_ingest_and_http(mosquitto, tmp_path: Path):
    url = f"sqlite://{tmp_path}/central.sqlite"
    gw = build_reports()["gw-bus-07"]
    store = open_store(url)
    store.enroll_gateway(gw.name, gw.public_pem(), time.time())
    _, token = auth.create_token(store, "ops", "serve test", time.time())
    store.close()
    port = free_port()
    config = CentralConfig(
        storage=url,
        mqtt=CentralMqttConfig(
            host="127.0.0.1", port=mosquitto.port, client_id="central-serve-test"
        ),
        http=HttpConfig(port=port),
    )
    service = build_service(config)
    assert any(isinstance(c, HttpComponent) for c in service.components)
    service.start()
    try:
        records = records_of(gw)
        payload = encode_batch(
            make_body(
                site=SITE, gateway=gw.name, boot=1, records=records, sent=time.time()
            ),
            gw.key,
        )
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.connect("127.0.0.1", mosquitto.port)
        client.loop_start()
        client.publish(
            f"bluegate/v1/{SITE}/{gw.name}/records", payload, qos=1
        ).wait_for_publish(10)
        client.publish(
            f"bluegate/v1/{SITE}/{gw.name}/status", b"online", qos=1, retain=True
        ).wait_for_publish(10)
        client.loop_stop()
        client.disconnect()
        deadline = time.monotonic() + 15
        stats: dict = {}
        while time.monotonic() < deadline:
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/v1/stats",
                headers={"Authorization": "Bearer " + token},
            )
            with urllib.request.urlopen(req, timeout=5) as resp:
                stats = json.load(resp)
            if stats["batches"] == 1:
                break
            time.sleep(0.1)
        assert stats["batches"] == 1
        assert stats["records"]["presence"] == sum(
            1 for r in records if r["kind"] == "presence"
        )
    finally:
        service.stop()
