"""The bluegate-central commands end to end on a SQLite store."""

from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest

from central.cli import main
from central.records import batch_rows
from central.store import open_store
from gateway.envelope import make_body
from tests.central.helpers import T0, batch, presence, public_pem, signing_key

REF = """
zones: [{zone: bus-07, kind: bus}]
people: [{person: W1, kind: worker, name: One}, {person: W2, kind: worker, name: Two}]
tags:
  - {key: "ibeacon:t:1:1", person: W1, from: 2020-08-01}
  - {key: "ibeacon:t:1:2", person: W2, from: 2020-08-01}
"""


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "central.yaml"
    path.write_text(
        "storage: sqlite:data/central.sqlite\nrequire_signatures: true\nrules: {min_minutes: 15}\n"
    )
    return str(path)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def seed_data(cfg, tmp_path, capsys):
    key = signing_key()
    pem = tmp_path / "gw.pub"
    pem.write_text(public_pem(key))
    assert (
        run(
            capsys,
            "enroll",
            "--config",
            cfg,
            "--gateway",
            "gw-bus",
            "--public-key",
            str(pem),
        )[0]
        == 0
    )
    ref = tmp_path / "ref.yaml"
    ref.write_text(REF)
    code, out, _ = run(capsys, "import", "--config", cfg, str(ref))
    assert code == 0
    assert json.loads(out)["imported"] == {"zones": 1, "people": 2, "tags": 2}
    from central.ingest import MessageProcessor

    store = open_store(f"sqlite://{tmp_path}/data/central.sqlite")
    proc = MessageProcessor(store, require_signatures=True)
    recs = [presence("ibeacon:t:1:1", T0 + 3600, T0 + 5400, seq=1, gateway="gw-bus", zone="bus-07", zone_kind="bus"),
            presence("ibeacon:t:1:2", T0 + 3600, T0 + 4800, seq=2, gateway="gw-bus", zone="bus-07", zone_kind="bus")]  # fmt: skip
    proc.process(
        "bluegate/v1/mine-a/gw-bus/records", batch(recs, key, gateway="gw-bus")
    )
    store.close()


def test_contacts_in_every_format_and_other_commands(cfg, tmp_path, capsys):
    seed_data(cfg, tmp_path, capsys)
    window = ["--from", "2020-08-08T00:00:00Z", "--to", "2020-08-09"]
    code, out, _ = run(
        capsys,
        "contacts",
        "--config",
        cfg,
        "--person",
        "W1",
        *window,
        "--save",
        "case-1",
    )
    assert code == 0
    answer = json.loads(out)
    assert set(answer) == {"case", "exposures", "contacts", "warnings"}
    assert answer["warnings"] == []
    (c,) = answer["contacts"]
    assert {k: c[k] for k in ("key", "person", "zone", "minutes", "class", "level")} == {
        "key": "ibeacon:t:1:2", "person": "W2", "zone": "bus-07", "minutes": 20.0,
        "class": "F1_enclosed", "level": 1,
    }  # fmt: skip
    assert set(c) >= {
        "key",
        "keys",
        "person",
        "zone",
        "first",
        "last",
        "minutes",
        "class",
        "level",
    }
    assert answer["case"]["rule"]["min_minutes"] == 15
    code, out, _ = run(capsys, "contacts", "--config", cfg, "--device", "ibeacon:t:1:1", *window,
                       "--format", "csv", "--min-minutes", "25")  # fmt: skip
    assert list(csv.reader(io.StringIO(out)))[1:] == []
    code, out, _ = run(
        capsys,
        "contacts",
        "--config",
        cfg,
        "--device",
        "ibeacon:t:1:1",
        *window,
        "--format",
        "table",
    )
    assert "F1_enclosed" in out
    assert "W2" in out
    # A lost stretch of the bus gateway's records is reported with the answer.
    store = open_store(f"sqlite://{tmp_path}/data/central.sqlite")
    body = make_body(
        site="mine-a",
        gateway="gw-bus",
        boot=1,
        sent=T0 + 7200,
        records=[presence("k:9", T0 + 7000, T0 + 7100, seq=5, gateway="gw-bus")],
    )
    store.ingest(batch_rows(body, T0), received=T0, signed=False)
    store.close()
    code, out, _ = run(capsys, "contacts", "--config", cfg, "--person", "W1", *window)
    (warning,) = json.loads(out)["warnings"]
    assert (warning["gateway"], warning["missing_records"]) == ("gw-bus", 2)
    code, out, _ = run(
        capsys, "query", "roster", "--config", cfg, "--zone", "bus-07", *window
    )
    assert [e["person"] for e in json.loads(out)["entries"]] == ["W1", "W2"]
    code, out, _ = run(
        capsys, "query", "timeline", "--config", cfg, "--person", "W2", *window
    )
    assert json.loads(out)["entries"][0]["minutes"] == 20.0
    code, out, _ = run(capsys, "stats", "--config", cfg)
    stats = json.loads(out)
    assert (stats["batches"], stats["records"]["presence"], stats["gateways"]) == (
        2,
        3,
        1,
    )
    code, out, _ = run(capsys, "purge", "--config", cfg)
    assert json.loads(out)["deleted"]["presence"] == 3  # 2020 is past 21 days
    store = open_store(f"sqlite://{tmp_path}/data/central.sqlite")
    assert store.list_case_extracts()[0]["label"] == "case-1"  # extracts are kept
    assert {a["action"] for a in store.list_audit()} >= {
        "contacts",
        "query roster",
        "purge",
    }


def test_tokens_are_stored_hashed(cfg, tmp_path, capsys):
    code, out, _ = run(
        capsys, "token", "create", "--config", cfg, "--role", "ops", "--label", "laptop"
    )
    token = out.strip()
    assert code == 0
    assert len(token) > 40
    store = open_store(f"sqlite://{tmp_path}/data/central.sqlite")
    assert (
        store.token_by_hash(hashlib.sha256(token.encode()).hexdigest())["role"] == "ops"
    )
    dump = (tmp_path / "data" / "central.sqlite").read_bytes() + (
        tmp_path / "data" / "central.sqlite-wal"
    ).read_bytes()
    assert token.encode() not in dump
    code, out, _ = run(capsys, "token", "list", "--config", cfg)
    assert json.loads(out)[0]["label"] == "laptop"
    assert run(capsys, "token", "revoke", "--config", cfg, "1")[0] == 0
    assert run(capsys, "token", "revoke", "--config", cfg, "1")[0] == 1


def test_bad_config_and_bad_input_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("storage: mysql://x\n")
    code, _, err = run(capsys, "stats", "--config", str(bad))
    assert code == 78
    assert f"{bad}:1: storage:" in err
    bad.write_text("storage: sqlite:x.sqlite\nrules: {min_minutes: -1}\n")
    code, _, err = run(capsys, "stats", "--config", str(bad))
    assert code == 78
    assert "rules.min_minutes" in err
    good = tmp_path / "good.yaml"
    good.write_text("storage: sqlite:x.sqlite\n")
    ref = tmp_path / "people.csv"
    ref.write_text("person,kind,name\nW1,worker,One\nW2,alien,Two\n")
    code, _, err = run(capsys, "import", "--config", str(good), str(ref))
    assert code == 2
    assert f"{ref}:3: people.kind:" in err
    code, _, err = run(capsys, "contacts", "--config", str(good), "--bluezone-daily-key", "zz",
                       "--key-date", "2020-08-08", "--from", "2020-08-08", "--to", "2020-08-09")  # fmt: skip
    assert code == 2
    assert "64 hex" in err
