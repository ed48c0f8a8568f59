"""Ingest workers against a real Mosquitto and real stores."""

from __future__ import annotations

import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from central.config import CentralConfig, CentralMqttConfig
from central.ingest import IngestWorker
from central.store import open_store
from tests.central.conftest import fresh_pg_database
from tests.central.helpers import T0, batch, presence, public_pem, signing_key, topic

pytestmark = pytest.mark.integration


def publisher(broker):
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                         client_id="test-gw", protocol=mqtt.MQTTv5)  # fmt: skip
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client


def publish(client, t, payload, retain=False):
    info = client.publish(t, payload, qos=1, retain=retain)
    info.wait_for_publish(10)


def config(broker, url, workers=1, require=True):
    return CentralConfig(storage=url, require_signatures=require,
                         mqtt=CentralMqttConfig(port=broker.port, workers=workers,
                                                client_id=f"central-{time.monotonic_ns()}"))  # fmt: skip


def wait_for(predicate, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_bad_batches_are_quarantined_and_the_worker_keeps_going(mosquitto, tmp_path):
    url = f"sqlite://{tmp_path}/c.sqlite"
    key = signing_key()
    store = open_store(url)
    store.enroll_gateway("gw-1", public_pem(key), T0)
    pub = publisher(mosquitto)
    publish(
        pub, topic(leaf="status"), b"online", retain=True
    )  # retained before central starts
    worker = IngestWorker(config(mosquitto, url))
    worker.start()
    try:
        assert worker.subscribed.wait(10)
        good = batch([presence("k:1", T0, T0 + 60, seq=i) for i in range(3)], key)
        publish(pub, topic(), b"\x00\x01garbage")
        publish(pub, topic(), batch([presence("k:1", T0, T0 + 60, seq=10)], None))
        publish(
            pub, topic(), batch([presence("k:1", T0, T0 + 60, seq=11)], signing_key())
        )
        publish(pub, topic(), good)
        publish(pub, topic(), good)  # replayed
        publish(pub, topic(), batch([presence("k:2", T0, T0 + 60, seq=3)], key))
        assert wait_for(
            lambda: (
                store.stats()["records"]["presence"] >= 4
                and store.stats()["quarantined"] >= 3
                and worker.counters.duplicates >= 1
            )
        ), (store.stats(), worker.counters)
        time.sleep(0.2)  # nothing more arrives
        assert worker.counters.duplicates == 1, (store.stats(), worker.counters)
        stats = store.stats()
        assert stats["quarantined_by_reason"] == {
            "malformed": 1,
            "unsigned": 1,
            "bad-signature": 1,
        }
        assert stats["batches"] == 2
        assert store.gateway_status()[0]["status"] == "online"
    finally:
        worker.stop()
        pub.loop_stop()
        pub.disconnect()
        store.close()


def test_two_workers_on_a_shared_subscription_store_each_record_once(
    mosquitto, postgres
):
    url = fresh_pg_database(postgres)
    key = signing_key()
    store = open_store(url)
    for gw in ("gw-1", "gw-2"):
        store.enroll_gateway(gw, public_pem(key), T0)
    cfg = config(mosquitto, url, workers=2)
    workers = [IngestWorker(cfg, i) for i in range(2)]
    for w in workers:
        w.start()
    pub = publisher(mosquitto)
    try:
        assert all(w.subscribed.wait(10) for w in workers)
        n_batches, per_batch = 60, 25
        payloads = []
        for gw in ("gw-1", "gw-2"):
            for b in range(n_batches // 2):
                recs = [presence(f"k:{gw}:{b}", T0 + s, T0 + s + 30, seq=b * per_batch + s, gateway=gw)
                        for s in range(per_batch)]  # fmt: skip
                payloads.append((topic(gw), batch(recs, key, gateway=gw)))
        for t, p in payloads + payloads[::7]:  # every 7th batch delivered twice
            pub.publish(t, p, qos=1)
        total = n_batches * per_batch
        assert wait_for(lambda: store.stats()["records"]["presence"] >= total, 30), (
            store.stats(),
            [w.counters for w in workers],
        )
        delivered = len(payloads) + len(payloads[::7])
        assert wait_for(
            lambda: (
                sum(w.counters.batches + w.counters.duplicates for w in workers)
                >= delivered
            ),
            30,
        ), [w.counters for w in workers]
        stats = store.stats()
        assert stats["records"]["presence"] == total
        assert stats["batches"] == n_batches
        assert stats["quarantined"] == 0
        assert all(w.counters.batches > 0 for w in workers), [
            w.counters for w in workers
        ]
        assert store.sequence_gaps() == []
    finally:
        for w in workers:
            w.stop()
        pub.loop_stop()
        pub.disconnect()
        store.close()
