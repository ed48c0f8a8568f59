"""One contract suite, run against SQLite and a real PostgreSQL (same answers)."""

from __future__ import annotations

import datetime as dt

import pytest

from central import query, refdata
from central.ingest import MessageProcessor
from central.store import open_store
from central.store.schema import SCHEMA_VERSION
from tests.central.helpers import T0, batch, presence, public_pem, signing_key, topic


def processor(store, *, require=True):
    return MessageProcessor(store, require_signatures=require, now=lambda: T0 + 10)


def test_migrations_are_idempotent_and_versioned(store, store_url):
    assert store.schema_version() == SCHEMA_VERSION
    again = open_store(store_url)
    assert again.schema_version() == SCHEMA_VERSION
    again.close()


def test_batch_is_stored_once_and_records_upsert(store):
    key = signing_key()
    store.enroll_gateway("gw-1", public_pem(key), T0)
    proc = processor(store)
    recs = [
        presence("ibeacon:a:1:1", T0 + i * 60, T0 + i * 60 + 50, seq=i)
        for i in range(40)  # >= 20: the COPY path on PostgreSQL
    ]
    payload = batch(recs, key)
    proc.process(topic(), payload)
    proc.process(topic(), payload)  # MQTT redelivery
    # The gateway re-cut its outbox after a restart: seqs 3..41 in a new batch.
    recut = recs[3:] + [
        presence("ibeacon:a:1:1", T0 + 900, T0 + 950, seq=n) for n in (40, 41)
    ]
    proc.process(topic(), batch(recut, key))
    stats = store.stats()
    assert stats["records"]["presence"] == 42
    assert stats["batches"] == 2
    assert proc.counters.duplicates == 1
    assert stats["quarantined"] == 0


def test_chained_keys_and_long_records_are_found(store):
    proc = processor(store, require=False)
    chained = presence(
        "bluezone:" + "aa" * 12,
        T0,
        T0 + 2400,
        seq=1,
        keys=["bluezone:" + "aa" * 12, "bluezone:" + "bb" * 12],
    )
    long_one = presence("ibeacon:x:1:1", T0 - 7200, T0 + 7200, seq=2)
    proc.process(topic(), batch([chained, long_one], None))
    rows = store.presence_by_keys(["bluezone:" + "bb" * 12], T0 + 1000, T0 + 1100)
    assert [r.key for r in rows] == ["bluezone:" + "aa" * 12]
    assert set(rows[0].all_keys) == {"bluezone:" + "aa" * 12, "bluezone:" + "bb" * 12}
    # The 4-hour record started long before the window: the max-length bound finds it.
    found = store.presence_at_gateways(["gw-1"], T0 + 3000, T0 + 3100)
    assert [r.key for r in found] == ["ibeacon:x:1:1"]
    assert store.presence_at_gateways(["gw-1"], T0 + 7300, T0 + 7400) == []


def test_sequence_gaps_per_gateway_and_boot(store):
    proc = processor(store, require=False)
    for seqs in ([0, 1, 2], [3, 4], [8, 9], [12]):
        proc.process(
            topic(),
            batch([presence("k:1", T0 + s, T0 + s + 1, seq=s) for s in seqs], None),
        )
    proc.process(topic(), batch([presence("k:1", T0, T0 + 1, seq=0)], None, boot=2))
    gaps = store.sequence_gaps()
    assert [(g["boot"], g["from_seq"], g["to_seq"]) for g in gaps] == [
        (1, 5, 7),
        (1, 10, 11),
    ]
    assert store.stats()["sequence_gaps"] == 2


@pytest.mark.parametrize(
    ("payload_kind", "reason"),
    [
        ("garbage", "malformed"),
        ("unsigned", "unsigned"),
        ("wrong-key", "bad-signature"),
        ("unknown", "unknown-gateway"),
        ("bad-record", "bad-record"),
        ("topic", "topic-mismatch"),
    ],
)
def test_bad_batches_are_quarantined_verbatim(store, payload_kind, reason):
    key = signing_key()
    store.enroll_gateway("gw-1", public_pem(key), T0)
    rec = [presence("k:1", T0, T0 + 60, seq=1)]
    payload, where = {
        "garbage": (b"\x00not a batch", topic()),
        "unsigned": (batch(rec, None), topic()),
        "wrong-key": (batch(rec, signing_key()), topic()),
        "unknown": (batch(rec, key, gateway="gw-9"), topic("gw-9")),
        "bad-record": (batch([{**rec[0], "end": T0 - 5}], key), topic()),
        "topic": (batch(rec, key), topic(site="mine-b")),
    }[payload_kind]
    proc = processor(store)
    proc.process(where, payload)
    # The worker keeps going: a good batch right after is stored.
    proc.process(topic(), batch([presence("k:2", T0, T0 + 60, seq=7)], key))
    stats = store.stats()
    assert stats["quarantined_by_reason"] == {reason: 1}
    assert stats["records"]["presence"] == 1
    kept = store.list_quarantine()
    assert kept[0]["payload"] == payload
    assert kept[0]["reason"] == reason


