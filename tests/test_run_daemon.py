"""A real `bluegate-gateway run` process under a test NOTIFY_SOCKET.

The only fake is the radio: bluepy's real Scanner talks to tests/fakes'
fake_bluepy_helper.py (pointed at by a sitecustomize in the child's PYTHONPATH).
The broker is a real Mosquitto, the outbox a real SQLite file, the notifications
real sd_notify datagrams to a socket bound by the test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway import envelope
from tests.fakes.adapter import FAKE
from tests.servers import Mosquitto

REPO = Path(__file__).resolve().parent.parent
GAEN_HEAD = "02011A03036FFD17166FFD"
DEVICES = 4


def gaen_adv(i: int) -> dict:
    return {
        "addr": f"5E:00:00:00:00:{i:02X}",
        "type": 2,
        "rssi": -58,
        "flags": 0,
        "data": GAEN_HEAD + f"{0xA0 + i:032X}" + "72033874",
    }


CONFIG = """\
site: mine-a
gateway: gw-t
zone: {{name: room-t, kind: shift_room}}
source: {source}
mqtt: {{host: 127.0.0.1, port: {port}}}
outbox: {{path: {tmp}/data/outbox.sqlite}}
identity: {{dir: {tmp}/keys}}
scan: {{tick_s: 0.2, quiet_restart_s: {quiet}}}
gatt: {{enabled: false}}
aggregation: {{min_stay_s: 0}}
bands: {{near_dbm: -75}}
health: {{grace_s: 1}}
log_level: info
"""


class Unit:
    """One daemon process, its notify socket and its fake radio."""

    def __init__(
        self,
        tmp_path: Path,
        port: int,
        scenario: dict,
        *,
        quiet: float = 300,
        source: str = "bluepy:hci0",
        synced: bool = True,
        boot_id: str = "boot-test-1",
        outbox: Path | None = None,
        unsynced_skew_s: float = 0.0,
    ) -> None:
        self.tmp = tmp_path
        # The daemon's "clock synchronised" answer is this file's presence
        # (gateway/systemd BLUEGATE_CLOCK_SYNC_MARKER); the test steps the "clock".
        self.sync_marker = tmp_path / "clock-synchronised"
        if synced:
            self.sync_marker.touch()
        self.cfg = tmp_path / "gw.yaml"
        text = CONFIG.format(port=port, tmp=tmp_path, quiet=quiet, source=source)
        if outbox is not None:
            text = text.replace(f"{tmp_path}/data/outbox.sqlite", str(outbox))
        self.cfg.write_text(text)
        radio = tmp_path / "radio"
        radio.mkdir()
        scenario = {
            **scenario,
            "log": str(radio / "helper.log"),
            "state_dir": str(radio),
        }
        (radio / "scenario.json").write_text(json.dumps(scenario))
        exe = radio / "bluepy-helper"
        exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
        exe.chmod(0o755)
        site = tmp_path / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(
            "import os\n"
            "exe = os.environ.get('BLUEGATE_TEST_HELPER_EXE')\n"
            "if exe:\n"
            "    from bluepy import btle\n"
            "    btle.helperExe = exe\n"
            # A Pi that booted without a battery clock: until the "clock
            # synchronised" marker appears, its wall clock is this far behind.
            "skew = float(os.environ.get('BLUEGATE_TEST_UNSYNCED_SKEW_S') or 0)\n"
            "marker = os.environ.get('BLUEGATE_CLOCK_SYNC_MARKER')\n"
            "if skew and marker:\n"
            "    import time\n"
            "    _real = time.time\n"
            "    def _time():\n"
            "        now = _real()\n"
            "        return now if os.path.exists(marker) else now - skew\n"
            "    time.time = _time\n"
        )
        self.helper_log = radio / "helper.log"
        self.sock_path = tmp_path / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.sock_path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        env = {
            **os.environ,
            "NOTIFY_SOCKET": str(self.sock_path),
            "WATCHDOG_USEC": "1000000",  # ping at least every 0.5 s
            "BLUEGATE_FAKE_HELPER": str(radio / "scenario.json"),
            "BLUEGATE_TEST_HELPER_EXE": str(exe),
            "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]),
            "BLUEGATE_CLOCK_SYNC_MARKER": str(self.sync_marker),
            "BLUEGATE_BOOT_ID": boot_id,
            "BLUEGATE_TEST_UNSYNCED_SKEW_S": str(unsynced_skew_s),
        }
        env.pop("WATCHDOG_PID", None)
        env.pop("JOURNAL_STREAM", None)
        env.pop("INVOCATION_ID", None)
        self.stderr_path = tmp_path / "daemon.stderr"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(self.cfg)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.stderr_path, "wb"),  # noqa: SIM115
        )

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def wait_for(
        self, needle: str, timeout_s: float = 15.0, after: float = 0.0
    ) -> float:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for t, msg in list(self.messages):
                if t >= after and needle in msg:
                    return t
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(
            f"no {needle!r} (exit {self.proc.poll()}); got {[m for _, m in self.messages][-8:]}\n"
            + self.stderr()
        )

    def pings(self, since: float = 0.0) -> list[float]:
        return [t for t, m in self.messages if m == "WATCHDOG=1" and t >= since]

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def helper_events(self) -> list[str]:
        if not self.helper_log.exists():
            return []
        return [
            line.split(" ", 3)[3] for line in self.helper_log.read_text().splitlines()
        ]

    def terminate(self, timeout_s: float = 5.0) -> tuple[int, float]:
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout_s)
        return rc, time.monotonic() - start

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stop.set()
        self._reader.join(2)
        self.sock.close()


def outbox_held(path: Path) -> list[tuple[str, dict]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT clock_boot, body FROM records WHERE state = 3 ORDER BY boot, seq"
        ).fetchall()
    finally:
        db.close()
    return [(b, json.loads(body)) for b, body in rows]


def outbox_rows(path: Path) -> list[tuple[int, int, int, dict]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT boot, seq, state, body FROM records ORDER BY boot, seq"
        ).fetchall()
    finally:
        db.close()
    return [(b, s, st, json.loads(body)) for b, s, st, body in rows]


class Subscriber:
    def __init__(self, port: int) -> None:
        self.records: dict[tuple[int, int], dict] = {}
        self.statuses: list[bytes] = []
        self.health: list[dict] = []
        ready = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="test-sub", protocol=mqtt.MQTTv5
        )

        def on_connect(c, u, f, rc, p=None):
            c.subscribe(
                [
                    ("bluegate/v1/+/+/records", 1),
                    ("bluegate/v1/+/+/status", 1),
                    ("bluegate/v1/+/+/health", 1),
                ]
            )
            ready.set()

        def on_message(c, u, msg):
            if msg.topic.endswith("/health"):
                self.health.append(json.loads(msg.payload))
                return
            if msg.topic.endswith("/status"):
                self.statuses.append(bytes(msg.payload))
                return
            body = envelope.decode_batch(
                bytes(msg.payload), None, require_signature=False
            )
            for rec in body["records"]:
                self.records[(int(body["boot"]), int(rec["seq"]))] = rec

        self.client.on_connect = on_connect
        self.client.on_message = on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert ready.wait(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_sighup_and_sigterm_lose_nothing(tmp_path: Path, mosquitto: Mosquitto) -> None:
    sub = Subscriber(mosquitto.port)
    reports = DEVICES * 150
    unit = Unit(
        tmp_path,
        mosquitto.port,
        {
            "adv": [gaen_adv(i) for i in range(DEVICES)],
            "repeat": 150,
            "interval_s": 0.006,
        },
    )
    try:
        ready = unit.wait_for("READY=1")
        unit.wait_for("WATCHDOG=1", after=ready)
        time.sleep(1.0)
        # A valid change that rebuilds the aggregation: open stays are committed first.
        unit.cfg.write_text(
            unit.cfg.read_text().replace("near_dbm: -75", "near_dbm: -70")
        )
        t_hup = time.monotonic()
        unit.proc.send_signal(signal.SIGHUP)
        unit.wait_for("RELOADING=1", after=t_hup)
        unit.wait_for("READY=1", after=t_hup)
        # An invalid file: RELOADING, then READY with the old config and the reason.
        unit.cfg.write_text(
            unit.cfg.read_text().replace("near_dbm: -70", "near_dbm: close")
        )
        t_bad = time.monotonic()
        unit.proc.send_signal(signal.SIGHUP)
        unit.wait_for("RELOADING=1", after=t_bad)
        unit.wait_for("reload rejected", after=t_bad)
        assert unit.proc.poll() is None
        assert "bands.near_dbm: must be a number" in unit.stderr()
        # Let the radio finish its scripted reports (600 x 6 ms), then stop.
        time.sleep(max(0.0, ready + 6.0 - time.monotonic()))
        t_term = time.monotonic()
        rc, took_s = unit.terminate()
        assert rc == 0, unit.stderr()
        assert took_s < 5.0
        unit.wait_for("STOPPING=1", after=t_term, timeout_s=1)
        assert unit.pings(), "never pinged"
    finally:
        unit.close()
    rows = outbox_rows(tmp_path / "data" / "outbox.sqlite")
    presence = [r for _, _, _, r in rows if r["kind"] == "presence"]
    # Every report heard is in exactly one presence record: nothing lost at the
    # reload (stays split and committed) or at SIGTERM (open stays committed).
    assert sum(r["n"] for r in presence) == reports, (
        len(presence),
        unit.stderr()[-2000:],
    )
    keys = {r["key"] for r in presence}
    assert len(keys) == DEVICES
    # Each device's stay was cut at the reload: at least two records per device.
    assert all(sum(1 for r in presence if r["key"] == k) >= 2 for k in keys)
    # Whatever the 5-s stop left undelivered goes out with `drain`, before anything new.
    unit.cfg.write_text(
        unit.cfg.read_text().replace("near_dbm: close", "near_dbm: -70")
    )
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "drain",
            "--config",
            str(unit.cfg),
            "--deadline",
            "20",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert res.returncode == 0, res.stderr
    deadline = time.monotonic() + 10
    while len(sub.records) < len(rows) and time.monotonic() < deadline:
        time.sleep(0.05)
    sub.close()
    assert {(b, s) for b, s, _, _ in rows} == set(sub.records)
    # The daemon's periodic health message (retained, once a minute).
    assert sub.health, "no health message"
    health = sub.health[0]
    for key in (
        "uptime_s",
        "adv_per_s",
        "decode_rejects",
        "outbox",
        "clock_synced",
        "version",
        "healthy",
    ):
        assert key in health, key
    assert health["healthy"] is True
    assert all(
        st == 2 for _, _, st, _ in outbox_rows(tmp_path / "data" / "outbox.sqlite")
    )


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_stops_pinging_when_the_scanner_dies(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    # First launch scans and dies after 40 reports; every relaunch fails at start.
    scenario = {
        "start": "exit",
        "launches": [
            {
                "start": "ok",
                "adv": [gaen_adv(i) for i in range(DEVICES)],
                "repeat": 10_000,
                "interval_s": 0.05,
                "die_after": 40,
            }
        ],
    }
    unit = Unit(tmp_path, mosquitto.port, scenario, quiet=5)
    try:
        ready = unit.wait_for("READY=1")
        unit.wait_for("WATCHDOG=1", after=ready)
        # The watchdog is pinged while the scanner lives...
        deadline = time.monotonic() + 15
        while "die" not in unit.helper_events() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "die" in unit.helper_events()
        died = time.monotonic()
        assert len(unit.pings(ready)) >= 2
        # ...then restart, adapter reset (grace 1 s each), and the pings stop.
        stopped = unit.wait_for("watchdog pings stopped", after=died, timeout_s=15)
        time.sleep(3.0)
        assert unit.pings(stopped + 0.1) == [], "still pinging after giving up"
        assert unit.proc.poll() is None  # systemd, not the daemon, ends it
        log = unit.stderr()
        assert "restart_scanner" in log
        assert "reset_adapter" in log
        assert "give_up" in log
        # Relaunches were attempted (the escalation really restarted the helper).
        assert sum(1 for e in unit.helper_events() if e.startswith("start")) >= 3
        t_term = time.monotonic()
        rc, took_s = unit.terminate()
        assert rc == 0
        assert took_s < 5.0
        unit.wait_for("STOPPING=1", after=t_term, timeout_s=1)
    finally:
        unit.close()


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_remote_settings_applied_or_rejected_on_status(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    sub = Subscriber(mosquitto.port)
    pub = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="test-ops", protocol=mqtt.MQTTv5
    )
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    unit_topic = "bluegate/v1/mine-a/gw-t/config"
    # A retained fleet-wide setting waiting before the unit starts.
    pub.publish(
        "bluegate/v1/mine-a/config",
        b"revision: f1\ngatt: {reads_per_minute: 3}\n",
        qos=1,
        retain=True,
    ).wait_for_publish(5)
    unit = Unit(
        tmp_path,
        mosquitto.port,
        {"adv": [gaen_adv(0)], "repeat": 10_000, "interval_s": 0.05},
    )

    def config_statuses() -> list[dict]:
        out = []
        for raw in sub.statuses:
            if raw.startswith(b"{"):
                out.append(json.loads(raw)["config"])
        return out

    def wait_status(pred, timeout_s=15.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for st in config_statuses():
                if pred(st):
                    return st
            time.sleep(0.05)
        raise AssertionError(
            f"no such status: {config_statuses()}\n{unit.stderr()[-3000:]}"
        )

    try:
        unit.wait_for("READY=1")
        fleet = wait_status(lambda st: st["revision"] == "f1")
        assert fleet["config"] == "applied"
        assert fleet["changed"] == ["gatt.reads_per_minute"]
        pub.publish(
            unit_topic,
            b"revision: u1\nbands:\n  near_dbm: -71\nlog_level: debug\n",
            qos=1,
            retain=True,
        ).wait_for_publish(5)
        applied = wait_status(lambda st: st["revision"] == "u1")
        assert applied["config"] == "applied"
        assert set(applied["changed"]) == {"bands.near_dbm", "log_level"}
        # Bad: names the topic, the line and the key; the unit keeps running.
        pub.publish(
            unit_topic,
            b"bands:\n  near_dbm: -71\nmqtt: {host: evil.example}\n",
            qos=1,
            retain=True,
        ).wait_for_publish(5)
        rejected = wait_status(lambda st: st["config"] == "rejected")
        assert rejected["reason"].startswith(
            f"{unit_topic}:3: mqtt: cannot be changed remotely"
        )
        pub.publish(
            unit_topic, b"scan:\n  tick_s: lots\n", qos=1, retain=True
        ).wait_for_publish(5)
        wait_status(lambda st: "scan.tick_s: must be a number" in st["reason"])
        assert unit.proc.poll() is None
        last_ping = unit.pings()[-1]
        time.sleep(1.2)
        assert unit.pings(last_ping + 0.01), "stopped pinging after a rejected setting"
        rc, _ = unit.terminate()
        assert rc == 0
    finally:
        unit.close()
        pub.publish("bluegate/v1/mine-a/config", b"", retain=True)
        pub.publish(unit_topic, b"", retain=True)
        pub.disconnect()
        pub.loop_stop()
        sub.close()


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_recorded_source_plays_shifted_to_now_then_idles(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    # A 2-second recording from 2020 of 4 phones, 20 reports each.
    trace = tmp_path / "trace.jsonl"
    t0 = 1596866400.0
    lines = []
    for k in range(20):
        for i in range(DEVICES):
            adv = gaen_adv(i)
            lines.append(
                json.dumps(
                    {
                        "t": t0 + k * 0.1 + i * 0.01,
                        "addr": adv["addr"],
                        "addr_type": "random",
                        "rssi": -60,
                        "data": adv["data"],
                        "scan_rsp": False,
                    }
                )
            )
    trace.write_text("\n".join(lines) + "\n")
    unit = Unit(tmp_path, mosquitto.port, {}, source=f"jsonl:{trace}")
    try:
        ready = unit.wait_for("READY=1")
        started_wall = time.time()
        unit.wait_for("WATCHDOG=1", after=ready)
        # The recording ends after ~2 s; the daemon stays up, idle, and healthy.
        time.sleep(4.0)
        assert unit.proc.poll() is None, unit.stderr()
        assert unit.pings(ready + 3.5), "stopped pinging once the recording ended"
        t_term = time.monotonic()
        rc, took_s = unit.terminate()
        assert rc == 0, unit.stderr()
        assert took_s < 5.0
        unit.wait_for("STOPPING=1", after=t_term, timeout_s=1)
    finally:
        unit.close()
    presence = [
        r
        for _, _, _, r in outbox_rows(tmp_path / "data" / "outbox.sqlite")
        if r["kind"] == "presence"
    ]
    assert sum(r["n"] for r in presence) == 20 * DEVICES
    assert len({r["key"] for r in presence}) == DEVICES
    # Shifted to now: the stays start when the daemon started, not in 2020, and last
    # as long as the recording (its own pace).
    for r in presence:
        assert abs(r["start"] - started_wall) < 3.0, r
        assert 1.5 <= r["end"] - r["start"] <= 2.5, r


SKEW_S = 1_000_000.0  # ~11.6 days: the unsynchronised wall clock's error


def _commit_stays_by_reload(unit: Unit, near: str, to: str) -> None:
    """A SIGHUP that rebuilds the aggregation commits every open stay now."""
    unit.cfg.write_text(unit.cfg.read_text().replace(near, to))
    t_hup = time.monotonic()
    unit.proc.send_signal(signal.SIGHUP)
    unit.wait_for("RELOADING=1", after=t_hup)
    unit.wait_for("READY=1", after=t_hup)


def _wait(pred, what: str, unit: Unit, timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"{what}\n{unit.stderr()[-3000:]}")


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_unsynced_records_survive_power_cut_and_rebase_at_sync(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """A bus Pi with no network: what it records before the clock synchronises is on
    disk at once (held), survives SIGKILL, is released unrebased by the next boot, and
    a boot whose clock synchronises mid-way publishes its held records rebased."""
    box = tmp_path / "outbox.sqlite"
    radio = {"adv": [gaen_adv(i) for i in range(DEVICES)], "interval_s": 0.01}
    # -- boot 1: never synchronised, then the power is cut.
    (tmp_path / "a").mkdir()
    a = Unit(
        tmp_path / "a",
        mosquitto.port,
        {**radio, "repeat": 60},
        synced=False,
        boot_id="boot-1",
        outbox=box,
        unsynced_skew_s=SKEW_S,
    )
    try:
        a.wait_for("READY=1")
        started_a = time.time()
        time.sleep(1.0)
        _commit_stays_by_reload(a, "near_dbm: -75", "near_dbm: -70")
        held = _wait(
            lambda: [r for _, r in outbox_held(box) if r["kind"] == "presence"],
            "boot 1 committed no held presence record",
            a,
        )
        a.proc.kill()  # power cut: no SIGTERM, no shutdown path
        a.proc.wait()
    finally:
        a.close()
    rows = outbox_held(box)
    assert {b for b, _ in rows} == {"boot-1"}
    assert all(r["clock"] == "unsynced" and "rebased" not in r for _, r in rows)
    # Stamped with the unsynchronised clock's guess: SKEW_S behind the truth.
    assert all(abs(r["start"] - (started_a - SKEW_S)) < 10 for r in held), held
    n_a = len(rows)

    # -- boot 2: starts unsynchronised, synchronises mid-way, publishes.
    sub = Subscriber(mosquitto.port)
    (tmp_path / "b").mkdir()
    b = Unit(
        tmp_path / "b",
        mosquitto.port,
        {**radio, "repeat": 60},
        synced=False,
        boot_id="boot-2",
        outbox=box,
        unsynced_skew_s=SKEW_S,
    )
    try:
        b.wait_for("READY=1")
        started_b = time.time()
        # Boot 1's held rows can never be rebased: released, published, marked.
        _wait(
            lambda: len([k for k in sub.records if k[0] == 1]) == n_a,
            "boot 1's records were not published",
            b,
        )
        time.sleep(max(0.0, 1.0 - (time.time() - started_b)))
        _commit_stays_by_reload(b, "near_dbm: -75", "near_dbm: -70")
        _wait(
            lambda: any(r["kind"] == "presence" for _, r in outbox_held(box)),
            "boot 2 committed no held presence record",
            b,
        )
        assert not [k for k in sub.records if k[0] == 2], "held records published"
        b.sync_marker.touch()  # NTP: the wall clock steps forward by SKEW_S
        synced_at = time.time()
        rebased = _wait(
            lambda: [
                r
                for (bt, _), r in sub.records.items()
                if bt == 2 and r["kind"] == "presence" and r["clock"] == "unsynced"
            ],
            "boot 2's rebased records were not published",
            b,
        )
        assert outbox_held(box) == []
        rc, _ = b.terminate()
        assert rc == 0, b.stderr()
    finally:
        b.close()
        sub.close()
    released = [r for (bt, _), r in sub.records.items() if bt == 1]
    assert len(released) == n_a
    for r in released:
        assert (r["clock"], r["rebased"]) == ("unsynced", False)
    assert sum(r["n"] for r in released if r["kind"] == "presence") == sum(
        r["n"] for r in held
    )
    for r in rebased:
        assert (r["clock"], r["rebased"]) == ("unsynced", True)
        # Corrected: on the true time line, not SKEW_S behind it.
        assert started_b - 5 < r["start"] <= r["end"] < synced_at + 1, r
    # Every record of boot 2 went out: held ones rebased, later ones synced.
    boot2 = [r for (bt, _), r in sub.records.items() if bt == 2]
    assert {r["clock"] for r in boot2 if "rebased" not in r} <= {"synced"}
    # ...all on the true time line (the sync came during the first poll of a
    # pipeline rebuilt by the reload: reports stamped before it keep their clock).
    off = [r for r in boot2 if abs(r.get("start", r.get("t", 0)) - started_b) > 120]
    assert not off, off[:3]
