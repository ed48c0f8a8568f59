"""Beacon keys: enrolment (0600, atomic, never printed), rekeying after a disclosure
(old key archived with its validity, new IDs unrelated), and the config schema."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path

import pytest

from beacon import bluezone, keystore, plan
from beacon.config import BeaconConfig, load_beacon_config
from gateway.config import ZoneConfig
from gateway.errors import ConfigError
from tests.beacon.helpers import REPO, beacon_yaml, cli

T0 = 1_795_000_000.0  # 2026-11-18T...Z


def test_enroll_cli_writes_0600_key_and_never_prints_it(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "beacon-key.json"
    cfg = beacon_yaml(tmp_path, key_file)
    res = cli("beacon", "enroll", "--config", str(cfg))
    assert res.returncode == 0, res.stderr
    data = json.loads(key_file.read_text())
    assert set(data) == {"base_key", "created"}
    assert len(bytes.fromhex(data["base_key"])) == 32
    assert dt.date.fromisoformat(data["created"]) == dt.datetime.now(dt.UTC).date()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert data["base_key"] not in res.stdout + res.stderr
    assert keystore.fingerprint(bytes.fromhex(data["base_key"])) in res.stdout
    assert "bluegate-central beacon register" in res.stdout
    # A second enrolment must not destroy the key phones have already logged.
    again = cli("beacon", "enroll", "--config", str(cfg))
    assert again.returncode == 1
    assert "refusing to overwrite" in again.stderr
    assert json.loads(key_file.read_text()) == data
    # No temporary files left beside the key.
    assert [p.name for p in key_file.parent.iterdir()] == ["beacon-key.json"]


def test_rekey_archives_old_key_with_validity(tmp_path: Path) -> None:
    key_file = tmp_path / "k.json"
    first = keystore.enroll(key_file, dt.date(2026, 11, 10), lambda n: bytes([1]) * n)
    now = bluezone.midnight_of(dt.date(2026, 11, 18)) + 10 * 3600 + 7 * 60  # 10:07
    archived, new = keystore.rekey(
        key_file, now, 96, reason="F0 export", random_bytes=lambda n: bytes([2]) * n
    )
    assert archived.base_key == first.base_key
    # Valid to the end of the slot in progress: the daemon switches at the boundary.
    assert (
        archived.retired
        == bluezone.midnight_of(dt.date(2026, 11, 18)) + 10 * 3600 + 900
    )
    assert new.created == dt.date(2026, 11, 18)
    assert keystore.load_key(key_file).base_key == bytes([2]) * 32
    files = list(keystore.archive_dir(key_file).iterdir())
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    stored = json.loads(files[0].read_text())
    assert stored["retired"] == "2026-11-18T10:15:00Z"
    assert stored["reason"] == "F0 export"
    history = keystore.load_history(key_file)
    assert [k.base_key for k in history] == [bytes([1]) * 32, bytes([2]) * 32]
    assert history[0].covers(now)
    assert not history[0].covers(archived.retired)
    assert history[1].covers(archived.retired)


def test_rekey_new_ids_unrelated_to_old_chain(tmp_path: Path) -> None:
    """The disclosed daily key's chain (every later day of the old key) predicts
    none of the new key's IDs."""
    key_file = tmp_path / "k.json"
    old = keystore.enroll(key_file, dt.date(2026, 11, 1))
    now = bluezone.midnight_of(dt.date(2026, 11, 5)) + 3600
    _, new = keystore.rekey(key_file, now, 96)
    disclosed = old.daily_key(dt.date(2026, 11, 5))
    attacker: set[bytes] = set()
    key = disclosed
    for _ in range(30):
        attacker.update(bluezone.ids_for_day(key))
        key = bluezone.next_daily_key(key)
    for day in range(30):
        ids = bluezone.ids_for_day(
            new.daily_key(dt.date(2026, 11, 5) + dt.timedelta(day))
        )
        assert not attacker.intersection(ids)


def test_interrupted_rekey_keeps_old_key(tmp_path: Path) -> None:
    key_file = tmp_path / "k.json"
    keystore.enroll(key_file, dt.date(2026, 11, 1))
    current = keystore.load_key(key_file)
    # The archive written, then power lost before the key file was replaced.
    folder = keystore.archive_dir(key_file)
    folder.mkdir()
    copy = keystore.BaseKey(current.base_key, current.created, T0)
    (folder / "x.json").write_text(json.dumps(copy.to_json()))
    assert [k.base_key for k in keystore.load_history(key_file)] == [current.base_key]


