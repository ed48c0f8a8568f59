"""Benchmark: outbox write cost and draining a 100,000-record backlog to Mosquitto.

    .venv/bin/python bench/outbox.py [--records 100000]

1. Write cost: presence records appended in tick-sized transactions (50 records, a
   busy room's tick; and 1 record, a quiet one), synchronous=NORMAL and FULL, in
   microseconds per record.
2. Drain: a backlog of N presence records delivered with the real Publisher
   (batches of 500, signed, QoS 1, in-flight cap 20) to a local Mosquitto, plain TCP
   and mutual TLS (a CA made by central/pki.py), until every PUBACK is recorded;
   records per second. Target: >= 20,000 records/s.

The last line is one JSON object (bench/run_all.py collects it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from central import pki  # noqa: E402
from gateway.config import GatewayConfig, MqttConfig, ZoneConfig  # noqa: E402
from gateway.outbox import SqliteOutbox  # noqa: E402
from gateway.publisher import Publisher  # noqa: E402
from tests.servers import Mosquitto, deploy_mosquitto_config  # noqa: E402

T0 = 1_700_000_000.0


def presence(i: int) -> dict:
    """A realistic presence record (~400 bytes of JSON)."""
    key = f"bluezone:{i:024x}"
    return {
        "kind": "presence",
        "gateway": "bus-07",
        "zone": "bus-07",
        "zone_kind": "bus",
        "key": key,
        "keys": [key],
        "start": T0 + i,
        "end": T0 + i + 600.0,
        "n": 40,
        "rssi_min": -88,
        "rssi_median": -71.0,
        "rssi_max": -58,
        "band_s": {"immediate": 60.0, "near": 420.0, "far": 120.0},
        "clock": "synced",
        "format": "bluezone",
        "chain_confidence": 1.0,
    }


def write_cost(tmp: Path, synchronous: str, per_tick: int, ticks: int) -> float:
    path = tmp / f"w-{synchronous}-{per_tick}.sqlite"
    box = SqliteOutbox(str(path), synchronous=synchronous)  # type: ignore[arg-type]
    records = [presence(i) for i in range(per_tick)]
    start = time.perf_counter()
    for tick in range(ticks):
        box.append_many(records, T0 + tick)
    elapsed = time.perf_counter() - start
    box.close()
    return elapsed / (ticks * per_tick) * 1e6


def drain_rate(tmp: Path, broker: Mosquitto, n: int, tls: dict | None) -> float:
    path = tmp / f"d-{'tls' if tls else 'tcp'}.sqlite"
    box = SqliteOutbox(str(path))
    for start in range(0, n, 5000):
        box.append_many([presence(i) for i in range(start, min(n, start + 5000))], T0)
    cfg = GatewayConfig(
        site="mine-a",
        gateway="bus-07",
        zone=ZoneConfig("bus-07", "bus"),
        mqtt=MqttConfig(
            host="localhost" if tls else "127.0.0.1",
            port=broker.port,
            batch_records=500,
            max_inflight=20,
            **(tls or {}),
        ),
    )
    pub = Publisher(cfg, box, Ed25519PrivateKey.generate())
    pub.start()
    while not pub.connected:
        pub.pump(time.time(), wait_s=0.05)
    start = time.perf_counter()
    while box.pending() > 0:
        pub.pump(time.time(), wait_s=0.05)
    elapsed = time.perf_counter() - start
    pub.stop()
    box.close()
    return n / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bluegate-bench-outbox-"))
    try:
        result: dict[str, float] = {}
        for sync in ("normal", "full"):
            result[f"write_us_per_record_tick50_{sync}"] = write_cost(
                tmp, sync, 50, 400
            )
            result[f"write_us_per_record_tick1_{sync}"] = write_cost(tmp, sync, 1, 400)
        plain = Mosquitto(tmp / "plain", persistence=False).start()
        try:
            result["drain_records_per_s_tcp"] = drain_rate(
                tmp, plain, args.records, None
            )
        finally:
            plain.stop()
        ca = tmp / "ca"
        pki.init_ca(str(ca))
        etc = tmp / "etc"
        server, server_key = pki.server_cert(str(ca), ["localhost"], str(etc))
        shutil.copy(server.path, etc / "server.pem")
        shutil.copy(server_key, etc / "server-key.pem")
        shutil.copy(ca / "ca.pem", etc / "ca.pem")
        client, client_key = pki.issue_client(str(ca), "bus-07", str(tmp / "unit"))
        broker = Mosquitto(tmp / "tls", persistence=False)
        broker.extra_config = deploy_mosquitto_config(etc, broker.port)
        broker.start()
        try:
            tls = {
                "ca": str(ca / "ca.pem"),
                "cert": str(client.path),
                "key": str(client_key),
            }
            result["drain_records_per_s_tls"] = drain_rate(
                tmp, broker, args.records, tls
            )
        finally:
            broker.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name, value in result.items():
        print(f"{name:42} {value:12,.1f}")
    result["drain_target_records_per_s"] = 20_000
    result["records"] = args.records
    print(
        json.dumps(
            {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
