"""Shell: the `bluegate-beacon run` daemon (composition root of the beacon).

One asyncio loop:

    at each slot boundary: key (re-read if `enroll --rekey` replaced it) ->
    plan.advert_at(now) -> advertiser.show() (unregister + register a new object:
    new ID, and for "broadcast" a new random address)
    -> health rule -> WATCHDOG=1 only while healthy -> STATUS / MQTT health

Under systemd (Type=notify, WatchdogSec) through `gateway.systemd.Notifier`, like the
gateway: READY=1 once the first advertisement is registered, STATUS with the slot,
WATCHDOG=1 while healthy, STOPPING=1 on SIGTERM/SIGINT (the advertisement is
withdrawn before exit). SIGHUP re-reads the configuration and the key file; an
invalid new configuration is logged and the running one kept.

Health rule (pure, `assess`): healthy while the advertisement of the current slot
is registered with BlueZ; a failure is retried every `advertising.retry_s`, and
after `FAIL_GIVE_UP_S` of failures the watchdog pings stop so systemd restarts the
service (which also restarts the D-Bus connection). A stalled loop stops the pings
by itself because no tick runs.

Time is injected (`Clock`), so the tests drive the daemon across slot boundaries
in virtual time against a real dbus-daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from beacon import keystore, plan
from beacon.advertiser import AdvertiseError, BluezAdvertiser
from beacon.config import BeaconConfig, load_beacon_config
from gateway.errors import EXIT_FAILURE, EXIT_OK, BlueGateError, ConfigError
from gateway.systemd import Notifier

_LOGGER = logging.getLogger(__name__)

FAIL_GIVE_UP_S = 120.0
# A slot boundary is acted on this long after it passed, so that a wall clock read
# a hair early never computes the old slot again.
BOUNDARY_SLACK_S = 0.005


class Clock(Protocol):
    def wall(self) -> float: ...

    def mono(self) -> float: ...

    async def sleep(self, seconds: float, wake: asyncio.Event) -> None: ...


class SystemClock:
    def wall(self) -> float:
        return time.time()

    def mono(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float, wake: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=max(0.0, seconds))


@dataclass(frozen=True, slots=True)
class Health:
    healthy: bool
    reason: str


def assess(
    registered: bool, failing_since_s: float | None, now_s: float, give_up_s: float
) -> Health:
    """Pure: is the beacon doing its job (the current slot's advert registered)?"""
    if registered:
        return Health(True, "advertising")
    if failing_since_s is None:
        return Health(True, "starting")
    failing = now_s - failing_since_s
    if failing >= give_up_s:
        return Health(False, f"not advertising for {failing:.0f}s")
    return Health(True, f"retrying ({failing:.0f}s)")


class StatusSink(Protocol):
    def online(self, body: dict[str, Any]) -> None: ...

    def health(self, body: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class BeaconApp:
    def __init__(
        self,
        cfg: BeaconConfig,
        advertiser: BluezAdvertiser,
        *,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
        status: StatusSink | None = None,
        reload: Callable[[], BeaconConfig] | None = None,
    ) -> None:
        self.cfg = cfg
        self.advertiser = advertiser
        self.clock = clock or SystemClock()
        self.notifier = notifier or Notifier()
        self.status = status
        self._reload = reload
        self.keys = keystore.KeyWatcher(cfg.key_file) if cfg.key_file else None
        self.stop = asyncio.Event()
        self.wake = asyncio.Event()
        self.reload_requested = False
        self.force_show = False
        self.ready_sent = False
        self.failing_since: float | None = None
        self.next_retry = 0.0
        self.next_health = 0.0
        self.health = Health(True, "starting")
        self.ticks = 0

    # -- one tick

    def wanted(self, now: float) -> plan.Advert:
        if self.cfg.scheme == "bluezone":
            assert self.keys is not None
            key = self.keys.current()
            return plan.advert_at(self.cfg, now, key.base_key, key.created)
        return plan.advert_at(self.cfg, now)

    async def tick(self) -> None:
        self.ticks += 1
        now = self.clock.wall()
        mono = self.clock.mono()
        if self.reload_requested:
            self.reload_requested = False
            self._apply_reload()
        try:
            advert = self.wanted(now)
        except (ValueError, ConfigError) as exc:
            # A clock before the key's date, or a broken key file: not advertising.
            advert = None
            self._failed(mono, f"no advertisement: {exc}")
        showing = self.advertiser.showing()
        change = showing is None or showing.key != advert.key if advert else False
        due = mono >= self.next_retry or showing is not None
        if advert is not None and (change or self.force_show) and due:
            try:
                await self.advertiser.show(advert)
                self.failing_since = None
                self.force_show = False
            except AdvertiseError as exc:
                self._failed(mono, str(exc))
        self.health = assess(
            self.advertiser.registered, self.failing_since, mono, FAIL_GIVE_UP_S
        )
        current = self.advertiser.showing()
        if current is not None and not self.ready_sent:
            self.ready_sent = True
            self.notifier.ready(self._status_line(current))
            if self.status is not None:
                self.status.online(self._status_body())
        if self.health.healthy:
            self.notifier.watchdog()
        self.notifier.status(self._status_line(current))
        if self.status is not None and mono >= self.next_health:
            self.next_health = mono + self.cfg.health_interval_s
            self.status.health(self._health_body(now))

    def _failed(self, mono: float, reason: str) -> None:
        if self.failing_since is None:
            self.failing_since = mono
        self.next_retry = mono + self.cfg.advertising.retry_s
        _LOGGER.error("advertising failed: %s", reason)

    def _apply_reload(self) -> None:
        if self._reload is None:
            return
        try:
            new = self._reload()
        except ConfigError as exc:
            _LOGGER.error("reload refused, keeping the running configuration: %s", exc)
            return
        self.cfg = new
        self.advertiser.cfg = new.advertising
        self.keys = keystore.KeyWatcher(new.key_file) if new.key_file else None
        # Show the (possibly changed) advertisement at once.
        self.force_show = True
        self.next_retry = 0.0
        _LOGGER.warning("configuration reloaded")

    def _status_line(self, advert: plan.Advert | None) -> str:
        if advert is None:
            return f"not advertising: {self.health.reason}"
        if advert.slot is None:
            return f"advertising {self.cfg.scheme} ({self.advertiser.registrations} registrations)"
        return (
            f"advertising {self.cfg.scheme} slot {advert.slot} "
            f"({self.advertiser.registrations} registrations, "
            f"{self.advertiser.failures} failures)"
        )

    def _status_body(self) -> dict[str, Any]:
        return {
            "status": "online",
            "kind": "beacon",
            "beacon": self.cfg.beacon,
            "zone": self.cfg.zone.name,
            "zone_kind": self.cfg.zone.kind,
            "scheme": self.cfg.scheme,
        }

    def _health_body(self, now: float) -> dict[str, Any]:
        current = self.advertiser.showing()
        body: dict[str, Any] = {
            "t": now,
            "kind": "beacon",
            "healthy": self.health.healthy,
            "reason": self.health.reason,
            "advertising": current is not None,
            "slot": None if current is None else current.slot,
            "registrations": self.advertiser.registrations,
            "failures": self.advertiser.failures,
            "last_error": self.advertiser.last_error,
        }
        if self.keys is not None:
            try:
                body["key"] = self.keys.current().fingerprint
            except (OSError, ConfigError):
                body["key"] = None
        return body

    # -- the loop

    def next_wake(self) -> float:
        """Seconds until the next thing to do: slot boundary, ping, health, retry."""
        now = self.clock.wall()
        mono = self.clock.mono()
        waits = [self.cfg.health_interval_s]
        current = self.advertiser.showing()
        if current is not None and current.slot_end is not None:
            waits.append(current.slot_end - now + BOUNDARY_SLACK_S)
        if current is None:
            waits.append(self.next_retry - mono)
        ping = self.notifier.ping_interval_s
        if ping is not None:
            waits.append(ping)
        if self.status is not None:
            waits.append(self.next_health - mono)
        return max(0.0, min(waits))

    def request_stop(self) -> None:
        self.stop.set()
        self.wake.set()

    def request_reload(self) -> None:
        self.reload_requested = True
        self.wake.set()

    async def run(self) -> int:
        try:
            while not self.stop.is_set():
                await self.tick()
                if self.stop.is_set():
                    break
                await self.clock.sleep(self.next_wake(), self.wake)
                self.wake.clear()
        finally:
            self.notifier.stopping("stopping: withdrawing the advertisement")
            try:
                await self.advertiser.close()
            except AdvertiseError as exc:
                _LOGGER.warning("closing: %s", exc)
            if self.status is not None:
                self.status.close()
        return EXIT_OK


class MqttStatus:
    """Retained `status` (last will: offline) and periodic `health` over MQTT."""

    def __init__(self, cfg: BeaconConfig) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        from gateway.envelope import topic
        from gateway.publisher import STATUS_OFFLINE, read_password, tls_context

        assert cfg.mqtt is not None
        m = cfg.mqtt
        prefix = m.topic_prefix
        self.status_topic = topic(prefix, cfg.site, cfg.beacon, "status")
        self.health_topic = topic(prefix, cfg.site, cfg.beacon, "health")
        self._offline = STATUS_OFFLINE
        self._online: bytes | None = None
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"bluegate-{cfg.site}-{cfg.beacon}",
            protocol=mqtt.MQTTv5 if m.protocol == "5" else mqtt.MQTTv311,
        )
        self.client.will_set(self.status_topic, STATUS_OFFLINE, qos=1, retain=True)
        ctx = tls_context(m)
        if ctx is not None:
            self.client.tls_set_context(ctx)
        if m.username is not None:
            self.client.username_pw_set(
                m.username, read_password(m.password_file) if m.password_file else None
            )
        self.client.reconnect_delay_set(int(m.reconnect_min_s), int(m.reconnect_max_s))
        self.client.on_connect = self._on_connect
        self.client.connect_async(m.host, m.port, keepalive=m.keepalive_s)
        self.client.loop_start()

    def _on_connect(
        self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any = None
    ) -> None:
        # Again after every reconnect: the broker published our will meanwhile.
        if self._online is not None:
            client.publish(self.status_topic, self._online, qos=1, retain=True)

    def online(self, body: dict[str, Any]) -> None:
        self._online = json.dumps(body, sort_keys=True).encode()
        self.client.publish(self.status_topic, self._online, qos=1, retain=True)

    def health(self, body: dict[str, Any]) -> None:
        self.client.publish(self.health_topic, json.dumps(body, sort_keys=True), qos=0)

    def close(self) -> None:
        info = self.client.publish(self.status_topic, self._offline, qos=1, retain=True)
        with contextlib.suppress(RuntimeError, ValueError):
            info.wait_for_publish(timeout=2.0)
        self.client.disconnect()
        self.client.loop_stop()


def run_daemon(
    config_path: str, cfg: BeaconConfig, *, bus_address: str | None = None
) -> int:
    """`bluegate-beacon run`: set up logging, signals, and run until SIGTERM."""
    from gateway.systemd import setup_logging

    setup_logging(
        "bluegate-beacon", {"SITE": cfg.site, "BEACON": cfg.beacon}, cfg.log_level
    )
    if cfg.key_file is not None:
        keystore.load_key(cfg.key_file)  # fail fast (exit 78) on a missing key

    async def main() -> int:
        advertiser = BluezAdvertiser(
            cfg.adapter, cfg.advertising, bus_address=bus_address
        )
        try:
            await advertiser.connect()
            await advertiser.check_adapter()
        except AdvertiseError as exc:
            await advertiser.close()
            raise BlueGateError(str(exc)) from None
        status = MqttStatus(cfg) if cfg.mqtt is not None else None
        app = BeaconApp(
            cfg,
            advertiser,
            status=status,
            reload=lambda: load_beacon_config(config_path),
        )
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, app.request_stop)
        loop.add_signal_handler(signal.SIGINT, app.request_stop)
        loop.add_signal_handler(signal.SIGHUP, app.request_reload)
        return await app.run()

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return EXIT_FAILURE
