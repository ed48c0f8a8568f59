"""End to end against a real Mosquitto running deploy/mosquitto/bluegate.conf.

Mutual TLS with a CA made by `bluegate-central ca` in the test, the ACL, the
outbox through outages and SIGKILLs of `python -m gateway drain`, and the disk bound.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from central import pki
from gateway import delivery, keys
from gateway.config import load_gateway_config
from gateway.publisher import tls_context
from tests.servers import Mosquitto, deploy_mosquitto_config
from tests.test_publisher import Subscriber, gate, records_of, wait_for

REPO = Path(__file__).resolve().parent.parent
T0 = 1_700_000_000.0

pytestmark = pytest.mark.integration


class Fleet:
    """A CA, a broker with the deploy config, and gateway units enrolled against it."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.ca_dir = tmp_path / "ca"
        pki.init_ca(str(self.ca_dir))
        etc = tmp_path / "etc"
        etc.mkdir()
        server, server_key = pki.server_cert(
            str(self.ca_dir), ["localhost", "127.0.0.1"], str(etc)
        )
        shutil.copy(server.path, etc / "server.pem")
        shutil.copy(server_key, etc / "server-key.pem")
        shutil.copy(self.ca_dir / "ca.pem", etc / "ca.pem")
        self.broker = Mosquitto(tmp_path / "broker")
        self.broker.extra_config = deploy_mosquitto_config(etc, self.broker.port)
        ingest, ingest_key = pki.issue_client(
            str(self.ca_dir), "central-ingest", str(tmp_path / "central")
        )
        self.ingest_tls = self.tls(ingest.path, ingest_key)

    def tls(self, cert, key, ca=None):
        from gateway.config import MqttConfig

        return tls_context(
            MqttConfig(
                ca=str(ca or self.ca_dir / "ca.pem"), cert=str(cert), key=str(key)
            )
        )

    def subscriber(self, client_id="central-1", topic="bluegate/v1/+/+/records"):
        return Subscriber(
            self.broker.port, topic=topic, client_id=client_id, tls=self.ingest_tls
        )

    def unit(
        self,
        name: str,
        *,
        topic_gateway: str | None = None,
        cert: Path | None = None,
        **mqtt_extra,
    ) -> Path:
        """Enroll `name`, have the CA sign it; the config may claim another gateway id."""
        unit_dir = self.tmp / name
        identity = unit_dir / "keys"
        enrolled = keys.enroll(str(identity), name, "mine-a")
        cert_path = cert or unit_dir / "cert.pem"
        if cert is None:
            pki.sign_csr(str(self.ca_dir), str(enrolled.csr), str(cert_path))
        cfg = {
            "site": "mine-a",
            "gateway": topic_gateway or name,
            "zone": {"name": "room-a", "kind": "shift_room"},
            "source": "jsonl:/dev/null",
            "mqtt": {
                "host": "localhost",
                "port": self.broker.port,
                "ca": str(self.ca_dir / "ca.pem"),
                "cert": str(cert_path),
                "key": str(enrolled.tls_key),
                "reconnect_min_s": 0.1,
                "reconnect_max_s": 1.0,
                **mqtt_extra,
            },
            "outbox": {"path": str(unit_dir / "outbox.sqlite")},
            "identity": {"dir": str(identity)},
        }
        path = unit_dir / "unit.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path


@pytest.fixture
def fleet(tmp_path):
    f = Fleet(tmp_path)
    f.broker.start()
    try:
        yield f
    finally:
        f.broker.stop()


def fill(
    cfg_path: Path, n: int, per_tick: int = 50, opens: int = 1
) -> dict[tuple[int, int], dict]:
    """Append `n` records in ticks over `opens` process lifetimes; return them by (boot, seq)."""
    cfg = load_gateway_config(str(cfg_path))
    written = {}
    i = 0
    for _ in range(opens):
        box = delivery.open_unit_outbox(cfg)
        try:
            while i < n and len(written) < (n * (_ + 1)) // opens:
                chunk = [gate(i + k) for k in range(min(per_tick, n - i))]
                seqs = box.append_many(chunk, T0 + i)
                for seq, record in zip(seqs, chunk):
                    written[(box.boot, seq)] = {**record, "seq": seq}
                i += len(chunk)
        finally:
            box.close()
    return written


def public_key(cfg_path: Path):
    cfg = load_gateway_config(str(cfg_path))
    return keys.load_signing_key(cfg.identity.dir).public_key()


def drain_cmd(cfg_path: Path, deadline_s: float) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gateway",
        "drain",
        "--config",
        str(cfg_path),
        "--deadline",
        str(deadline_s),
    ]


def test_tls_publish_and_ack_with_the_fleet_ca(fleet):
    sub = fleet.subscriber()
    unit = fleet.unit("gw-1")
    written = fill(unit, 300)
    cfg = load_gateway_config(str(unit))
    assert delivery.drain(cfg, 10) == 0
    assert wait_for(lambda: len(records_of(sub.payloads(), public_key(unit))) == 300, 5)
    assert records_of(sub.payloads(), public_key(unit)) == written
    sub.close()


