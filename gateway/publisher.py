"""Shell: outbox rows -> signed batches -> MQTT broker, QoS 1 (design.md, MQTT).

Threads and ownership (style.md 3.3):

- A *supervisor* thread owns the connection: it builds a fresh paho client for each
  connection attempt (a "generation"), connects, runs paho's network thread
  (`loop_start`) until the connection ends, then waits a jittered exponential
  back-off (`backoff_s`) before the next attempt. paho's own reconnect is off
  (`reconnect_on_failure=False`) because it has no jitter, and because a fresh
  client per connection means paho never silently retransmits a batch from its
  in-memory queue: every retransmission comes from the outbox, so there is one
  source of truth.
- paho's callbacks only post events to a `queue.SimpleQueue`.
- The caller's tick thread calls `pump()`: it applies the events (acks ->
  `mark_delivered`, a lost connection -> every in-flight row back to ready), then
  claims and publishes while connected and under the in-flight cap. SQLite is only
  touched from that thread. Because acks are applied only in `pump`, never between
  `publish()` returning and the batch being recorded in the ledger, paho calling
  `on_publish` before `publish()` returns (the race aiomqtt documents) cannot lose
  an ack (tests/test_publisher.py pins it with a client that acks synchronously).

At-least-once: a batch's rows are marked delivered only after its PUBACK (and, in
MQTT 5, only if the PUBACK's reason code is a success: mosquitto answers an ACL
denial with 0x87). A row published before a disconnect is published again after
it; central dedupes on (gateway, boot, seq).
"""

from __future__ import annotations

import enum
import json
import logging
import queue
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway import envelope
from gateway.config import GatewayConfig, MqttConfig
from gateway.errors import BlueGateError
from gateway.outbox import Outbox, OutboxRecord

_LOGGER = logging.getLogger(__name__)

STATUS_ONLINE: Final = b"online"
STATUS_OFFLINE: Final = b"offline"
# paho waits this long for TCP + TLS + CONNECT before giving up on an attempt.
CONNECT_TIMEOUT_S: Final = 5.0
# Exponent cap for the back-off: 2**30 * min_s is far past any max_s.
_MAX_EXPONENT: Final = 30

MessageHandler = Callable[[str, bytes, bool], None]
ClientFactory = Callable[[int], mqtt.Client]


def backoff_s(attempt: int, min_s: float, max_s: float, rand: float) -> float:
    """Delay before reconnect attempt `attempt` (0 = first retry); `rand` in [0, 1].

    Exponential with "equal jitter" (AWS Architecture Blog, "Exponential Backoff
    and Jitter", 2015): the step is min_s * 2**attempt capped at max_s; half of it
    is kept and the other half drawn at random. The kept half stops a unit from
    hammering a broker that refuses it; the random half spreads a fleet that lost
    the broker at the same instant, so 200 gateways do not reconnect in lockstep
    when it comes back.
    """
    step = min(max_s, min_s * 2.0 ** min(max(attempt, 0), _MAX_EXPONENT))
    return step / 2.0 + min(max(rand, 0.0), 1.0) * step / 2.0


class EventKind(enum.Enum):
    CONNECTED = "connected"
    CONNECT_FAILED = "connect_failed"
    DISCONNECTED = "disconnected"
    ACKED = "acked"
    REJECTED = "rejected"
    MESSAGE = "message"


@dataclass(frozen=True, slots=True)
class Event:
    """What a paho callback posts; `gen` is the connection generation."""

    kind: EventKind
    gen: int
    mid: int = 0
    reason: str = ""
    topic: str = ""
    payload: bytes = b""
    retained: bool = False


class InflightLedger:
    """Pure: which outbox rows each published batch (generation, mid) carries."""

    def __init__(self) -> None:
        self._batches: dict[tuple[int, int], list[int]] = {}

    def sent(self, gen: int, mid: int, ids: list[int]) -> None:
        self._batches[(gen, mid)] = ids

    def settle(self, gen: int, mid: int) -> list[int] | None:
        """The rows of an acked or rejected batch; None for a stale or foreign mid."""
        return self._batches.pop((gen, mid), None)

    def reset(self) -> int:
        """Forget every batch (the connection was lost); returns how many."""
        n = len(self._batches)
        self._batches.clear()
        return n

    def __len__(self) -> int:
        return len(self._batches)


def split_by_boot(rows: Iterable[OutboxRecord]) -> list[list[OutboxRecord]]:
    """A batch carries one `boot`; rows from a killed process's boot go apart."""
    groups: list[list[OutboxRecord]] = []
    for row in rows:
        if groups and groups[-1][0].boot == row.boot:
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