def test_status_and_health(store):
    proc = processor(store)
    proc.process(topic(leaf="status"), b"online")
    proc.process(topic(leaf="health"), b'{"uptime_s": 12, "outbox_depth": 3}')
    proc.process(topic(leaf="status"), b"offline")
    proc.process(topic(leaf="health"), b"not json")
    (gw,) = store.gateway_status()
    assert gw["status"] == "offline"
    assert gw["health"] == {
        "uptime_s": 12,
        "outbox_depth": 3,
    }
    assert store.stats()["quarantined_by_reason"] == {"bad-health": 1}


REF_YAML = """
sites: [{site: mine-a, name: Mine A}]
zones:
  - {zone: bus-07, site: mine-a, kind: bus}
  - {zone: bus-09, site: mine-a, kind: bus}
  - {zone: yard-1, site: mine-a, kind: yard}
  - {zone: gate-1, site: mine-a, kind: entrance}
gateways:
  - gateway: gw-bus
    site: mine-a
    zones:
      - {zone: bus-07, from: 2020-08-01, to: "2020-08-08T12:00:00Z"}
      - {zone: bus-09, from: "2020-08-08T12:00:00Z"}
people:
  - {person: W1, kind: worker, name: Worker One}
  - {person: W2, kind: worker, name: Worker Two}
  - {person: V1, kind: visitor, name: Visitor One, host: W1}
tags:
  - {key: "ibeacon:t:1:1", person: W1, from: 2020-08-01}
  - {key: "ibeacon:t:1:2", person: W2, from: 2020-08-01, to: "2020-08-08T12:00:00Z"}
  - {key: "ibeacon:t:1:2", person: V1, from: "2020-08-08T12:00:00Z"}
"""


def load_ref(store, tmp_path):
    path = tmp_path / "ref.yaml"
    path.write_text(REF_YAML)
    return refdata.import_items(store, refdata.read_file(str(path)))


def test_refdata_moving_gateway_roster_and_timeline(store, tmp_path):
    counts = load_ref(store, tmp_path)
    assert counts == {"sites": 1, "zones": 4, "gateways": 2, "people": 3, "tags": 3}
    proc = processor(store, require=False)
    recs = [
        presence(
            "ibeacon:t:1:1", T0 + 3600, T0 + 5400, seq=1, gateway="gw-bus", zone="bus-x"
        ),
        presence(
            "ibeacon:t:1:2", T0 + 3600, T0 + 5400, seq=2, gateway="gw-bus", zone="bus-x"
        ),
        presence(
            "ibeacon:t:1:2",
            T0 + 13 * 3600,
            T0 + 14 * 3600,
            seq=3,
            gateway="gw-bus",
            zone="bus-x",
        ),
    ]
    proc.process(topic("gw-bus"), batch(recs, None, gateway="gw-bus"))
    morning = query.roster(store, t0=T0, t1=T0 + 6 * 3600, zone="bus-07")
    assert [(e["person"], e["minutes"]) for e in morning["entries"]] == [
        ("W1", 30.0),
        ("W2", 30.0),
    ]
    # After noon the same gateway is in bus-09 and tag 1:2 belongs to the visitor.
    evening = query.roster(store, t0=T0 + 12 * 3600, t1=T0 + 86400, zone="bus-09")
    assert [(e["person"], e["kind"]) for e in evening["entries"]] == [("V1", "visitor")]
    assert (
        query.roster(store, t0=T0 + 12 * 3600, t1=T0 + 86400, zone="bus-07")["count"]
        == 0
    )
    line = query.timeline(store, t0=T0, t1=T0 + 86400, person="W2")
    assert [(e["zone"], e["minutes"]) for e in line["entries"]] == [("bus-07", 30.0)]