def test_replay_publish_waits_for_acks_and_keeps_the_outbox_on_deadline(fleet):
    unit = fleet.unit("gw-1")
    cfg = load_gateway_config(str(unit))
    fleet.broker.stop()
    assert (
        delivery.replay_publish(cfg, (gate(i) for i in range(120)), deadline_s=1.0) == 1
    )
    box = delivery.open_unit_outbox(cfg)
    assert box.pending() == 120
    box.close()
    fleet.broker.start()
    sub = fleet.subscriber()
    assert (
        delivery.replay_publish(cfg, (gate(i) for i in range(120, 130)), deadline_s=10)
        == 0
    )
    assert wait_for(lambda: len(records_of(sub.payloads())) == 130, 5)
    sub.close()


def test_a_certificate_from_another_ca_is_refused(fleet, tmp_path):
    rogue_ca = tmp_path / "rogue-ca"
    pki.init_ca(str(rogue_ca), name="Rogue CA")
    sub = fleet.subscriber()
    # Enroll normally, then swap in a certificate for the same key signed elsewhere.
    unit = fleet.unit("gw-9")
    csr = tmp_path / "gw-9" / "keys" / keys.TLS_CSR
    rogue_cert = tmp_path / "rogue.pem"
    pki.sign_csr(str(rogue_ca), str(csr), str(rogue_cert))
    cfg_dict = yaml.safe_load(unit.read_text())
    cfg_dict["mqtt"]["cert"] = str(rogue_cert)
    unit.write_text(yaml.safe_dump(cfg_dict))
    fill(unit, 20)
    proc = subprocess.run(
        drain_cmd(unit, 2.0), cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 1, proc.stderr
    assert "20 record(s) not acknowledged" in proc.stderr
    assert (
        "TLS" in proc.stderr
        or "disconnected" in proc.stderr
        or "connection" in proc.stderr
    )
    time.sleep(0.3)
    assert sub.payloads() == []
    box = delivery.open_unit_outbox(load_gateway_config(str(unit)))
    assert box.pending() == 20  # intact for later
    box.close()
    sub.close()


def test_a_gateway_cannot_publish_under_another_gateways_topic(fleet):
    sub = fleet.subscriber()
    # gw-1's certificate (CN=gw-1), but configured to publish as gw-2.
    unit = fleet.unit("gw-1", topic_gateway="gw-2")
    fill(unit, 30)
    cfg = load_gateway_config(str(unit))
    assert delivery.drain(cfg, 2.0) == 1  # MQTT 5: PUBACK 0x87, rows kept
    box = delivery.open_unit_outbox(cfg)
    assert box.pending() == 30
    box.close()
    assert sub.payloads() == []
    # Its own topic works.
    own = fleet.unit("gw-3")
    fill(own, 5)
    assert delivery.drain(load_gateway_config(str(own)), 10) == 0
    assert wait_for(lambda: len(sub.payloads()) == 1, 5)
    sub.close()


def test_shared_subscription_for_central_ingest_is_allowed(fleet):
    sub = fleet.subscriber(topic="$share/central/bluegate/v1/+/+/records")
    unit = fleet.unit("gw-1")
    fill(unit, 10)
    assert delivery.drain(load_gateway_config(str(unit)), 10) == 0
    assert wait_for(lambda: len(records_of(sub.payloads())) == 10, 5)
    sub.close()


def test_disk_bound_drops_oldest_counted_and_delivers_the_rest(fleet):
    sub = fleet.subscriber()
    unit = fleet.unit("gw-1")
    cfg_dict = yaml.safe_load(unit.read_text())
    cfg_dict["outbox"]["max_mb"] = 1.0
    unit.write_text(yaml.safe_dump(cfg_dict))
    written = fill(unit, 8000, per_tick=200)
    cfg = load_gateway_config(str(unit))
    box = delivery.open_unit_outbox(cfg)
    stats = box.stats()
    box.close()
    assert stats.dropped_size > 0
    assert stats.stored_bytes <= 1024 * 1024
    assert stats.depth + stats.dropped_size == 8000
    assert delivery.drain(cfg, 15) == 0
    survivors = dict(sorted(written.items())[stats.dropped_size :])
    assert wait_for(lambda: len(records_of(sub.payloads())) == len(survivors), 5)
    assert records_of(sub.payloads()) == survivors  # exactly the newest ones
    sub.close()


def pending_of(cfg_path: Path) -> int:
    box = delivery.open_unit_outbox(load_gateway_config(str(cfg_path)))
    try:
        return box.pending()
    finally:
        box.close()


def test_drain_killed_at_random_points_loses_nothing(fleet):
    """SIGKILL `drain` 20 times mid-delivery; every record arrives at least once.

    Between runs the unit records more (a new boot each time, as a restarted
    daemon would), so every run starts with a backlog: what earlier killed runs left
    in flight, then the new records.
    """
    rng = random.Random(int(os.environ.get("KILL_SEED", "4")))
    sub = fleet.subscriber()
    # Small batches, one in flight: each run needs many round trips, so the kills
    # land while batches are in flight.
    unit = fleet.unit("gw-1", batch_records=5, max_inflight=1)
    written: dict = {}
    kills = partial = 0
    for _ in range(40):
        if kills >= 20:
            break
        written |= fill_more(unit, 600, len(written))
        before = pending_of(unit)
        seen = len(sub.payloads())
        proc = subprocess.Popen(
            drain_cmd(unit, 20),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Kill at a random point: sometimes during start-up, mostly mid-delivery
        # (once the first batch of this run has reached the subscriber).
        if rng.random() < 0.8:
            wait_for(
                lambda: len(sub.payloads()) > seen or proc.poll() is not None, 10, 0.005
            )
            time.sleep(rng.uniform(0.0, 0.08))
        else:
            time.sleep(rng.uniform(0.05, 0.4))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        after = pending_of(unit)
        partial += 0 < after < before
    assert kills >= 20
    assert partial >= 5, "the kills should land mid-delivery"
    final = subprocess.run(
        drain_cmd(unit, 30), cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert final.returncode == 0, final.stderr
    key = public_key(unit)
    assert wait_for(lambda: len(records_of(sub.payloads(), key)) >= len(written), 10)
    received = records_of(sub.payloads(), key)
    assert set(received) == set(written)  # nothing missing, by (boot, seq)
    assert received == written  # and by content
    sub.close()


def fill_more(cfg_path: Path, n: int, start: int) -> dict:
    """One more process lifetime of recording: `n` records in ticks of 30."""
    cfg = load_gateway_config(str(cfg_path))
    box = delivery.open_unit_outbox(cfg)
    written = {}
    try:
        for i in range(start, start + n, 30):
            chunk = [gate(k) for k in range(i, min(i + 30, start + n))]
            for seq, record in zip(box.append_many(chunk, T0 + i), chunk):
                written[(box.boot, seq)] = {**record, "seq": seq}
    finally:
        box.close()
    return written


def ibeacon_trace(path: Path, seconds: int, per_second: int) -> None:
    """A recording in which `per_second` new iBeacon tags appear every second."""
    lines = []
    for s in range(seconds):
        for d in range(per_second):
            minor = s * per_second + d
            data = (
                "0201061AFF4C000215"
                + "e2c56db5dffb48d2b060d0f5a71096e0"
                + f"0001{minor:04x}c5"
            )
            addr = f"AA:BB:CC:00:{minor >> 8 & 255:02X}:{minor & 255:02X}"
            line = {
                "t": T0 + s + d / 100,
                "addr": addr,
                "addr_type": "public",
                "rssi": -60,
                "data": data,
                "scan_rsp": False,
            }
            lines.append(json.dumps(line))
    path.write_text("\n".join(lines) + "\n")


def outbox_rows(cfg_path: Path) -> dict[tuple[int, int], dict]:
    """Every record the unit ever committed (delivered rows are kept in the outbox)."""
    import sqlite3

    cfg = load_gateway_config(str(cfg_path))
    db = sqlite3.connect(cfg.outbox.path)
    try:
        return {
            (b, s): {**json.loads(body), "seq": s}
            for b, s, body in db.execute("SELECT boot, seq, body FROM records")
        }
    finally:
        db.close()


@pytest.mark.slow
def test_run_killed_while_recording_and_publishing_loses_nothing(fleet, tmp_path):
    """SIGKILL the `run` daemon 20 times while it records and publishes."""
    rng = random.Random(int(os.environ.get("KILL_SEED", "5")))
    trace = tmp_path / "trace.jsonl"
    ibeacon_trace(trace, seconds=600, per_second=30)
    sub = fleet.subscriber()
    unit = fleet.unit("gw-1", batch_records=5, max_inflight=1)
    cfg_dict = yaml.safe_load(unit.read_text())
    cfg_dict["source"] = f"jsonl:{trace}"
    # Stays close one second after a tag is last heard: records flow at once.
    cfg_dict["aggregation"] = {"gap_s": 1.0, "min_stay_s": 0}
    unit.write_text(yaml.safe_dump(cfg_dict))
    run_cmd = [sys.executable, "-m", "gateway", "run", "--config", str(unit)]
    kills = 0
    for _ in range(20):
        proc = subprocess.Popen(
            run_cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        # The daemon commits its first stays ~4 s after start (start-up, then the
        # gap); earlier kills land while it publishes what earlier runs left.
        time.sleep(rng.uniform(1.5, 5.5))
        assert proc.poll() is None, "run exited by itself"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    committed = outbox_rows(unit)
    key = public_key(unit)
    delivered_before_drain = len(records_of(sub.payloads(), key))
    assert len(committed) > 200
    assert 0 < delivered_before_drain < len(committed) + 1
    assert (
        len({boot for boot, _ in committed}) >= 8
    )  # records from many process lifetimes
    final = subprocess.run(
        drain_cmd(unit, 30), cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert final.returncode == 0, final.stderr
    assert wait_for(lambda: len(records_of(sub.payloads(), key)) >= len(committed), 10)
    received = records_of(sub.payloads(), key)
    assert set(received) == set(committed)
    assert received == committed
    assert kills == 20
    sub.close()
