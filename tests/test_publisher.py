"""The publisher: back-off table, batching, the early-ack race, and a real Mosquitto."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway import envelope
from gateway.config import GatewayConfig, MqttConfig, ZoneConfig
from gateway.outbox import MemoryOutbox, OutboxRecord, SqliteOutbox
from gateway.publisher import Publisher, backoff_s, split_by_boot
from tests.servers import Mosquitto

T0 = 1_700_000_000.0


def gate(i: int) -> dict:
    return {
        "kind": "gate",
        "gateway": "gw-1",
        "key": f"ibeacon:k:{i}",
        "t": T0 + i,
        "direction": "in",
    }


def config(port: int = 1883, **mqtt_kw) -> GatewayConfig:
    kw = {
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5,
        "batch_records": 50,
        **mqtt_kw,
    }
    return GatewayConfig(
        site="mine-a",
        gateway="gw-1",
        zone=ZoneConfig("room-a", "shift_room"),
        mqtt=MqttConfig(host="127.0.0.1", port=port, **kw),
    )


# ------------------------------------------------------------------ pure parts


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [
        (0, 0.0, 0.5),  # half the first step is always kept
        (0, 1.0, 1.0),
        (1, 0.0, 1.0),
        (1, 0.5, 1.5),
        (3, 1.0, 8.0),
        (6, 0.0, 32.0),
        (7, 0.0, 60.0),  # capped: step 120 s, half kept
        (7, 1.0, 120.0),
        (500, 1.0, 120.0),  # no overflow however long the outage
        (-3, 0.0, 0.5),  # defensive
        (2, 7.0, 4.0),  # rand clamped to [0, 1]
    ],
)
def test_backoff_table(attempt, rand, expected):
    assert backoff_s(attempt, 1.0, 120.0, rand) == pytest.approx(expected)


def test_backoff_jitter_spreads_a_fleet():
    import random

    rng = random.Random(7)
    delays = [backoff_s(5, 1.0, 120.0, rng.random()) for _ in range(200)]
    assert min(delays) >= 16.0
    assert max(delays) <= 32.0
    assert max(delays) - min(delays) > 12.0  # not in lockstep


def test_split_by_boot():
    rows = [
        OutboxRecord(i, boot, seq, T0, {})
        for i, (boot, seq) in enumerate([(1, 5), (1, 6), (2, 0), (2, 1), (3, 0)])
    ]
    assert [[(r.boot, r.seq) for r in g] for g in split_by_boot(rows)] == [
        [(1, 5), (1, 6)],
        [(2, 0), (2, 1)],
        [(3, 0)],
    ]


# ------------------------------------------------- a client that acks at once


class SyncAckClient(mqtt.Client):
    """The real paho Client, with the network replaced by an instant broker.

    `publish()` calls `on_publish` BEFORE returning: the race paho allows
    (aiomqtt's _on_publish comment). `reason` sets the PUBACK reason code.
    """

    def __init__(self, reason: str = "Success", ack: bool = True):
        super().__init__(
            CallbackAPIVersion.VERSION2, client_id="fake", protocol=mqtt.MQTTv5
        )
        self.reason = reason
        self.ack = ack
        self.sent: list[tuple[str, bytes, bool]] = []
        self.next_mid = 0

    def connect(self, *args, **kwargs):
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def loop_start(self):
        self.on_connect(
            self, None, None, ReasonCode(PacketTypes.CONNACK, "Success"), None
        )
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def loop_stop(self):
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def disconnect(self, *args, **kwargs):
        self.on_disconnect(
            self,
            None,
            None,
            ReasonCode(PacketTypes.DISCONNECT, "Normal disconnection"),
            None,
        )
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def subscribe(self, *args, **kwargs):
        return (MQTTErrorCode.MQTT_ERR_SUCCESS, 1)

    def publish(self, topic, payload=None, qos=0, retain=False, properties=None):
        self.next_mid += 1
        info = mqtt.MQTTMessageInfo(self.next_mid)
        info.rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        self.sent.append((topic, payload, retain))
        if qos and self.ack and topic.endswith("/records"):
            self.on_publish(
                self,
                None,
                self.next_mid,
                ReasonCode(PacketTypes.PUBACK, self.reason),
                Properties(PacketTypes.PUBACK),
            )
        return info


def run_fake(publisher: Publisher, outbox, until, timeout_s: float = 5.0):
    deadline = time.monotonic() + timeout_s
    while not until():
        assert time.monotonic() < deadline, publisher.stats()
        publisher.pump(T0 + 100, wait_s=0.05)


def test_ack_before_publish_returns_is_not_lost():
    outbox = MemoryOutbox()
    outbox.append_many([gate(i) for i in range(230)], T0)
    key = Ed25519PrivateKey.generate()
    client = SyncAckClient()
    pub = Publisher(
        config(max_inflight=3), outbox, key, client_factory=lambda gen: client
    )
    pub.start()
    try:
        run_fake(pub, outbox, lambda: outbox.pending() == 0)
    finally:
        pub.stop()
    batches = [p for t, p, _ in client.sent if t.endswith("/records")]
    assert len(batches) == 5  # 50 + 50 + 50 + 50 + 30
    seqs = []
    for payload in batches:
        body = envelope.decode_batch(
            payload, key.public_key(), site="mine-a", gateway="gw-1"
        )
        assert body["boot"] == 1
        assert body["seq"] == body["records"][0]["seq"]
        seqs += [r["seq"] for r in body["records"]]
    assert seqs == list(range(230))
    assert pub.stats().records_acked == 230
    status = [(p, r) for t, p, r in client.sent if t.endswith("/status")]
    assert status[0] == (b"online", True)
    assert status[-1] == (b"offline", True)


def test_refused_puback_keeps_rows_and_backs_off():
    outbox = MemoryOutbox()
    outbox.append_many([gate(i) for i in range(10)], T0)
    client = SyncAckClient(reason="Not authorized")
    pub = Publisher(config(), outbox, None, client_factory=lambda gen: client)
    pub.start()
    try:
        run_fake(pub, outbox, lambda: pub.stats().batches_rejected >= 1)
        pub.pump(T0)
        sent = len(client.sent)
        pub.pump(T0)  # paused by the back-off: nothing new goes out at once
        assert len(client.sent) == sent
    finally:
        pub.stop()
    assert outbox.pending() == 10
    assert outbox.stats().inflight == 0
    assert "Not authorized" in pub.stats().last_error


def test_lost_connection_requeues_in_flight_rows():
    outbox = MemoryOutbox()
    outbox.append_many([gate(i) for i in range(120)], T0)
    clients = []

    def factory(gen):
        clients.append(SyncAckClient(ack=False))
        return clients[-1]

    pub = Publisher(config(max_inflight=2), outbox, None, client_factory=factory)
    pub.start()
    try:
        run_fake(pub, outbox, lambda: outbox.stats().inflight == 100)
        clients[0].on_disconnect(
            clients[0],
            None,
            None,
            ReasonCode(PacketTypes.DISCONNECT, "Unspecified error"),
            None,
        )
        # Back to ready, then claimed again on the next connection, in order.
        run_fake(
            pub,
            outbox,
            lambda: (
                len(clients) >= 2
                and pub.stats().connects >= 2
                and outbox.stats().inflight == 100
            ),
        )
        first = [
            json.loads(envelope.inflate(p[4:]))["seq"]
            for t, p, _ in clients[1].sent
            if t.endswith("/records")
        ]
        assert first[:2] == [0, 50]
    finally:
        pub.stop()


# ------------------------------------------------------------ a real broker


class Subscriber:
    """A persistent-session QoS 1 subscriber, as central's ingest would be."""

    def __init__(
        self,
        port: int,
        topic: str = "bluegate/v1/+/+/records",
        client_id: str = "test-sub",
        tls=None,
        v5: bool = True,
    ):
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        if tls is not None:
            self.client.tls_set_context(tls)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, 30, clean_start=False, properties=props)
        self.client.loop_start()
        assert self.subscribed.wait(5), "subscription not acknowledged"

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def payloads(self, suffix: str = "/records") -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if t.endswith(suffix)]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def records_of(payloads, public_key=None) -> dict[tuple[int, int], dict]:
    out = {}
    for payload in payloads:
        body = envelope.decode_batch(
            payload, public_key, require_signature=public_key is not None
        )
        for record in body["records"]:
            out[(body["boot"], record["seq"])] = record
    return out