def test_gatelog_headcount_and_occupancy(store, tmp_path):
    load_ref(store, tmp_path)
    proc = processor(store, require=False)
    gate = [
        {
            "kind": "gate",
            "seq": 1,
            "key": "ibeacon:t:1:1",
            "t": T0 + 3600,
            "direction": "in",
        },
        {
            "kind": "gate",
            "seq": 2,
            "key": "ibeacon:t:1:2",
            "t": T0 + 13 * 3600,
            "direction": "in",
        },
        {
            "kind": "gate",
            "seq": 3,
            "key": "ibeacon:t:1:1",
            "t": T0 + 14 * 3600,
            "direction": "out",
        },
        {"kind": "occupancy", "seq": 4, "zone": "gate-1", "t": T0 + 3600, "count": 4},
    ]
    proc.process(topic("gw-gate"), batch(gate, None, gateway="gw-gate"))
    proc.process(
        topic("gw-gate"),
        batch(
            [
                presence(
                    "ibeacon:t:1:1",
                    T0 + 3600,
                    T0 + 4000,
                    seq=5,
                    gateway="gw-gate",
                    zone="gate-1",
                )
            ],
            None,
            gateway="gw-gate",
        ),
    )
    log = query.gatelog(
        store, site="mine-a", day=dt.date(2020, 8, 8), now=T0 + 15 * 3600
    )
    assert (log["entries"], log["exits"], log["headcount"]) == (2, 1, 1)
    assert log["visitors"] == ["V1"]
    assert log["on_site"][0]["host"] == "W1"
    assert log["events"][1]["name"] == "Visitor One"
    occ = query.occupancy(
        store, zone="gate-1", t0=T0 + 3600, t1=T0 + 5400, bucket_s=900
    )
    assert [b["present"] for b in occ["buckets"]] == [1, 0]
    assert occ["buckets"][0]["reported"] == 4


def test_beacons_tokens_extracts_and_purge(store):
    store.add_beacon(
        "room-a-beacon", "mine-a", "room-a", key_file="/var/lib/k.json", created=T0
    )
    store.add_beacon("yard-beacon", "mine-a", "yard-1", base_key="00" * 32, created=T0)
    assert [b["beacon"] for b in store.list_beacons()] == [
        "room-a-beacon",
        "yard-beacon",
    ]
    assert store.retire_beacon("yard-beacon", T0 + 1)
    assert not store.retire_beacon("yard-beacon", T0 + 2)
    assert [b["beacon"] for b in store.list_beacons()] == ["room-a-beacon"]
    assert store.get_beacon("yard-beacon")["retired"] == T0 + 1
    tid = store.add_token("ab" * 32, "ops", "laptop", T0)
    assert store.token_by_hash("ab" * 32)["role"] == "ops"
    assert store.revoke_token(tid, T0 + 1)
    assert store.token_by_hash("ab" * 32) is None
    extract = store.save_case_extract("case 1", {"contacts": [1]}, T0)
    proc = processor(store, require=False)
    proc.process(
        topic(),
        batch(
            [
                presence("k:1", T0, T0 + 60, seq=1),
                presence("k:1", T0 + 86400 * 30, T0 + 86400 * 30 + 60, seq=2),
            ],
            None,
        ),
    )
    deleted = store.purge(T0 + 86400)
    assert deleted["presence"] == 1
    assert store.stats()["records"]["presence"] == 1
    assert store.get_case_extract(extract)["answer"] == {"contacts": [1]}


def test_overlapping_assignments_are_refused_with_file_and_line(store, tmp_path):
    load_ref(store, tmp_path)
    bad = tmp_path / "tags.csv"
    bad.write_text(
        "key,person,from,to\nibeacon:t:1:9,W1,2020-08-01,\nibeacon:t:1:1,W2,2020-09-01,\n"
    )
    with pytest.raises(
        refdata.InputError, match=r"tags.csv:3: tags.from: tag 'ibeacon:t:1:1'"
    ):
        refdata.import_items(store, refdata.read_file(str(bad)))
    assert [t["key"] for t in store.list_table("tag_assignments")].count(
        "ibeacon:t:1:9"
    ) == 0
    # Closing the first assignment makes the reissue valid.
    bad.write_text(
        "key,person,from,to\nibeacon:t:1:1,W1,2020-08-01,2020-09-01\nibeacon:t:1:1,W2,2020-09-01,\n"
    )
    assert refdata.import_items(store, refdata.read_file(str(bad))) == {"tags": 2}
    moved = tmp_path / "gateways.csv"
    moved.write_text("gateway,zone,from,to\ngw-bus,bus-07,2020-08-08T11:00:00Z,\n")
    with pytest.raises(refdata.InputError, match="gateway 'gw-bus'"):
        refdata.import_items(store, refdata.read_file(str(moved)))


def test_a_batch_the_engine_refuses_is_quarantined_not_retried_forever(store):
    proc = processor(store, require=False)
    huge = batch([presence("k:1", T0, T0 + 60, seq=2**64)], None)
    # PostgreSQL refuses NUL in text; SQLite stores it: either way the worker goes on.
    nul = batch([presence("k:\x00", T0, T0 + 60, seq=1)], None)
    good = batch([presence("k:2", T0, T0 + 60, seq=2)], None)
    proc.store_group([(topic(), huge), (topic(), nul), (topic(), good)])
    reasons = store.stats()["quarantined_by_reason"]
    if store.dialect == "postgres":
        assert reasons == {"bad-record": 1, "store-rejected": 1}
        assert store.stats()["records"]["presence"] == 1
    else:
        assert reasons == {"bad-record": 1}
        assert store.stats()["records"]["presence"] == 2
    assert proc.counters.quarantined == sum(reasons.values())
