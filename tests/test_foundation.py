"""The foundation: commands exist, config errors name file/line/key and exit 78."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from gateway import yamlconf
from gateway.config import GatewayConfig, load_gateway_config
from gateway.errors import ConfigError

GOOD = """\
site: mine-a
gateway: bus-07
zone: {name: bus-07, kind: bus}
source: jsonl:trace.jsonl
mqtt: {host: 127.0.0.1, port: 1883}
outbox: {path: outbox.sqlite}
"""


def test_contract_keys_load(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(GOOD)
    cfg = load_gateway_config(str(path))
    assert cfg.site == "mine-a"
    assert cfg.zone.kind == "bus"
    assert cfg.zone.is_enclosed
    # Relative paths resolve against the config file's folder (as nobodd does).
    assert cfg.outbox.path == str(tmp_path / "outbox.sqlite")


@pytest.mark.parametrize(
    ("text", "line", "key", "fragment"),
    [
        (GOOD + "colour: blue\n", 7, "colour", "unknown key"),
        (GOOD.replace("kind: bus", "kind: tram"), 3, "zone.kind", "must be one of"),
        (GOOD.replace("port: 1883", "port: 99999"), 5, "mqtt.port", "at most 65535"),
        (GOOD.replace("port: 1883", "port: many"), 5, "mqtt.port", "whole number"),
        (GOOD.replace("site: mine-a\n", ""), 1, "site", "is required"),
        ("site: [unclosed\n", 2, "(syntax)", ""),
        (
            GOOD.replace("gateway: bus-07", "gateway: bus/07"),
            2,
            "gateway",
            "without '/'",
        ),
    ],
)
def test_bad_config_names_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, fragment: str
) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_gateway_config(str(path))
    assert info.value.line == line
    assert info.value.key == key
    assert fragment in info.value.message
    assert str(path) in str(info.value)


def test_inline_secret_refused() -> None:
    text = GOOD + "mqtt: {key: '-----BEGIN PRIVATE KEY-----abc'}\n"
    with pytest.raises(ConfigError):
        yamlconf.load_text(text, GatewayConfig, source="x.yaml")


@pytest.mark.parametrize("prog", ["gateway", "beacon", "central"])
def test_python_m_entry_points(prog: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", prog, "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "COMMAND" in out.stdout


@pytest.mark.integration
def test_real_mosquitto_roundtrip(mosquitto) -> None:
    got: list[bytes] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda _c, _u, msg: got.append(msg.payload)
    client.connect("127.0.0.1", mosquitto.port)
    client.subscribe("t/x", qos=1)
    client.loop_start()
    try:
        info = client.publish("t/x", b"hello", qos=1)
        info.wait_for_publish(5)
        import time

        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        client.loop_stop()
        client.disconnect()
    assert got == [b"hello"]


@pytest.mark.integration
def test_real_postgres(postgres) -> None:
    import psycopg

    with psycopg.connect(postgres.dsn) as conn:
        assert conn.execute("select 40 + 2").fetchone() == (42,)