def wait_for(predicate, timeout_s: float, step_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


def pump_until(pub, predicate, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, pub.stats()
        pub.pump(time.time(), wait_s=0.05)


@pytest.mark.integration
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_publish_and_ack_with_a_real_broker(
    mosquitto: Mosquitto, tmp_path: Path, protocol
):
    sub = Subscriber(mosquitto.port)
    status = Subscriber(
        mosquitto.port, topic="bluegate/v1/mine-a/gw-1/status", client_id="test-status"
    )
    key = Ed25519PrivateKey.generate()
    outbox = SqliteOutbox(str(tmp_path / "o.sqlite"))
    outbox.append_many([gate(i) for i in range(1000)], T0)
    pub = Publisher(
        config(mosquitto.port, protocol=protocol, max_inflight=4), outbox, key
    )
    pub.start()
    try:
        pump_until(pub, lambda: outbox.pending() == 0, 10)
        assert pub.publish_health({"uptime_s": 5})
        pub.pump(time.time())
        assert wait_for(
            lambda: len(records_of(sub.payloads(), key.public_key())) == 1000, 5
        )
        got = records_of(sub.payloads(), key.public_key())
        assert got == {(1, i): {**gate(i), "seq": i} for i in range(1000)}
        assert wait_for(lambda: b"online" in status.payloads("/status"), 5)
    finally:
        pub.stop()
        outbox.close()
    # A clean stop says offline (the will is only sent on an unclean end).
    assert wait_for(lambda: status.payloads("/status")[-1:] == [b"offline"], 5)
    sub.close()
    status.close()


@pytest.mark.integration
def test_broker_down_then_up_delivers_everything(mosquitto: Mosquitto, tmp_path: Path):
    sub = Subscriber(mosquitto.port)
    outbox = SqliteOutbox(str(tmp_path / "o.sqlite"))
    pub = Publisher(
        config(mosquitto.port, max_inflight=2, batch_records=20), outbox, None
    )
    pub.start()
    try:
        outbox.append_many([gate(i) for i in range(100)], T0)
        pump_until(pub, lambda: outbox.pending() == 0, 10)
        mosquitto.stop()
        # The unit keeps recording while the broker is away.
        for tick in range(10):
            outbox.append_many(
                [gate(100 + tick * 30 + i) for i in range(30)], T0 + tick
            )
            pub.pump(time.time(), wait_s=0.05)
        assert not pub.connected
        assert outbox.pending() == 300
        time.sleep(0.5)
        mosquitto.start()  # same persistence: the subscriber's session survived
        pump_until(pub, lambda: outbox.pending() == 0, 15)
        assert pub.stats().disconnects >= 1
        assert wait_for(lambda: len(records_of(sub.payloads())) == 400, 10)
        assert set(records_of(sub.payloads())) == {(1, i) for i in range(400)}
    finally:
        pub.stop()
        outbox.close()
        sub.close()
