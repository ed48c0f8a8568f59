"""Remote settings: validated like the file, merged file < fleet < unit, safe subset only."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import remote_config
from gateway.config import load_gateway_config
from gateway.errors import ConfigError
from gateway.remote_config import RemoteState, layer_of, parse

FILE = """\
site: mine-a
gateway: room-a
zone: {name: room-a, kind: shift_room}
source: jsonl:trace.jsonl
outbox: {path: outbox.sqlite}
bands: {immediate_dbm: -60, near_dbm: -75}
"""
FLEET = "bluegate/v1/mine-a/config"
UNIT = "bluegate/v1/mine-a/room-a/config"


@pytest.fixture
def base(tmp_path: Path):
    path = tmp_path / "gw.yaml"
    path.write_text(FILE)
    return load_gateway_config(str(path))


def test_topics() -> None:
    assert layer_of(FLEET, "bluegate/v1", "mine-a", "room-a") == "fleet"
    assert layer_of(UNIT, "bluegate/v1", "mine-a", "room-a") == "unit"
    assert (
        layer_of("bluegate/v1/mine-a/room-b/config", "bluegate/v1", "mine-a", "room-a")
        is None
    )


def test_unit_wins_over_fleet_wins_over_file(base) -> None:
    state = RemoteState(base)
    cfg, out = state.receive(
        FLEET, "fleet", b"revision: r1\nbands: {near_dbm: -80}\nlog_level: debug\n"
    )
    assert out.accepted, out
    assert cfg is not None
    assert cfg.bands.near_dbm == -80.0
    assert cfg.bands.immediate_dbm == -60.0  # untouched key keeps the file's value
    assert out.revision == "r1"
    assert set(out.changed) == {"bands.near_dbm", "log_level"}
    cfg, out = state.receive(UNIT, "unit", b'{"bands": {"near_dbm": -70}}')
    assert out.accepted
    assert cfg is not None
    assert cfg.bands.near_dbm == -70.0
    assert cfg.log_level == "debug"  # still from the fleet layer
    # Clearing the unit layer (empty retained message) falls back to the fleet's.
    cfg, out = state.receive(UNIT, "unit", b"")
    assert out.accepted
    assert out.reason == "cleared"
    assert cfg is not None
    assert cfg.bands.near_dbm == -80.0


@pytest.mark.parametrize(
    ("payload", "line", "key", "fragment"),
    [
        (b"bands:\n  near_dbm: loud\n", 2, "bands.near_dbm", "must be a number"),
        (
            b"gatt:\n  reads_per_minute: 9999\n",
            2,
            "gatt.reads_per_minute",
            "at most 600",
        ),
        (b"log_level: chatty\n", 1, "log_level", "must be one of"),
        (b"colour: blue\n", 1, "colour", "unknown key"),
        (
            b"bands: {near_dbm: -70}\nmqtt: {host: evil.example}\n",
            2,
            "mqtt",
            "cannot be changed remotely",
        ),
        (b"source: bluepy:hci1\n", 1, "source", "cannot be changed remotely"),
        (
            b"scan:\n  tick_s: 2\n  active: false\n",
            3,
            "scan.active",
            "cannot be changed remotely",
        ),
        (b"bands: [1, 2\n", 2, "(syntax)", ""),
        (b"\xff\xfe", None, "(payload)", "not UTF-8"),
        (b"- a\n- b\n", 1, "(root)", "mapping"),
    ],
)
def test_rejections_name_topic_line_key(base, payload, line, key, fragment) -> None:
    with pytest.raises(ConfigError) as info:
        parse(UNIT, "unit", payload)
    err = info.value
    assert (err.file, err.line, err.key) == (UNIT, line, key)
    assert fragment in err.message
    # Through the state: rejected, the reason says where, the config is unchanged.
    state = RemoteState(base)
    before = state.current()
    cfg, out = state.receive(UNIT, "unit", payload)
    assert cfg is None
    assert not out.accepted
    assert out.reason.startswith(UNIT)
    assert state.current() == before
    body = out.to_json(1000.0)
    assert body["config"] == "rejected"
    assert body["topic"] == UNIT


def test_rejected_message_keeps_previous_layer(base) -> None:
    state = RemoteState(base)
    state.receive(UNIT, "unit", b"bands: {near_dbm: -70}\n")
    cfg, out = state.receive(UNIT, "unit", b"bands: {near_dbm: nope}\n")
    assert cfg is None
    assert state.current().bands.near_dbm == -70.0


def test_rebase_on_reload_keeps_layers(base, tmp_path: Path) -> None:
    state = RemoteState(base)
    state.receive(FLEET, "fleet", b"gatt: {reads_per_minute: 3}\n")
    path = tmp_path / "gw2.yaml"
    path.write_text(FILE.replace("near_dbm: -75", "near_dbm: -77"))
    cfg = state.rebase(load_gateway_config(str(path)))
    assert cfg.bands.near_dbm == -77.0
    assert cfg.gatt.reads_per_minute == 3


def test_rebuild_keys(base) -> None:
    import dataclasses

    other = dataclasses.replace(base, source="bluepy:hci1", log_level="debug")
    assert remote_config.rebuild_keys(base, other) == ("source",)
    assert remote_config.rebuild_keys(base, base) == ()
