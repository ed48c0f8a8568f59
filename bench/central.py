"""Benchmark central: MQTT ingest rate and contacts latency (issue: central tracing).

1. Ingest: signed batches of 500 presence records published to a real Mosquitto,
   ingested by 1 and 4 worker PROCESSES (one shared subscription) into SQLite and into
   PostgreSQL; records/s from the first publish until every record is committed.
2. Contacts: a generated 30-day data set of a 5,000-worker site with 200 gateways
   (buses, shift rooms, dormitories, yards; ~10 M presence records at --scale 1),
   loaded straight into each store (executemany / COPY). Latency of
   `central.contacts.contacts` (median, p95) for random cases over a 4-day window on
   SQLite and PostgreSQL, beside the plain self-join a user would write by hand on
   PostgreSQL (same indexes, same cases).

Targets: ingest >= 50,000 records/s into SQLite; contacts p95 <= 200 ms on SQLite at
10 M records and >= 10x faster than the hand-written join. The last line is JSON.

    python bench/central.py [--scale 0.1] [--skip-ingest] [--skip-contacts]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: E402

from central import contacts as contacts_mod  # noqa: E402
from central.config import CentralConfig, CentralMqttConfig  # noqa: E402
from central.rules import Rule, Seed  # noqa: E402
from central.store import PRESENCE_INSERT_COLS, open_store  # noqa: E402
from gateway.envelope import encode_batch, make_body  # noqa: E402
from tests.servers import Mosquitto, Postgres  # noqa: E402

DAY = 86_400.0
T_BASE = 1_767_225_600.0  # 2026-01-01T00:00:00Z
SLOT = 900.0  # gateways split presence at 15 minutes (L_max)
SECONDARY = ("presence_gw_start", "presence_key_start", "presence_start")
INDEX_SQL = {
    "presence_gw_start": "CREATE INDEX presence_gw_start ON presence (gateway, t_start)",
    "presence_key_start": "CREATE INDEX presence_key_start ON presence (key, t_start)",
    "presence_start": "CREATE INDEX presence_start ON presence (t_start)",
}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


# ------------------------------------------------------------------ ingest bench


def _worker_proc(cfg: CentralConfig, index: int, ready: Any, stop: Any) -> None:
    from central.ingest import IngestWorker

    worker = IngestWorker(cfg, index, status_worker=False)
    worker.start()
    worker.subscribed.wait(10)
    ready.set()
    stop.wait()
    worker.stop()


def ingest_run(
    url: str,
    broker: Mosquitto,
    workers: int,
    payloads: list[bytes],
    total: int,
    pem: str,
    tag: str,
) -> float:
    store = open_store(url)
    for g in range(20):
        store.enroll_gateway(f"gw-{g:02d}", pem, T_BASE)
    cfg = CentralConfig(
        storage=url,
        mqtt=CentralMqttConfig(
            port=broker.port,
            workers=workers,
            client_id=f"bench-{tag}",
            shared_group=f"g{tag}",
        ),
    )
    ctx = mp.get_context("fork")
    stop = ctx.Event()
    readies = [ctx.Event() for _ in range(workers)]
    procs = [
        ctx.Process(target=_worker_proc, args=(cfg, i, readies[i], stop))
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    for r in readies:
        r.wait(30)
    time.sleep(0.5)
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    pub = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"pub-{tag}",
        protocol=mqtt.MQTTv5,
    )
    pub.max_inflight_messages_set(1000)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    t0 = time.perf_counter()
    for i, payload in enumerate(payloads):
        pub.publish(f"bluegate/v1/site/gw-{i % 20:02d}/records", payload, qos=1)
    while store.stats()["records"]["presence"] < total:
        time.sleep(0.02)
        if time.perf_counter() - t0 > 600:
            raise RuntimeError("ingest did not finish in 10 minutes")
    elapsed = time.perf_counter() - t0
    stop.set()
    for p in procs:
        p.join(20)
    pub.loop_stop()
    pub.disconnect()
    store.close()
    return total / elapsed


def bench_ingest(scale: float, workdir: Path, pg: Postgres) -> dict[str, float]:
    key = Ed25519PrivateKey.generate()
    pem = (
        key.public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    per_batch = 500
    n_batches = max(20, int(400 * scale))
    payloads = []
    rnd = random.Random(1)
    for b in range(n_batches):
        gw = f"gw-{b % 20:02d}"
        seq0 = (b // 20) * per_batch
        recs = []
        for s in range(per_batch):
            start = T_BASE + rnd.random() * DAY
            recs.append({
                "kind": "presence", "seq": seq0 + s, "gateway": gw, "zone": f"room-{b % 20}",
                "zone_kind": "shift_room", "key": f"ibeacon:f7826da6-4fa2-4e98-8024-bc5b71e0893e:1:{rnd.randrange(5000)}",
                "keys": [], "start": start, "end": start + rnd.uniform(60, 900), "n": 12,
                "rssi_min": -80, "rssi_median": -66, "rssi_max": -55,
                "band_s": {"immediate": 10.0, "near": 200.0, "far": 30.0}, "clock": "synced",
            })  # fmt: skip
        recs_body = make_body(
            site="site", gateway=gw, boot=1, records=recs, sent=T_BASE
        )
        payloads.append(encode_batch(recs_body, key))
    total = n_batches * per_batch
    out: dict[str, float] = {}
    broker = Mosquitto(workdir / "mosquitto", persistence=False).start()
    try:
        for workers in (1, 4):
            url = f"sqlite://{workdir}/ingest-{workers}.sqlite"
            rate = ingest_run(url, broker, workers, payloads, total, pem, f"s{workers}")
            out[f"ingest_sqlite_{workers}w_rec_s"] = round(rate)
            print(
                f"ingest sqlite, {workers} worker(s): {rate:,.0f} records/s", flush=True
            )
            url = fresh_db(pg, f"ingest{workers}")
            rate = ingest_run(url, broker, workers, payloads, total, pem, f"p{workers}")
            out[f"ingest_postgres_{workers}w_rec_s"] = round(rate)
            print(
                f"ingest postgres, {workers} worker(s): {rate:,.0f} records/s",
                flush=True,
            )
    finally:
        broker.stop()
    out["ingest_records"] = total
    return out


# ---------------------------------------------------------------- data set


def fresh_db(pg: Postgres, name: str) -> str:
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return pg.dsn.rsplit("/", 1)[0] + "/" + name


def worker_key(w: int) -> str:
    return f"ibeacon:f7826da6-4fa2-4e98-8024-bc5b71e0893e:1:{w}"


def generate(days: int, workers: int = 5000):
    """Yield presence rows (PRESENCE_INSERT_COLS order), one day at a time.

    200 gateways: 20 buses, 40 shift rooms, 100 dormitory rooms, 40 yards. 200 crews of
    25 in three shifts; a crew rides its bus (2 x 45 min), works 8 h in its shift room
    with 1 h in a yard, and sleeps 7 h in a dormitory room. Each stay is split into
    15-minute records, with per-person jitter so overlaps vary."""
    rnd = random.Random(7)
    seqs: dict[str, int] = {}

    def stays(
        gw: str,
        zone: str,
        kind: str,
        w: int,
        start: float,
        end: float,
        out: list[tuple[Any, ...]],
    ) -> None:
        t = start
        near = kind != "yard"
        while t < end:
            e = min(end, t + SLOT)
            seq = seqs.get(gw, 0)
            seqs[gw] = seq + 1
            d = e - t
            out.append((gw, 1, seq, "mine-a", zone, kind, worker_key(w), None, t, e, 8, -85.0, -68.0, -55.0,
                        0.0, d if near else d * rnd.random() * 0.6, 0.0 if near else d * 0.4, "synced", t))  # fmt: skip
            t = e

    for day in range(days):
        base = T_BASE + day * DAY
        rows: list[tuple[Any, ...]] = []
        for w in range(workers):
            crew = w // 25
            shift = crew % 3
            j = rnd.uniform(-600, 600)
            start = base + (6 + 8 * shift) * 3600 + j
            bus = f"bus-{crew % 20:02d}"
            stays(bus, bus, "bus", w, start - 2700, start, rows)
            room = f"room-{crew % 40:02d}"
            yard = f"yard-{(crew + day) % 40:02d}"
            stays(room, room, "shift_room", w, start, start + 4 * 3600 + j / 3, rows)
            stays(
                yard,
                yard,
                "yard",
                w,
                start + 4 * 3600 + rnd.uniform(0, 600),
                start + 5 * 3600,
                rows,
            )
            stays(room, room, "shift_room", w, start + 5 * 3600, start + 8 * 3600, rows)
            stays(
                bus,
                bus,
                "bus",
                w,
                start + 8 * 3600 + 300,
                start + 8 * 3600 + 3000 + rnd.uniform(0, 300),
                rows,
            )
            dorm = f"dorm-{w % 100:02d}"
            stays(
                dorm,
                dorm,
                "dormitory",
                w,
                start + 9 * 3600 + j,
                start + 16 * 3600,
                rows,
            )
        yield rows


def load_dataset(store: Any, days: int, kind: str) -> int:
    for name in SECONDARY:
        store._execute(f"DROP INDEX IF EXISTS {name}")
    n = 0
    for rows in generate(days):
        if kind == "sqlite":
            store.bulk_load("presence", PRESENCE_INSERT_COLS, rows)
        else:
            with store.transaction():
                store.copy_rows("presence", PRESENCE_INSERT_COLS, rows)
        n += len(rows)
    t = time.perf_counter()
    for name in SECONDARY:
        store._execute(INDEX_SQL[name])
    store.note_presence_length(SLOT)
    with store.transaction():
        for zone_prefix, kind_name, enclosed, count in (("bus", "bus", True, 20), ("room", "shift_room", True, 40),
                                                         ("dorm", "dormitory", True, 100), ("yard", "yard", False, 40)):  # fmt: skip
            for i in range(count):
                z = f"{zone_prefix}-{i:02d}"
                store.upsert_zone(z, "mine-a", None, kind_name, enclosed, None)
                store._execute("INSERT INTO gateway_zones_seen (gateway, zone, zone_kind, site, first_t, last_t) "
                               "VALUES (?,?,?,?,?,?)", (z, z, kind_name, "mine-a", T_BASE, T_BASE + days * DAY))  # fmt: skip
                store.set_gateway_zone(z, z, T_BASE - DAY, None)
        for w in range(5000):
            store.upsert_person(f"W{w:04d}", "worker", None, None, None, None)
            store.assign_tag(worker_key(w), f"W{w:04d}", T_BASE - DAY, None)
    store.analyze()
    print(f"{kind}: indexes and analyze {time.perf_counter() - t:.1f}s", flush=True)
    return n


HAND_JOIN = """
SELECT b.key, SUM(LEAST(a.t_end, b.t_end) - GREATEST(a.t_start, b.t_start)) AS shared_s
FROM presence a
JOIN presence b ON b.gateway = a.gateway AND b.t_start < a.t_end AND b.t_end > a.t_start AND b.key <> a.key
WHERE a.key = %s AND a.t_start < %s AND a.t_end > %s
GROUP BY b.key
HAVING SUM(LEAST(a.t_end, b.t_end) - GREATEST(a.t_start, b.t_start)) >= 900
"""


def bench_contacts(
    scale: float, workdir: Path, pg: Postgres, n_cases: int
) -> dict[str, float]:
    days = max(5, round(30 * scale))
    rnd = random.Random(3)
    cases = []
    for _ in range(n_cases):
        w = rnd.randrange(5000)
        end_day = rnd.randrange(4, days)
        cases.append((w, T_BASE + (end_day - 4) * DAY, T_BASE + end_day * DAY))
    out: dict[str, float] = {"contacts_days": days}
    rule = Rule()
    stores = {}
    t = time.perf_counter()
    sq = open_store(f"sqlite://{workdir}/contacts.sqlite")
    sq._conn.execute("PRAGMA cache_size=-2000000")
    n = load_dataset(sq, days, "sqlite")
    print(
        f"sqlite: loaded {n:,} presence records in {time.perf_counter() - t:.1f}s",
        flush=True,
    )
    out["contacts_records"] = n
    out["load_sqlite_s"] = round(time.perf_counter() - t, 1)
    stores["sqlite"] = sq
    t = time.perf_counter()
    pgs = open_store(fresh_db(pg, "contacts"))
    load_dataset(pgs, days, "postgres")
    print(f"postgres: loaded in {time.perf_counter() - t:.1f}s", flush=True)
    out["load_postgres_s"] = round(time.perf_counter() - t, 1)
    stores["postgres"] = pgs
    found = []
    for kind, store in stores.items():
        ref = store.refdata()  # reference data loaded once, as a server would cache it
        contacts_mod.contacts(
            store,
            Seed("device", worker_key(cases[0][0])),
            cases[0][1],
            cases[0][2],
            rule,
            ref=ref,
        )
        times = []
        for w, a, b in cases:
            t = time.perf_counter()
            answer = contacts_mod.contacts(
                store, Seed("device", worker_key(w)), a, b, rule, ref=ref
            )
            times.append((time.perf_counter() - t) * 1000)
            if kind == "sqlite":
                found.append(len(answer["contacts"]))
        out[f"contacts_{kind}_p50_ms"] = round(statistics.median(times), 1)
        out[f"contacts_{kind}_p95_ms"] = round(pct(times, 0.95), 1)
        print(
            f"contacts on {kind}: median {statistics.median(times):.1f} ms, p95 {pct(times, 0.95):.1f} ms",
            flush=True,
        )
    out["contacts_per_case_median"] = statistics.median(found)
    hand = []
    with psycopg.connect(pgs.url, autocommit=True) as conn:
        conn.execute(
            HAND_JOIN, (worker_key(cases[0][0]), cases[0][2], cases[0][1])
        ).fetchall()
        for w, a, b in cases[: max(5, n_cases // 3)]:
            t = time.perf_counter()
            conn.execute(HAND_JOIN, (worker_key(w), b, a)).fetchall()
            hand.append((time.perf_counter() - t) * 1000)
    out["handjoin_postgres_p50_ms"] = round(statistics.median(hand), 1)
    out["handjoin_postgres_p95_ms"] = round(pct(hand, 0.95), 1)
    print(
        f"hand-written join on postgres: median {statistics.median(hand):.1f} ms, p95 {pct(hand, 0.95):.1f} ms",
        flush=True,
    )
    out["speedup_sqlite_vs_handjoin_p50"] = round(
        out["handjoin_postgres_p50_ms"] / out["contacts_sqlite_p50_ms"], 1
    )
    out["speedup_postgres_vs_handjoin_p50"] = round(
        out["handjoin_postgres_p50_ms"] / out["contacts_postgres_p50_ms"], 1
    )
    for s in stores.values():
        s.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="1.0: 30 days (~10 M records), 200k ingested",
    )
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-contacts", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bluegate-bench-central-"))
    pg = Postgres(workdir / "pg").start()
    result: dict[str, Any] = {"scale": args.scale}
    try:
        if not args.skip_ingest:
            result.update(bench_ingest(args.scale, workdir, pg))
        if not args.skip_contacts:
            result.update(bench_contacts(args.scale, workdir, pg, args.cases))
    finally:
        pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    targets = {
        "ingest_sqlite_1w_rec_s": ">= 50000",
        "contacts_sqlite_p95_ms": "<= 200 (at 10 M records)",
        "speedup_sqlite_vs_handjoin_p50": ">= 10",
        "speedup_postgres_vs_handjoin_p50": ">= 10",
    }
    rows = [
        {"name": k, "value": v, **({"target": targets[k]} if k in targets else {})}
        for k, v in result.items()
    ]
    print(json.dumps({**result, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
