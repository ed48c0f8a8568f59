"""Shell: MQTT ingest workers (design.md "MQTT"; central-reference.md 5.4).

Each worker is one MQTT 5 client in the shared subscription
``$share/<group>/bluegate/v1/+/+/records`` plus one writer thread that owns its own
store connection. paho's network thread only puts messages on a queue; the writer
verifies each batch against the gateway's enrolled Ed25519 key
(`gateway.envelope.decode_batch`), stores it in one transaction, and only THEN
acknowledges it to the broker (manual PUBACK): a crash between receipt and commit
makes the broker redeliver, and (gateway, boot, seq) idempotency absorbs the repeat.

Nothing is dropped and nothing crashes the worker: a batch that fails framing,
signature, size, topic or record checks is stored verbatim in `quarantine` with a
reason code. A storage outage holds the message (unacknowledged) and retries with
back-off, so the broker keeps the rest queued.

Retained `status` (online/offline, the last will) and `health` messages are not
delivered to shared subscriptions on subscribe (MQTT 5 section 4.8.2), so one worker
(`status_worker=True`) holds an ordinary subscription to them; the upsert is
idempotent, so a second one would be harmless.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from central.config import CentralConfig, password
from central.records import batch_rows
from central.store import SqlStore, is_transient, open_store
from gateway.envelope import BatchRejected, decode_batch, parse_topic

_LOGGER = logging.getLogger(__name__)

# Messages stored in one transaction: amortises the commit (one fsync in WAL) over a
# burst, without holding the writer lock long (central-reference.md 5.2).
GROUP_MAX = 64
KEY_CACHE_S = 30.0
MAX_STATUS_BYTES = 4096
MAX_HEALTH_BYTES = 64 * 1024


@dataclass(slots=True)
class IngestCounters:
    batches: int = 0
    records: int = 0
    duplicates: int = 0
    quarantined: int = 0
    status: int = 0
    health: int = 0
    store_errors: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "records": self.records,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "status": self.status,
            "health": self.health,
            "store_errors": self.store_errors,
            "by_reason": dict(self.by_reason),
        }


def _public_key(pem: str | None) -> Ed25519PublicKey | None:
    if pem is None:
        return None
    key = load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        return None
    return key


def parse_status(payload: bytes) -> str | None:
    """`online`/`offline` (optionally `online <reason>` or JSON {"status": ...})."""
    if len(payload) > MAX_STATUS_BYTES:
        return None
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            return None
        value = obj.get("status") if isinstance(obj, dict) else None
        return value if value in ("online", "offline") else None
    word = text.split(maxsplit=1)[0] if text else ""
    return word if word in ("online", "offline") else None


class MessageProcessor:
    """The writer side of one worker: payload -> store, never raising for bad input."""

    def __init__(
        self,
        store: SqlStore,
        *,
        require_signatures: bool,
        prefix: str = "bluegate/v1",
        now: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.require_signatures = require_signatures
        self.prefix = prefix
        self.now = now
        self.counters = IngestCounters()
        self._keys: dict[str, tuple[float, Ed25519PublicKey | None]] = {}

    def _key_for(self, gateway: str) -> Ed25519PublicKey | None:
        cached = self._keys.get(gateway)
        t = time.monotonic()
        if cached is not None and t - cached[0] < KEY_CACHE_S and cached[1] is not None:
            return cached[1]
        key = _public_key(self.store.gateway_key(gateway))
        self._keys[gateway] = (t, key)
        return key

    def _quarantine(
        self,
        topic: str,
        site: str | None,
        gateway: str | None,
        reason: str,
        detail: str,
        payload: bytes,
    ) -> None:
        self.store.quarantine(
            received=self.now(),
            topic=topic,
            site=site,
            gateway=gateway,
            reason=reason,
            detail=detail,
            payload=payload,
        )
        self.counters.quarantined += 1
        self.counters.by_reason[reason] = self.counters.by_reason.get(reason, 0) + 1
        # The gateway id is infrastructure, not a person; the payload never is logged.
        _LOGGER.warning(
            "ingest: quarantined a message from %s: %s (%s)", gateway, reason, detail
        )

    def process(self, topic: str, payload: bytes) -> None:
        """Handle one message; store errors propagate (the caller retries), bad input never."""
        parsed = parse_topic(topic, self.prefix)
        if parsed is None:
            self._quarantine(
                topic, None, None, "bad-topic", "not under " + self.prefix, payload
            )
            return
        site, gateway, leaf = parsed
        if leaf == "records":
            self._records(topic, site, gateway, payload)
        elif leaf == "status":
            status = parse_status(payload)
            if status is None:
                if payload:  # an empty retained message clears the topic: ignore it
                    self._quarantine(
                        topic,
                        site,
                        gateway,
                        "bad-status",
                        "not online/offline",
                        payload,
                    )
                return
            self.store.set_status(gateway, site, status, self.now())
            self.counters.status += 1
        elif leaf == "health":
            try:
                if len(payload) > MAX_HEALTH_BYTES:
                    raise ValueError("too large")
                health = json.loads(payload)
                if not isinstance(health, dict):
                    raise ValueError("not an object")
            except (ValueError, UnicodeDecodeError) as exc:
                if payload:
                    self._quarantine(
                        topic, site, gateway, "bad-health", str(exc)[:200], payload
                    )
                return
            self.store.set_health(gateway, site, health, self.now())
            self.counters.health += 1

    def store_group(self, messages: list[tuple[str, bytes]]) -> None:
        """Store messages in one transaction. If the store refuses one (a value the
        engine rejects: a NUL in text for PostgreSQL, an out-of-range integer), store
        them one by one and quarantine the one refused as `store-rejected`, so a poison
        batch never blocks the worker. Transient errors (database down or locked)
        propagate: the caller holds the messages unacknowledged and retries."""
        saved = replace(self.counters, by_reason=dict(self.counters.by_reason))
        try:
            with self.store.transaction():
                for topic, payload in messages:
                    self.process(topic, payload)
            return
        except Exception as exc:
            self.counters = saved
            if is_transient(exc) or len(messages) == 0:
                raise
        for topic, payload in messages:
            saved = replace(self.counters, by_reason=dict(self.counters.by_reason))
            try:
                with self.store.transaction():
                    self.process(topic, payload)
            except Exception as exc:
                self.counters = saved
                if is_transient(exc):
                    raise
                parsed = parse_topic(topic, self.prefix)
                self._quarantine(
                    topic,
                    parsed[0] if parsed else None,
                    parsed[1] if parsed else None,
                    "store-rejected",
                    f"{type(exc).__name__}: {exc}".splitlines()[0][:300],
                    payload,
                )

    def _records(self, topic: str, site: str, gateway: str, payload: bytes) -> None:
        key = self._key_for(gateway)
        received = self.now()
        try:
            body = decode_batch(
                payload,
                key,
                require_signature=self.require_signatures,
                site=site,
                gateway=gateway,
            )
            rows = batch_rows(body, received)
        except BatchRejected as exc:
            self._quarantine(topic, site, gateway, exc.reason, exc.detail, payload)
            return
        outcome = self.store.ingest(
            rows, received=received, signed=key is not None and payload[:4] == b"BGB1"
        )
        if outcome.duplicate:
            self.counters.duplicates += 1
            _LOGGER.debug(
                "ingest: duplicate batch %s/%d/%d", gateway, rows.boot, rows.seq
            )
        else:
            self.counters.batches += 1
            self.counters.records += outcome.records


class IngestWorker:
    """One MQTT client in the shared subscription and its writer thread."""

    def __init__(
        self,
        config: CentralConfig,
        index: int = 0,
        *,
        status_worker: bool | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.index = index
        self.status_worker = index == 0 if status_worker is None else status_worker
        self.now = now
        self.name = f"ingest-{index}"
        self._queue: queue.SimpleQueue[mqtt.MQTTMessage | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: mqtt.Client | None = None
        self.processor: MessageProcessor | None = None
        self.connected = threading.Event()
        # Set on SUBACK: only then does the broker route batches to this worker.
        self.subscribed = threading.Event()
        self.ready = threading.Event()
        self.error: BaseException | None = None

    @property
    def counters(self) -> IngestCounters:
        return self.processor.counters if self.processor else IngestCounters()

    # ---------------------------------------------------------------- MQTT side
    def _make_client(self) -> mqtt.Client:
        cfg = self.config.mqtt
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"{cfg.client_id}-{self.index}",
            protocol=mqtt.MQTTv5,
        )
        client.manual_ack_set(True)
        if cfg.ca is not None:
            client.tls_set(ca_certs=cfg.ca, certfile=cfg.cert, keyfile=cfg.key)
        if cfg.username is not None:
            client.username_pw_set(cfg.username, password(cfg))
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            _LOGGER.error(
                "ingest %s: broker refused the connection: %s", self.name, reason
            )
            return
        cfg = self.config.mqtt
        subs = [
            (
                f"$share/{cfg.shared_group}/{cfg.topic_prefix}/+/+/records",
                SubscribeOptions(qos=1),
            )
        ]
        if self.status_worker:
            subs += [
                (f"{cfg.topic_prefix}/+/+/status", SubscribeOptions(qos=1)),
                (f"{cfg.topic_prefix}/+/+/health", SubscribeOptions(qos=1)),
            ]
        client.subscribe(subs)
        self.connected.set()
        _LOGGER.info(
            "ingest %s: connected, subscribed to %d topics", self.name, len(subs)
        )

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: Any, _props: Any
    ) -> None:
        if any(r.is_failure for r in reasons):
            _LOGGER.error("ingest %s: subscription refused: %s", self.name, reasons)
            return
        self.subscribed.set()

    def _on_disconnect(self, *_args: Any) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if not self._stop.is_set():
            _LOGGER.warning(
                "ingest %s: disconnected from the broker; reconnecting", self.name
            )

    def _on_message(
        self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage
    ) -> None:
        self._queue.put(msg)

    # -------------------------------------------------------------- writer side
    def _writer(self) -> None:
        try:
            store = open_store(self.config.storage)
        except Exception as exc:  # noqa: BLE001 - reported to start() and the log
            self.error = exc
            self.ready.set()
            _LOGGER.error("ingest %s: cannot open storage: %s", self.name, exc)
            return
        self.processor = MessageProcessor(
            store,
            require_signatures=self.config.require_signatures,
            prefix=self.config.mqtt.topic_prefix,
            now=self.now,
        )
        self.ready.set()
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    break
                group = [first]
                while len(group) < GROUP_MAX:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        self._queue.put(None)
                        break
                    group.append(more)
                if not self._store_group(group):
                    break
        finally:
            store.close()

    def _store_group(self, group: list[mqtt.MQTTMessage]) -> bool:
        """Store a group in one transaction, then acknowledge it; False when stopping."""
        assert self.processor is not None
        delay = 0.5
        while True:
            try:
                self.processor.store_group([(m.topic, bytes(m.payload)) for m in group])
                break
            except Exception as exc:  # noqa: BLE001 - storage down: hold and retry
                self.processor.counters.store_errors += 1
                _LOGGER.error(
                    "ingest %s: storage error, retrying in %.1fs: %s",
                    self.name,
                    delay,
                    exc,
                )
                if self._stop.wait(delay):
                    return False
                delay = min(delay * 2, 30.0)
        client = self._client
        if client is not None:
            for msg in group:
                if msg.qos > 0:
                    client.ack(msg.mid, msg.qos)
        return True

    # ---------------------------------------------------------------- lifecycle
    def start(self, timeout_s: float = 10.0) -> None:
        self._thread = threading.Thread(
            target=self._writer, name=self.name, daemon=True
        )
        self._thread.start()
        self.ready.wait(timeout_s)
        if self.error is not None:
            raise self.error
        cfg = self.config.mqtt
        client = self._make_client()
        self._client = client
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = cfg.session_expiry_s
        props.ReceiveMaximum = cfg.receive_maximum
        client.connect_async(
            cfg.host, cfg.port, cfg.keepalive_s, clean_start=False, properties=props
        )
        client.loop_start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        client = self._client
        if client is not None:
            with contextlib.suppress(Exception):
                client.disconnect()
            client.loop_stop()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._client = None