def test_key_never_in_repr_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    key_file = tmp_path / "k.json"
    key = keystore.enroll(key_file, dt.date(2026, 11, 1))
    keystore.rekey(key_file, T0, 96)
    new = keystore.load_key(key_file)
    for secret in (key.base_key.hex(), new.base_key.hex()):
        assert secret not in caplog.text
        assert secret not in repr(key) + repr(new)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("not json", "(json)"),
        ('{"created": "2026-01-01"}', "base_key"),
        ('{"base_key": "xyz", "created": "2026-01-01"}', "base_key"),
        ('{"base_key": "' + "00" * 31 + '", "created": "2026-01-01"}', "base_key"),
        ('{"base_key": "' + "00" * 32 + '", "created": "1/1/2026"}', "created"),
    ],
)
def test_bad_key_files(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "k.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        keystore.load_key(path)
    assert err.value.key == field
    assert err.value.file == str(path)


def test_key_watcher_follows_rekey(tmp_path: Path) -> None:
    key_file = tmp_path / "k.json"
    keystore.enroll(key_file, dt.date(2026, 11, 1))
    watcher = keystore.KeyWatcher(str(key_file))
    first = watcher.current()
    assert watcher.current() is first
    keystore.rekey(key_file, T0, 96)
    assert watcher.current().base_key != first.base_key


def test_example_config_and_schema_errors(tmp_path: Path) -> None:
    cfg = load_beacon_config(str(REPO / "config" / "beacon.yaml"))
    assert cfg.scheme == "bluezone"
    assert cfg.slots_per_day == 96
    assert cfg.advertising.type == "broadcast"
    for extra, key in (
        ("slots_per_day: 7\n", "slots_per_day"),
        ("adapter: bluetooth0\n", "adapter"),
        ("advertising: {interval_ms: 5}\n", "advertising.interval_ms"),
        ("colour: blue\n", "colour"),
    ):
        path = beacon_yaml(tmp_path, tmp_path / "k.json", extra)
        with pytest.raises(ConfigError) as err:
            load_beacon_config(str(path))
        assert err.value.key == key, err.value
        assert err.value.line is not None
    path = beacon_yaml(tmp_path, tmp_path / "k.json", scheme="ibeacon")
    with pytest.raises(ConfigError, match="ibeacon section"):
        load_beacon_config(str(path))
    path = beacon_yaml(
        tmp_path,
        tmp_path / "k.json",
        "ibeacon: {uuid: C7AFEF7B-1788-4F4A-A87D-691D53BF21C4, major: 1, minor: 2}\n",
        scheme="ibeacon",
    )
    with pytest.raises(ConfigError, match="wake-up"):
        load_beacon_config(str(path))
    res = cli("beacon", "frame", "--config", str(path), "--at", "2026-01-01T00:00:00Z")
    assert res.returncode == 78
    assert "ibeacon.uuid" in res.stderr


def test_advert_before_key_date_is_refused() -> None:
    cfg = BeaconConfig("s", "b", ZoneConfig("z", "bus"), key_file="/k")
    with pytest.raises(ValueError):
        plan.advert_at(
            cfg,
            bluezone.midnight_of(dt.date(2026, 1, 1)) - 1,
            bytes(32),
            dt.date(2026, 1, 1),
        )


def test_atomic_write_leaves_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "k.json"
    target.write_text("old")

    def boom(fd: int) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        keystore.write_atomic(target, "new", overwrite=True)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_root_enrolment_keeps_the_daemon_user_as_owner(tmp_path: Path) -> None:
    folder = tmp_path / "bluegate"
    folder.mkdir()
    os.chown(folder, 4321, 4321)  # the `bluegate` user the daemon runs as
    key_file = folder / "beacon-key.json"
    keystore.enroll(key_file, dt.date(2026, 11, 1))
    assert (key_file.stat().st_uid, key_file.stat().st_gid) == (4321, 4321)
    keystore.rekey(key_file, T0, 96)
    assert key_file.stat().st_uid == 4321
    for archived in keystore.archive_dir(key_file).iterdir():
        assert archived.stat().st_uid == 4321


def test_key_watcher_missing_file_is_a_config_error(tmp_path: Path) -> None:
    watcher = keystore.KeyWatcher(str(tmp_path / "gone.json"))
    with pytest.raises(ConfigError):
        watcher.current()