@dataclass(frozen=True, slots=True)
class PublisherStats:
    connected: bool
    inflight_batches: int
    batches_sent: int
    records_sent: int
    records_acked: int
    batches_rejected: int
    connects: int
    connect_failures: int
    disconnects: int
    last_error: str | None

    def as_health(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "inflight_batches": self.inflight_batches,
            "records_acked": self.records_acked,
            "batches_rejected": self.batches_rejected,
            "connects": self.connects,
            "disconnects": self.disconnects,
            "last_error": self.last_error,
        }


def tls_context(cfg: MqttConfig) -> ssl.SSLContext | None:
    """The broker's CA, our client certificate; hostname checked (None: plain TCP)."""
    if cfg.ca is None:
        return None
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cfg.ca)
        if cfg.cert is not None and cfg.key is not None:
            ctx.load_cert_chain(cfg.cert, cfg.key)
    except (OSError, ssl.SSLError) as exc:
        raise BlueGateError(f"mqtt TLS files: {exc}") from exc
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = True  # the broker's certificate must name mqtt.host
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def read_password(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().rstrip("\r\n")
    except OSError as exc:
        raise BlueGateError(f"mqtt password_file {path}: {exc.strerror}") from exc


class Publisher:
    """Delivers the outbox to the broker; `pump()` runs on the caller's tick thread."""

    def __init__(
        self,
        cfg: GatewayConfig,
        outbox: Outbox,
        signing_key: Ed25519PrivateKey | None,
        *,
        on_message: MessageHandler | None = None,
        client_factory: ClientFactory | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._cfg = cfg
        self._mqtt = cfg.mqtt
        self._outbox = outbox
        self._key = signing_key
        self._on_message = on_message
        self._rng = rng or random.Random()
        prefix = cfg.mqtt.topic_prefix
        self.records_topic = envelope.topic(prefix, cfg.site, cfg.gateway, "records")
        self.status_topic = envelope.topic(prefix, cfg.site, cfg.gateway, "status")
        self.health_topic = envelope.topic(prefix, cfg.site, cfg.gateway, "health")
        # Stable: the broker finds the persistent session by client id.
        self.client_id = f"bluegate-{cfg.site}-{cfg.gateway}"
        self._tls = tls_context(cfg.mqtt)
        self._password = (
            read_password(cfg.mqtt.password_file) if cfg.mqtt.password_file else None
        )
        self._client_factory = client_factory or self._make_client
        self._events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._ledger = InflightLedger()
        self._lock = threading.Lock()
        self._clients: dict[int, mqtt.Client] = {}
        self._subscriptions: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reset_attempts = threading.Event()
        # Tick-thread state.
        self._live_gen: int | None = None
        self._last_live_gen = 0
        self._paused_until_s = 0.0
        self._reject_streak = 0
        self._batches_sent = self._records_sent = self._records_acked = 0
        self._rejected = self._connects = self._connect_failures = 0
        self._disconnects = 0
        self._last_error: str | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start connecting in the background (returns at once)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._supervise, name="bluegate-mqtt", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 3.0) -> None:
        """Publish `offline` (retained), disconnect cleanly, stop the threads."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    @property
    def connected(self) -> bool:
        """Whether the tick thread has seen the current connection come up."""
        return self._live_gen is not None

    # ---------------------------------------------------------------- tick side

    def pump(self, now_wall: float, wait_s: float = 0.0) -> int:
        """Apply posted events, then publish; returns records acknowledged now.

        `wait_s` > 0 blocks up to that long for the first event (drain, replay).
        """
        acked: list[int] = []
        for event in self._take_events(wait_s):
            self._apply(event, acked)
        if acked:
            self._records_acked += self._outbox.mark_delivered(acked, now_wall)
        self._publish_ready(now_wall)
        return len(acked)

    def _take_events(self, wait_s: float) -> list[Event]:
        events = []
        try:
            if wait_s > 0:
                events.append(self._events.get(timeout=wait_s))
            while True:
                events.append(self._events.get_nowait())
        except queue.Empty:
            pass
        return events

    def _apply(self, event: Event, acked: list[int]) -> None:
        kind = event.kind
        if kind is EventKind.ACKED:
            ids = self._ledger.settle(event.gen, event.mid)
            if ids is not None:
                acked.extend(ids)
                self._reject_streak = 0
        elif kind is EventKind.REJECTED:
            ids = self._ledger.settle(event.gen, event.mid)
            if ids is not None:
                self._outbox.release(ids)
                self._rejected += 1
                self._last_error = f"broker refused a batch: {event.reason}"
                # A refusal (ACL, quota) will repeat: keep the rows and back off.
                delay = backoff_s(
                    self._reject_streak,
                    self._mqtt.reconnect_min_s,
                    self._mqtt.reconnect_max_s,
                    self._rng.random(),
                )
                self._reject_streak += 1
                self._paused_until_s = time.monotonic() + delay
                _LOGGER.error(
                    "broker refused a batch of %d record(s) on %s: %s; "
                    "kept in the outbox, retrying in %.0f s",
                    len(ids),
                    self.records_topic,
                    event.reason,
                    delay,
                )
        elif kind is EventKind.CONNECTED:
            self._requeue("a new connection")
            self._live_gen = self._last_live_gen = event.gen
            self._connects += 1
            self._last_error = None
            _LOGGER.info("mqtt: connected to %s:%d", self._mqtt.host, self._mqtt.port)
        elif kind is EventKind.DISCONNECTED:
            if event.gen == self._live_gen:
                self._live_gen = None
                self._disconnects += 1
                self._last_error = f"disconnected: {event.reason}"
                _LOGGER.warning("mqtt: connection lost (%s)", event.reason)
            elif event.gen > self._last_live_gen:
                # Closed before CONNACK: with TLS 1.3 a broker refusing our
                # certificate says so only after the handshake seemed to succeed.
                self._apply(
                    Event(
                        EventKind.CONNECT_FAILED,
                        event.gen,
                        reason="closed by the broker before CONNACK (TLS client "
                        "certificate refused? see the broker's log)",
                    ),
                    acked,
                )
            self._requeue("a lost connection")
        elif kind is EventKind.CONNECT_FAILED:
            self._connect_failures += 1
            message = f"cannot connect: {event.reason}"
            # One WARNING per distinct failure; repeats of it go to DEBUG.
            log = _LOGGER.debug if message == self._last_error else _LOGGER.warning
            log(
                "mqtt: %s:%d %s (outbox keeps everything; retrying with back-off)",
                self._mqtt.host,
                self._mqtt.port,
                message,
            )
            self._last_error = message
        elif kind is EventKind.MESSAGE and self._on_message is not None:
            self._on_message(event.topic, event.payload, event.retained)

    def _requeue(self, why: str) -> None:
        if len(self._ledger):
            self._ledger.reset()
            n = self._outbox.requeue_inflight()
            _LOGGER.info("mqtt: %d in-flight record(s) back to ready after %s", n, why)

    def _publish_ready(self, now_wall: float) -> None:
        gen = self._live_gen
        if gen is None or time.monotonic() < self._paused_until_s:
            return
        with self._lock:
            client = self._clients.get(gen)
        if client is None:
            return
        cap = self._mqtt.max_inflight
        while len(self._ledger) < cap:
            rows = self._outbox.claim(self._mqtt.batch_records)
            if not rows:
                return
            groups = split_by_boot(rows)
            for index, group in enumerate(groups):
                ids = [row.id for row in group]
                body = envelope.make_body(
                    site=self._cfg.site,
                    gateway=self._cfg.gateway,
                    boot=group[0].boot,
                    records=[row.record for row in group],
                    sent=now_wall,
                )
                payload = envelope.encode_batch(body, self._key)
                info = client.publish(self.records_topic, payload, qos=1)
                if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    # The connection is going down; its DISCONNECTED event follows.
                    rest = [row.id for g in groups[index:] for row in g]
                    self._outbox.release(rest)
                    _LOGGER.debug("mqtt: publish refused locally (rc=%s)", info.rc)
                    return
                self._ledger.sent(gen, info.mid, ids)
                self._batches_sent += 1
                self._records_sent += len(group)

    def publish_health(self, payload: Mapping[str, Any]) -> bool:
        """Publish the health object (retained, QoS 1); False when offline."""
        return self._publish_side(self.health_topic, json.dumps(payload).encode())

    def publish_status(self, payload: bytes) -> bool:
        """Replace the retained status (the daemon may add a reason to `online`)."""
        return self._publish_side(self.status_topic, payload)

    def _publish_side(self, topic: str, payload: bytes) -> bool:
        gen = self._live_gen
        with self._lock:
            client = self._clients.get(gen) if gen is not None else None
        if client is None:
            return False
        info = client.publish(topic, payload, qos=1, retain=True)
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        """Subscribe now and after every reconnect; messages reach `on_message` in pump."""
        with self._lock:
            self._subscriptions[topic_filter] = qos
            client = self._clients.get(self._live_gen) if self._live_gen else None
        if client is not None:
            client.subscribe(topic_filter, qos)

    def stats(self) -> PublisherStats:
        return PublisherStats(
            connected=self.connected,
            inflight_batches=len(self._ledger),
            batches_sent=self._batches_sent,
            records_sent=self._records_sent,
            records_acked=self._records_acked,
            batches_rejected=self._rejected,
            connects=self._connects,
            connect_failures=self._connect_failures,
            disconnects=self._disconnects,
            last_error=self._last_error,
        )

    # ---------------------------------------------------------------- network side

    def _make_client(self, gen: int) -> mqtt.Client:
        m = self._mqtt
        v5 = m.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            # 3.1.1: a persistent session is clean_session=False (MQTT 5 uses
            # clean_start + SessionExpiryInterval at connect).
            clean_session=None if v5 else False,
            reconnect_on_failure=False,
        )
        client.connect_timeout = CONNECT_TIMEOUT_S
        # Our cap governs; +2 leaves room for the status and health messages.
        client.max_inflight_messages_set(m.max_inflight + 2)
        client.will_set(self.status_topic, STATUS_OFFLINE, qos=1, retain=True)
        if self._tls is not None:
            client.tls_set_context(self._tls)
        if m.username is not None:
            client.username_pw_set(m.username, self._password)
        return client

    def _connect(self, client: mqtt.Client) -> None:
        m = self._mqtt
        if m.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho: unannotated
            # The broker keeps our session (and what it queued for us) this long
            # after we vanish: longer than a bus shift out of coverage.
            props.SessionExpiryInterval = m.session_expiry_s
            client.connect(
                m.host, m.port, m.keepalive_s, clean_start=False, properties=props
            )
        else:
            client.connect(m.host, m.port, m.keepalive_s)

    def _wire(self, client: mqtt.Client, gen: int, done: threading.Event) -> None:
        post = self._events.put

        def on_connect(
            c: mqtt.Client,
            userdata: Any,
            flags: mqtt.ConnectFlags,
            reason: ReasonCode,
            properties: Properties | None,
        ) -> None:
            if reason.is_failure:
                post(Event(EventKind.CONNECT_FAILED, gen, reason=str(reason)))
                done.set()
                return
            self._reset_attempts.set()
            c.publish(self.status_topic, STATUS_ONLINE, qos=1, retain=True)
            with self._lock:
                subscriptions = list(self._subscriptions.items())
            for topic_filter, qos in subscriptions:
                c.subscribe(topic_filter, qos)
            post(Event(EventKind.CONNECTED, gen))

        def on_disconnect(
            c: mqtt.Client,
            userdata: Any,
            flags: mqtt.DisconnectFlags,
            reason: ReasonCode,
            properties: Properties | None,
        ) -> None:
            post(Event(EventKind.DISCONNECTED, gen, reason=str(reason)))
            done.set()

        def on_publish(
            c: mqtt.Client,
            userdata: Any,
            mid: int,
            reason: ReasonCode,
            properties: Properties,
        ) -> None:
            if reason.is_failure:
                post(Event(EventKind.REJECTED, gen, mid=mid, reason=str(reason)))
            else:
                post(Event(EventKind.ACKED, gen, mid=mid))

        def on_message(c: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
            post(
                Event(
                    EventKind.MESSAGE,
                    gen,
                    topic=msg.topic,
                    payload=bytes(msg.payload),
                    retained=bool(msg.retain),
                )
            )

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_publish = on_publish
        client.on_message = on_message

    def _supervise(self) -> None:
        attempt = 0
        gen = 0
        while not self._stop.is_set():
            gen += 1
            done = threading.Event()
            client = self._client_factory(gen)
            self._wire(client, gen, done)
            try:
                self._connect(client)
            except (
                OSError,
                ssl.SSLError,
                ValueError,
                mqtt.WebsocketConnectionError,
            ) as exc:
                self._events.put(
                    Event(EventKind.CONNECT_FAILED, gen, reason=_describe(exc))
                )
            else:
                with self._lock:
                    self._clients[gen] = client
                client.loop_start()
                while not done.wait(0.2):
                    if self._stop.is_set():
                        self._goodbye(client)
                        break
                client.loop_stop()
                with self._lock:
                    self._clients.pop(gen, None)
                if not done.is_set():
                    self._events.put(
                        Event(EventKind.DISCONNECTED, gen, reason="stopped")
                    )
            if self._stop.is_set():
                return
            if self._reset_attempts.is_set():
                self._reset_attempts.clear()
                attempt = 0
            delay = backoff_s(
                attempt,
                self._mqtt.reconnect_min_s,
                self._mqtt.reconnect_max_s,
                self._rng.random(),
            )
            attempt += 1
            _LOGGER.debug("mqtt: next connection attempt in %.1f s", delay)
            self._stop.wait(delay)

    def _goodbye(self, client: mqtt.Client) -> None:
        """A clean stop: the will is not sent on DISCONNECT, so say `offline` first."""
        try:
            info = client.publish(self.status_topic, STATUS_OFFLINE, qos=1, retain=True)
            info.wait_for_publish(1.0)
        except (RuntimeError, ValueError) as exc:
            _LOGGER.debug("mqtt: offline status not confirmed: %s", exc)
        client.disconnect()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: broker certificate rejected ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the broker running on this port?)"
    if isinstance(exc, TimeoutError):
        return "timed out (network down or firewall?)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
