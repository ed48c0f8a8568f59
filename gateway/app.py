"""Shell: the `bluegate-gateway run` daemon, the composition root (style.md §3.3).

One thread owns the tick loop and SQLite:

  source.poll(tick) -> pipeline.feed -> pipeline.flush(now) -> outbox.append_many
  (one transaction per tick) -> publisher.pump() -> health gate -> WATCHDOG=1

Time (design.md): records made while the wall clock is not synchronised leave the
pipeline at once (`take_held()`) and are committed in the tick's transaction as HELD
rows, which are never published; a power cut loses none of them. The tick on which
the clock synchronises, the pipeline returns the offset learnt then and the outbox
rebases this boot's held rows with it (`outbox.rebase`); the next boot releases what
an earlier boot left held, unrebased.

Signals use the self-pipe trick (`signal.set_wakeup_fd` on a socketpair): handlers do
nothing but wake the loop, which acts between ticks, so a signal can never interrupt
a half-written tick.

- SIGTERM/SIGINT: STOPPING=1, the aggregator's open stays are closed and committed to
  the outbox, delivery is tried until `STOP_DELIVER_BY_S`, exit 0 inside 5 s. What is
  not delivered stays in the outbox for the next start (or `drain`), which delivers
  it before anything new (the outbox claims in `(boot, seq)` order).
- SIGHUP: RELOADING=1, the file is read and validated again. Invalid: keep running on
  the old configuration and say why (log and STATUS). Valid: the safe subset is applied
  in place; other changes reopen the parts they concern after committing everything
  the old parts held, so no record is lost. READY=1 again.
- Remote settings (retained MQTT, gateway/remote_config.py) apply like a SIGHUP of
  the safe subset; the outcome is published retained on `<unit>/status/config`.

With a recorded source (`jsonl:`, `btsnoop:`) the recording plays at its own pace,
shifted so that its first report is "now" (design.md), then the daemon stays up idle.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import logging
import os
import select
import signal
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, cast

from gateway import remote_config, systemd
from gateway.config import GatewayConfig, load_gateway_config
from gateway.errors import EXIT_FAILURE, EXIT_OK, BlueGateError, ConfigError
from gateway.health import Action, HealthGate, HealthPolicy, Observation, Verdict
from gateway.models import Report

_LOGGER = logging.getLogger(__name__)

# SIGTERM must end the process within 5 s (the unit allows 15 s before SIGKILL):
# closing the scanner takes up to ~2 s (bluepy-helper's scan end), the commit is
# instant, delivery gets what remains until STOP_DELIVER_BY_S, and the publisher's
# goodbye (retained `offline`) at most STOP_PUBLISHER_S.
STOP_DELIVER_BY_S: Final = 3.3
STOP_PUBLISHER_S: Final = 1.0
# STATUS= is refreshed at most this often (`systemctl status` shows it).
STATUS_EVERY_S: Final = 5.0
# The retained `health` message (design.md, MQTT): once a minute.
HEALTH_EVERY_S: Final = 60.0
# Retention purge of the outbox (privacy limit, README "Privacy"); cheap, so hourly.
PURGE_EVERY_S: Final = 3600.0
CPU_TEMP_PATH: Final = "/sys/class/thermal/thermal_zone0/temp"
# Never ping the watchdog more often than this, whatever WatchdogSec says.
MIN_PING_EVERY_S: Final = 0.5
RECORDED_PREFIXES: Final = ("jsonl:", "btsnoop:")


# -- the parts, as the loop sees them --------------------------------------------


class Source(Protocol):
    @property
    def ended(self) -> bool: ...

    def poll(self, timeout_s: float) -> list[Report]: ...

    def close(self) -> None: ...


class Pipeline(Protocol):
    def feed(self, reports: Sequence[Report]) -> Any: ...

    def flush(self, now: float) -> list[dict[str, Any]]: ...


class Outbox(Protocol):
    def append_many(
        self,
        records: Sequence[Mapping[str, Any]],
        now_wall: float,
        held: Sequence[Any] = (),
    ) -> list[int]: ...

    def rebase(self, offset_s: float, now_wall: float) -> int: ...

    def pending(self) -> int: ...

    def purge(self, now_wall: float) -> Any: ...

    def stats(self) -> Any: ...

    def close(self) -> None: ...


class Publisher(Protocol):
    """gateway.publisher.Publisher as the loop uses it."""

    def start(self) -> None: ...

    def stop(self, timeout_s: float = 3.0) -> None: ...

    def pump(self, now_wall: float, wait_s: float = 0.0) -> int: ...

    def subscribe(self, topic_filter: str, qos: int = 1) -> None: ...

    def publish_status(self, payload: bytes) -> bool: ...

    def publish_health(self, payload: Mapping[str, Any]) -> bool: ...

    def stats(self) -> Any: ...


MessageHandler = Callable[[str, bytes, bool], None]


@dataclass(slots=True)
class Parts:
    source: Source
    pipeline: Pipeline
    outbox: Outbox
    publisher: Publisher | None


@dataclass(frozen=True, slots=True)
class Factories:
    """How the daemon builds its parts; tests inject their own."""

    source: Callable[[GatewayConfig], Source]
    pipeline: Callable[[GatewayConfig], Pipeline]
    outbox: Callable[[GatewayConfig], Outbox]
    publisher: Callable[[GatewayConfig, Outbox, MessageHandler], Publisher | None]


# -- recorded sources: play at their own pace, shifted to now ---------------------


class PacedSource:
    """Wraps a recorded source so reports come out when their time is due.

    Report times are shifted by (start wall - first report's t), so records carry
    today's times; `wait(timeout_s)` is the daemon's interruptible sleep.
    """

    def __init__(
        self,
        inner: Source,
        *,
        wall: Callable[[], float],
        mono: Callable[[], float],
        wait: Callable[[float], None],
    ) -> None:
        self.inner = inner
        self._wall = wall
        self._mono = mono
        self._wait = wait
        self._buf: deque[Report] = deque()
        self._t0: float | None = None  # first report's own time
        self._start_mono = mono()
        self._shift_s = 0.0
        self.alive = True
        self.played = 0

    @property
    def ended(self) -> bool:
        return not self._buf and self.inner.ended

    def _fill(self) -> None:
        while not self._buf and not self.inner.ended:
            batch = self.inner.poll(0.0)
            self._buf.extend(batch)
            if not batch:
                break  # nothing yet (or the end): try again next poll
        if self._t0 is None and self._buf:
            self._t0 = self._buf[0].t
            self._start_mono = self._mono()
            self._shift_s = self._wall() - self._t0

    def poll(self, timeout_s: float) -> list[Report]:
        deadline = self._mono() + timeout_s
        out: list[Report] = []
        while True:
            self._fill()
            if not self._buf:
                break
            assert self._t0 is not None
            due_mono = self._start_mono + (self._buf[0].t - self._t0)
            now = self._mono()
            if due_mono <= now:
                report = self._buf.popleft()
                out.append(dataclasses.replace(report, t=report.t + self._shift_s))
                continue
            if due_mono >= deadline:
                # Like a live scan, one poll is one tick: the tick's reports go out
                # together at its end (one outbox transaction per tick).
                self._wait(deadline - now)
                break
            self._wait(due_mono - now)
        if not out and self.ended:
            self._wait(max(deadline - self._mono(), 0.0))
        self.played += len(out)
        return out

    def close(self) -> None:
        self.inner.close()


# -- default factories: the only place the other shells are imported --------------


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise BlueGateError(f"this build lacks {name} ({exc})") from exc


def open_source_for(cfg: GatewayConfig) -> Source:
    sources = _module("gateway.sources")
    options: dict[str, Any] = {}
    if cfg.source.startswith("bluepy:"):
        options["active"] = cfg.scan.active
    return cast(Source, sources.open_source(cfg.source, gateway=cfg.gateway, **options))


def open_pipeline_for(cfg: GatewayConfig) -> Pipeline:
    mod = _module("gateway.pipeline")
    gatt = None
    if cfg.source.startswith("bluepy:") and cfg.gatt.enabled:
        # iPhones running Bluezone are only identified by a GATT read (issue 2).
        gatt_mod = _module("gateway.gatt")
        reader_mod = _module("gateway.gatt_bluepy")
        reader = reader_mod.BluepyGattReader(
            cfg.source.split(":", 1)[1],
            connect_timeout_s=cfg.gatt.connect_timeout_s,
        )
        gatt = gatt_mod.GattResolver(reader, gatt_mod.GattPolicy.from_config(cfg.gatt))
    return cast(Pipeline, mod.EdgePipeline(cfg, gatt=gatt, tick_s=cfg.scan.tick_s))


def open_outbox_for(cfg: GatewayConfig) -> Outbox:
    mod = _module("gateway.outbox")
    return cast(
        Outbox,
        mod.open_outbox(
            cfg.outbox.path,
            max_mb=cfg.outbox.max_mb,
            retention_days=cfg.outbox.retention_days,
            synchronous=cfg.outbox.synchronous,
        ),
    )


def open_publisher_for(
    cfg: GatewayConfig, outbox: Outbox, on_message: MessageHandler
) -> Publisher | None:
    keys = _module("gateway.keys")
    publisher_mod = _module("gateway.publisher")
    key = keys.load_signing_key(cfg.identity.dir)
    if key is None:
        _LOGGER.warning(
            "no signing key in %s: batches go out unsigned (run `bluegate-gateway "
            "enroll`)",
            cfg.identity.dir,
        )
    return cast(
        Publisher, publisher_mod.Publisher(cfg, outbox, key, on_message=on_message)
    )


DEFAULT_FACTORIES: Final = Factories(
    source=open_source_for,
    pipeline=open_pipeline_for,
    outbox=open_outbox_for,
    publisher=open_publisher_for,
)


def _final_flush(pipeline: Pipeline, now_wall: float) -> list[dict[str, Any]]:
    """Close every open stay (shutdown or a pipeline rebuild): what flush(now) has
    not yet released, plus the stays still open."""
    records = list(pipeline.flush(now_wall))
    close_all = getattr(pipeline, "close_all", None)
    if callable(close_all):
        records += list(close_all(now_wall))
    gatt = getattr(pipeline, "gatt", None)
    if gatt is not None and callable(getattr(gatt, "close", None)):
        gatt.close()
    return records


def _take_held(pipeline: Pipeline) -> list[Any]:
    """Records the pipeline made on an unsynchronised clock (gateway.clock.Held)."""
    take = getattr(pipeline, "take_held", None)
    return list(take()) if callable(take) else []


def _reconfigure(pipeline: Pipeline, cfg: GatewayConfig) -> bool:
    method = getattr(pipeline, "reconfigure", None)
    if callable(method):
        method(cfg)
        return True
    return False


def policy_for(cfg: GatewayConfig) -> HealthPolicy:
    return HealthPolicy(
        loop_stall_s=cfg.health.loop_stall_s,
        quiet_s=cfg.scan.quiet_restart_s,
        grace_s=cfg.health.grace_s,
        poll_stall_s=cfg.health.poll_stall_s,
        outbox_fail_s=cfg.health.outbox_fail_s,
    )


# -- the daemon -------------------------------------------------------------------


@dataclass(slots=True)
class Counters:
    reports: int = 0
    records: int = 0
    ticks: int = 0
    reloads: int = 0
    reloads_rejected: int = 0
    remote_applied: int = 0
    remote_rejected: int = 0
    scanner_restarts: int = 0
    adapter_resets: int = 0
    recent: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=64))

    def rate_per_s(self, now_mono: float, window_s: float = 10.0) -> float:
        total = sum(n for t, n in self.recent if now_mono - t <= window_s)
        return total / window_s


class Daemon:
    def __init__(
        self,
        config_path: str,
        cfg: GatewayConfig,
        *,
        factories: Factories = DEFAULT_FACTORIES,
        notifier: systemd.Notifier | None = None,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        remote: bool = True,
    ) -> None:
        self.config_path = config_path
        self.file_cfg = cfg
        self.cfg = cfg
        self.factories = factories
        self.notifier = notifier or systemd.Notifier()
        self.wall = wall
        self.mono = mono
        self.use_remote = remote and cfg.health.remote_config
        self.remote_state = remote_config.RemoteState(cfg)
        self.remote_inbox: deque[tuple[str, bytes]] = deque(maxlen=16)
        self.remote_outcome: bytes | None = None  # retained status to (re)publish
        self.remote_outcome_connects = -1
        self.counters = Counters()
        self.parts: Parts | None = None
        self.unsaved: list[dict[str, Any]] = []  # records a failed commit left
        self.unsaved_held: list[Any] = []  # held records a failed commit left
        # wall - mono learnt when the clock synchronised, until the outbox rebased
        # this boot's held rows with it.
        self.rebase_offset: float | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._stop = False
        self._reload = False
        self.started_mono = mono()
        self.gate = HealthGate(policy_for(cfg), self.started_mono)
        self.loop_at = self.started_mono
        self.poll_at: float | None = None
        self.heard_at: float | None = None
        self.beacon_at: float | None = None
        self.outbox_failing_since: float | None = None
        self.last_ping = float("-inf")
        self.last_status = float("-inf")
        self.last_health = float("-inf")
        self.last_purge = float("-inf")
        self.verdict: Verdict | None = None

    # -- signals (self-pipe)

    def install_signals(self) -> None:
        for sock in (self._wake_r, self._wake_w):
            sock.setblocking(False)
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            # The handler only exists so the default action (death) is not taken;
            # the wakeup fd carries the signal number to the loop.
            signal.signal(sig, lambda signum, frame: None)

    def restore_signals(self) -> None:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)

    def _drain_wakeups(self) -> None:
        while True:
            try:
                data = self._wake_r.recv(64)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                return
            for signum in data:
                if signum in (signal.SIGTERM, signal.SIGINT):
                    self._stop = True
                elif signum == signal.SIGHUP:
                    self._reload = True

    def wait(self, timeout_s: float) -> None:
        """Sleep up to timeout_s, woken at once by a signal."""
        if timeout_s <= 0:
            return
        select.select([self._wake_r], [], [], timeout_s)

    # -- life cycle

    def open_parts(self, cfg: GatewayConfig) -> Parts:
        outbox = self.factories.outbox(cfg)
        try:
            source = self._open_source(cfg)
            pipeline = self.factories.pipeline(cfg)
            self._observe_clock(pipeline, self.mono(), self.wall())
            publisher = self._start_publisher(cfg, outbox)
        except BaseException:
            outbox.close()
            raise
        return Parts(source, pipeline, outbox, publisher)

    def _start_publisher(self, cfg: GatewayConfig, outbox: Outbox) -> Publisher | None:
        publisher = self.factories.publisher(cfg, outbox, self._on_message)
        if publisher is None:
            return None
        publisher.start()
        if self.use_remote:
            prefix = cfg.mqtt.topic_prefix
            publisher.subscribe(remote_config.fleet_topic(prefix, cfg.site))
            publisher.subscribe(remote_config.unit_topic(prefix, cfg.site, cfg.gateway))
        return publisher

    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        # Called from publisher.pump() on this thread; applied after the pump.
        self.remote_inbox.append((topic, payload))

    def _open_source(self, cfg: GatewayConfig) -> Source:
        source = self.factories.source(cfg)
        if cfg.source.startswith(RECORDED_PREFIXES):
            return PacedSource(source, wall=self.wall, mono=self.mono, wait=self.wait)
        return source

    def run(self) -> int:
        self.install_signals()
        try:
            self.parts = self.open_parts(self.cfg)
            pending = self.parts.outbox.pending()
            _LOGGER.info(
                "running: site=%s gateway=%s zone=%s source=%s, %d records waiting",
                self.cfg.site,
                self.cfg.gateway,
                self.cfg.zone.name,
                self.cfg.source,
                pending,
            )
            self.notifier.ready(self.status_text())
            while not self._stop:
                self.tick()
                self._drain_wakeups()
                if self._reload and not self._stop:
                    self._reload = False
                    self.reload()
            return self.shutdown()
        finally:
            self.restore_signals()
            self._wake_r.close()
            self._wake_w.close()

    def tick(self) -> None:
        parts = self.parts
        assert parts is not None
        tick_s = self.cfg.scan.tick_s
        reports = parts.source.poll(tick_s)
        now_mono = self.mono()
        now_wall = self.wall()
        self.poll_at = now_mono
        if reports:
            self.heard_at = now_mono
            self.counters.reports += len(reports)
            self.counters.recent.append((now_mono, len(reports)))
        self._note_liveness(parts.source)
        self._observe_clock(parts.pipeline, now_mono, now_wall)
        parts.pipeline.feed(reports)
        self._commit(parts, parts.pipeline.flush(now_wall), now_wall, now_mono)
        self._note_beacon(parts.pipeline, now_mono)
        if parts.publisher is not None:
            parts.publisher.pump(now_wall)
        self._remote_events()
        health_due = now_mono - self.last_health >= HEALTH_EVERY_S
        if health_due and parts.publisher is not None:
            payload = self.health_payload(now_mono, now_wall)
            if parts.publisher.publish_health(payload):
                self.last_health = now_mono
        self._purge(parts, now_mono, now_wall)
        self.loop_at = self.mono()
        self.counters.ticks += 1
        self._health(parts, self.loop_at)

    def _observe_clock(
        self, pipeline: Pipeline, now_mono: float, now_wall: float
    ) -> None:
        """Live reports carry the receiver's wall clock: tell the pipeline how it
        relates to monotonic time and whether it is synchronised (design.md, Time).
        Also called as soon as a pipeline is built, before its first poll, so that a
        step during that poll is seen as a step. A recording keeps its own time."""
        if self.cfg.source.startswith(RECORDED_PREFIXES):
            return
        observe = getattr(pipeline, "observe_clock", None)
        if callable(observe):
            synced_offset = observe(now_mono, now_wall, systemd.clock_synchronised())
            if isinstance(synced_offset, float):
                self.rebase_offset = synced_offset

    def _purge(self, parts: Parts, now_mono: float, now_wall: float) -> None:
        """Apply the outbox's retention limit, but only against a trustworthy clock:
        an unsynchronised Pi may believe it is years ahead and purge fresh records."""
        if now_mono - self.last_purge < PURGE_EVERY_S:
            return
        recorded = self.cfg.source.startswith(RECORDED_PREFIXES)
        if not recorded and not systemd.clock_synchronised():
            return
        self.last_purge = now_mono
        try:
            result = parts.outbox.purge(now_wall)
        except BlueGateError as exc:
            _LOGGER.warning("outbox retention purge failed: %s", exc)
            return
        _LOGGER.debug("outbox retention purge: %s", result)

    def _commit(
        self,
        parts: Parts,
        records: list[dict[str, Any]],
        now_wall: float,
        now_mono: float,
    ) -> None:
        """One outbox transaction for the tick (ready and held records); on failure
        keep the records for later. Then, if the clock has synchronised, the rebase."""
        batch = self.unsaved + records
        held = self.unsaved_held + _take_held(parts.pipeline)
        if batch or held:
            try:
                parts.outbox.append_many(batch, now_wall, held)
            except BlueGateError as exc:
                self.unsaved, self.unsaved_held = batch, held
                if self.outbox_failing_since is None:
                    self.outbox_failing_since = now_mono
                _LOGGER.error(
                    "outbox write failed (%d records kept in memory): %s",
                    len(batch) + len(held),
                    exc,
                )
                return
            self.unsaved, self.unsaved_held = [], []
            self.outbox_failing_since = None
            self.counters.records += len(batch) + len(held)
        if self.rebase_offset is not None:
            # After the append, so held records of this very tick are rebased too.
            try:
                n = parts.outbox.rebase(self.rebase_offset, now_wall)
            except BlueGateError as exc:
                _LOGGER.error("outbox rebase failed (tried again next tick): %s", exc)
                return
            self.rebase_offset = None
            if n:
                _LOGGER.info("clock synchronised: %d held records rebased", n)

    def _note_liveness(self, source: Source) -> None:
        last = getattr(source, "last_report_mono", None)
        if isinstance(last, float) and (self.heard_at is None or last > self.heard_at):
            self.heard_at = last

    def _note_beacon(self, pipeline: Pipeline, now_mono: float) -> None:
        # The aggregator excludes this site's beacons from people and notes when one
        # was last heard (issue 3, occupancy): our positive proof that the radio works.
        seen = getattr(pipeline, "site_beacon_heard", None)
        if callable(seen):
            seen = seen()
        if seen:
            self.beacon_at = now_mono

    def _health(self, parts: Parts, now_mono: float) -> None:
        source = parts.source
        alive = getattr(source, "alive", True)
        obs = Observation(
            now_s=now_mono,
            loop_at_s=self.loop_at,
            scanner_alive=bool(alive),
            poll_at_s=self.poll_at,
            heard_at_s=self.heard_at,
            beacon_at_s=self.beacon_at,
            expects_beacon=bool(self.cfg.site_beacons),
            outbox_failing_since_s=self.outbox_failing_since,
        )
        verdict = self.gate.assess(obs)
        if verdict.action is not Action.NONE:
            self._act(source, verdict)
        was_healthy = self.verdict is None or self.verdict.healthy
        if was_healthy and not verdict.healthy:
            _LOGGER.error(
                "unhealthy, watchdog pings stopped (systemd will restart): %s",
                verdict.summary,
            )
        self.verdict = verdict
        interval = self.notifier.ping_interval_s
        ping_every = (
            None if interval is None else max(min(interval, 5.0), MIN_PING_EVERY_S)
        )
        if (
            verdict.healthy
            and ping_every is not None
            and now_mono - self.last_ping >= ping_every
        ):
            self.notifier.watchdog()
            self.last_ping = now_mono
        if now_mono - self.last_status >= STATUS_EVERY_S or not verdict.healthy:
            self.notifier.status(self.status_text())
            self.last_status = now_mono

    def _act(self, source: Source, verdict: Verdict) -> None:
        _LOGGER.warning("health: %s -> %s", verdict.summary, verdict.action.value)
        try:
            if verdict.action is Action.RESTART_SCANNER:
                self.counters.scanner_restarts += 1
                restart = getattr(source, "restart", None)
                if callable(restart):
                    restart()
            elif verdict.action is Action.RESET_ADAPTER:
                self.counters.adapter_resets += 1
                reset = getattr(source, "reset_adapter", None)
                if callable(reset):
                    reset()
        except BlueGateError as exc:
            _LOGGER.error("health: %s failed: %s", verdict.action.value, exc)

    def health_payload(self, now_mono: float, now_wall: float) -> dict[str, Any]:
        """The periodic `health` message: what ops need to see a unit is well."""
        parts = self.parts
        assert parts is not None
        from gateway import __version__

        payload: dict[str, Any] = {
            "t": round(now_wall, 3),
            "version": __version__,
            "uptime_s": round(now_mono - self.started_mono, 1),
            "adv_per_s": round(self.counters.rate_per_s(now_mono), 2),
            "reports": self.counters.reports,
            "records": self.counters.records,
            "clock_synced": systemd.clock_synchronised(),
            "healthy": self.verdict.healthy if self.verdict else True,
            "health": self.verdict.summary if self.verdict else "ok",
            "scanner_restarts": self.counters.scanner_restarts,
            "adapter_resets": self.counters.adapter_resets,
            "reloads": self.counters.reloads,
            "remote_config": {
                "applied": self.counters.remote_applied,
                "rejected": self.counters.remote_rejected,
            },
        }
        stats = getattr(parts.pipeline, "stats", None)
        if callable(stats):
            pipe = stats()
            payload["decode_rejects"] = pipe.get("rejected", {})
            payload["pipeline"] = {
                k: v for k, v in pipe.items() if k not in ("rejected",)
            }
        with contextlib.suppress(BlueGateError, AttributeError):
            payload["outbox"] = parts.outbox.stats().as_health(now_wall)
        if parts.publisher is not None:
            with contextlib.suppress(AttributeError):
                payload["mqtt"] = parts.publisher.stats().as_health()
        with (
            contextlib.suppress(OSError, ValueError),
            open(CPU_TEMP_PATH, encoding="ascii") as fh,
        ):
            payload["cpu_temp_c"] = int(fh.read().strip()) / 1000
        return payload

    def status_text(self) -> str:
        parts = self.parts
        now = self.mono()
        text = f"{self.counters.rate_per_s(now):.1f} adv/s, {self.counters.records} records"
        if parts is not None:
            try:
                stats = parts.outbox.stats()
                age = stats.oldest_age_s(self.wall())
                text += f", outbox {stats.depth}"
                if age is not None:
                    text += f" (oldest {age:.0f}s)"
                if stats.held:
                    text += f", {stats.held} held for the clock"
            except (BlueGateError, AttributeError):
                text += f", outbox {parts.outbox.pending()}"
        verdict = self.verdict
        text += ", " + ("ok" if verdict is None else verdict.summary)
        return text

    # -- reload

    def reload(self) -> None:
        self.notifier.reloading()
        self.counters.reloads += 1
        try:
            new_file = load_gateway_config(self.config_path)
        except ConfigError as exc:
            self.counters.reloads_rejected += 1
            _LOGGER.error(
                "reload rejected, still running the old configuration: %s", exc
            )
            self.notifier.ready(f"reload rejected: {exc}")
            return
        self.file_cfg = new_file
        self.apply(self.remote_state.rebase(new_file), why="reload")
        self.notifier.ready(self.status_text())

    def apply(self, new: GatewayConfig, *, why: str) -> None:
        """Switch to `new` without losing a record."""
        old = self.cfg
        parts = self.parts
        assert parts is not None
        rebuild = set(remote_config.rebuild_keys(old, new))
        if "outbox" in rebuild and new.outbox.path != old.outbox.path:
            # Records in the old file would be stranded: a path change needs a restart.
            _LOGGER.warning(
                "%s: outbox.path changes only at restart (systemctl restart "
                "bluegate-gateway); keeping %s",
                why,
                old.outbox.path,
            )
            new = dataclasses.replace(new, outbox=old.outbox)
            rebuild = set(remote_config.rebuild_keys(old, new))
        now_wall = self.wall()
        identity = {"site", "gateway", "zone"} & rebuild
        if identity or not _reconfigure_if_safe(parts.pipeline, old, new, rebuild):
            # Commit every open stay under the old settings, then start afresh.
            self._commit(
                parts, _final_flush(parts.pipeline, now_wall), now_wall, self.mono()
            )
            parts.pipeline = self.factories.pipeline(new)
            self._observe_clock(parts.pipeline, self.mono(), self.wall())
        if rebuild & {"source", "scan.active", "gateway"}:
            parts.source.close()
            parts.source = self._open_source(new)
        if parts.publisher is not None and rebuild & {"mqtt", "site", "gateway"}:
            self._deliver_for(0.5)
            parts.publisher.stop()
            parts.publisher = self._start_publisher(new, parts.outbox)
        if new.log_level != old.log_level:
            systemd.set_level(new.log_level)
        if policy_for(new) != policy_for(old):
            self.gate.policy = policy_for(new)
        self.cfg = new
        changed = remote_config.changed_keys(old, new)
        _LOGGER.warning(
            "%s: applied %d changed keys: %s", why, len(changed), ", ".join(changed)
        )

    def _remote_events(self) -> None:
        while self.remote_inbox:
            topic, payload = self.remote_inbox.popleft()
            layer = remote_config.layer_of(
                topic, self.cfg.mqtt.topic_prefix, self.cfg.site, self.cfg.gateway
            )
            if layer is None:
                continue
            new, outcome = self.remote_state.receive(topic, layer, payload)
            if new is None:
                self.counters.remote_rejected += 1
                _LOGGER.error("remote settings rejected: %s", outcome.reason)
            else:
                self.counters.remote_applied += 1
                self.apply(new, why=f"remote {layer} settings")
            body = {"status": "online", "config": outcome.to_json(self.wall())}
            self.remote_outcome = json.dumps(body, sort_keys=True).encode()
            self.remote_outcome_connects = -1
        self._publish_outcome()

    def _publish_outcome(self) -> None:
        """The last outcome, retained on the unit's status topic (central reads
        `{"status": "online", ...}`); again after a reconnect, which resets it to
        plain `online`."""
        parts = self.parts
        if self.remote_outcome is None or parts is None or parts.publisher is None:
            return
        connects = getattr(parts.publisher.stats(), "connects", 0)
        if connects == self.remote_outcome_connects:
            return
        if parts.publisher.publish_status(self.remote_outcome):
            self.remote_outcome_connects = connects

    # -- stop

    def _deliver_for(self, budget_s: float) -> None:
        parts = self.parts
        if parts is None or parts.publisher is None:
            return
        deadline = self.mono() + budget_s
        while parts.outbox.pending() > 0 and self.mono() < deadline:
            parts.publisher.pump(self.wall(), wait_s=0.05)

    def shutdown(self) -> int:
        parts = self.parts
        assert parts is not None
        started = self.mono()
        self.notifier.stopping("stopping: committing open stays")
        _LOGGER.info("stopping: committing open stays, then delivering briefly")
        now_wall = self.wall()
        try:
            parts.source.close()
        except BlueGateError as exc:
            _LOGGER.warning("closing the source: %s", exc)
        self._commit(
            parts, _final_flush(parts.pipeline, now_wall), now_wall, self.mono()
        )
        self._deliver_for(max(started + STOP_DELIVER_BY_S - self.mono(), 0.0))
        unsaved = len(self.unsaved) + len(self.unsaved_held)
        status = EXIT_OK if not unsaved else EXIT_FAILURE
        if unsaved:
            _LOGGER.error("%d records could not be committed to the outbox", unsaved)
        left = parts.outbox.pending()
        if parts.publisher is not None:
            parts.publisher.pump(self.wall())  # record acks that arrived at the end
            parts.publisher.stop(timeout_s=STOP_PUBLISHER_S)
        parts.outbox.close()
        _LOGGER.info("stopped; %d records wait in the outbox for the next start", left)
        return status


def _reconfigure_if_safe(
    pipeline: Pipeline, old: GatewayConfig, new: GatewayConfig, rebuild: Iterable[str]
) -> bool:
    """Re-tune the pipeline in place when it can; False means rebuild it."""
    tuning = ("bands", "aggregation", "gate", "gatt", "site_beacons", "zone")
    if all(getattr(old, k) == getattr(new, k) for k in tuning):
        return True  # nothing the pipeline uses changed
    return _reconfigure(pipeline, new)


def run_daemon(config_path: str, cfg: GatewayConfig, *, verbose: int = 0) -> int:
    """`bluegate-gateway run`: set up logging, run the loop, return the exit status."""
    level = "debug" if verbose >= 2 else cfg.log_level
    where = systemd.setup_logging(
        "bluegate-gateway",
        {"SITE": cfg.site, "GATEWAY": cfg.gateway, "ZONE": cfg.zone.name},
        level,
    )
    _LOGGER.debug("logging to %s (pid %d)", where, os.getpid())
    return Daemon(config_path, cfg).run()
