"""Every example in config/ loads with the real schema; every kind of bad configuration
gives its file, line and key and exit 78 through the real CLI."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gateway.config import GatewayConfig, load_gateway_config

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "config"
GATEWAY_EXAMPLES = ["shift-room.yaml", "dormitory.yaml", "bus.yaml", "entrance.yaml"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


@pytest.mark.parametrize("name", GATEWAY_EXAMPLES)
def test_gateway_examples_load(name: str) -> None:
    cfg = load_gateway_config(str(CONFIG / name))
    assert isinstance(cfg, GatewayConfig)
    assert cfg.site == "mine-a"
    kind = {
        "shift-room.yaml": "shift_room",
        "dormitory.yaml": "dormitory",
        "bus.yaml": "bus",
        "entrance.yaml": "entrance",
    }[name]
    assert cfg.zone.kind == kind


def test_examples_are_commented() -> None:
    for path in CONFIG.glob("*.yaml"):
        text = path.read_text()
        comments = sum(1 for line in text.splitlines() if line.lstrip().startswith("#"))
        assert comments >= 5, f"{path.name} is not commented"
        assert "-----BEGIN" not in text


def test_check_config_prints_effective_config() -> None:
    res = cli("run", "--config", str(CONFIG / "bus.yaml"), "--check-config")
    assert res.returncode == 0, res.stderr
    shown = yaml.safe_load(res.stdout)
    assert shown["zone"] == {"name": "bus-07", "kind": "bus", "enclosed": None}
    assert shown["outbox"]["synchronous"] == "full"
    assert shown["gatt"]["reads_per_minute"] == 12  # a default, filled in
    # Secrets appear only as the paths they live at.
    assert shown["mqtt"]["key"] == "/var/lib/bluegate/keys/tls.key"
    assert "note: referenced file does not exist yet: mqtt.ca" in res.stderr
    res = cli(
        "run",
        "--config",
        str(CONFIG / "bus.yaml"),
        "--check-config",
        "--format",
        "json",
    )
    assert res.returncode == 0
    assert json.loads(res.stdout)["gateway"] == "bus-07"


def _schema_or_skip(module: str, loader: str):
    try:
        mod = importlib.import_module(module)
    except ImportError:
        pytest.skip(f"{module} is not built yet")
    fn = getattr(mod, loader, None)
    if fn is None:
        pytest.skip(f"{module}.{loader} is not built yet")
    return fn


def test_beacon_example_matches_design_keys() -> None:
    data = yaml.safe_load((CONFIG / "beacon.yaml").read_text())
    assert {"site", "beacon", "zone", "scheme", "key_file"} <= set(data)
    load = _schema_or_skip("beacon.config", "load_beacon_config")
    cfg = load(str(CONFIG / "beacon.yaml"))
    assert cfg.beacon == "room-a-beacon"


def test_central_example_matches_design_keys() -> None:
    data = yaml.safe_load((CONFIG / "central.yaml").read_text())
    assert {"storage", "mqtt", "http"} <= set(data)
    load = _schema_or_skip("central.config", "load_central_config")
    load(str(CONFIG / "central.yaml"))


GOOD = (CONFIG / "shift-room.yaml").read_text()


def bad(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


def line_of(text: str, fragment: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if fragment in line and not line.lstrip().startswith("#"):
            return i
    raise AssertionError(fragment)


# (name, text, line fragment (the line to blame), key, message fragment)
BAD = [
    (
        "unknown top-level key",
        bad("log_level: info", "log_level: info\nlogging: verbose"),
        "logging: verbose",
        "logging",
        "unknown key",
    ),
    (
        "unknown nested key",
        bad("  max_mb: 256", "  max_mb: 256\n  max_gb: 1"),
        "max_gb",
        "outbox.max_gb",
        "unknown key",
    ),
    (
        "typo in a section",
        bad("  tick_s: 1.0", "  tick_sec: 1.0"),
        "tick_sec",
        "scan.tick_sec",
        "unknown key",
    ),
    (
        "wrong type",
        bad("  port: 8883", "  port: eighty"),
        "port: eighty",
        "mqtt.port",
        "whole number",
    ),
    (
        "out of range",
        bad("  port: 8883", "  port: 70000"),
        "port: 70000",
        "mqtt.port",
        "at most 65535",
    ),
    (
        "below minimum",
        bad("  tick_s: 1.0", "  tick_s: 0"),
        "tick_s: 0",
        "scan.tick_s",
        "at least",
    ),
    (
        "bad choice",
        bad("  kind: shift_room", "  kind: canteen"),
        "kind: canteen",
        "zone.kind",
        "must be one of",
    ),
    (
        "bad boolean",
        bad("  active: true ", "  active: maybe "),
        "active: maybe",
        "scan.active",
        "true or false",
    ),
    (
        "missing required",
        GOOD.replace("site: mine-a\n", ""),
        "gateway: room-a",
        "site",
        "is required",
    ),
    (
        "missing nested required",
        bad("  name: shift-room-a\n", ""),
        "kind: shift_room",  # where the zone mapping starts
        "zone.name",
        "is required",
    ),
    (
        "inline secret",
        bad(
            "  key: /var/lib/bluegate/keys/tls.key",
            '  key: "-----BEGIN PRIVATE KEY-----"',
        ),
        "BEGIN PRIVATE",
        "mqtt.key",
        "never inlined",
    ),
    (
        "cross-field rule",
        bad("  cert: /etc/bluegate/tls/room-a.crt\n", ""),
        "host: broker",  # where the mqtt mapping starts
        "mqtt.cert",
        "together",
    ),
    (
        "bad name",
        bad("gateway: room-a", "gateway: room a"),
        "gateway: room a",
        "gateway",
        "without",
    ),
    (
        "duplicate key",
        bad("log_level: info", "log_level: info\nlog_level: debug"),
        "log_level: debug",
        "log_level",
        "twice",
    ),
    (
        "list where a mapping belongs",
        bad("zone:\n  name: shift-room-a\n  kind: shift_room\n", "zone: [a, b]\n"),
        "zone: [a, b]",
        "zone",
        "mapping",
    ),
    (
        "mapping where a value belongs",
        bad("source: bluepy:hci0", "source: {a: 1}"),
        "source: {a: 1}",
        "source",
        "single value",
    ),
    (
        "syntax error",
        bad("  port: 8883", "  port: [8883"),
        "port: [8883",
        "(syntax)",
        "",
    ),
]


@pytest.mark.parametrize(
    ("name", "text", "blame", "key", "fragment"), BAD, ids=[b[0] for b in BAD]
)
def test_bad_config_through_cli(
    tmp_path: Path, name: str, text: str, blame: str, key: str, fragment: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    res = cli("run", "--config", str(path), "--check-config")
    assert res.returncode == 78, (res.stdout, res.stderr)
    err = res.stderr.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    line = line_of(text, blame)
    if key == "(syntax)":
        # The YAML parser reports where it gave up: at or just after the bad line.
        assert f"{path}:" in err
        assert "(syntax)" in err
        reported = int(err.split(f"{path}:")[1].split(":")[0])
        assert line <= reported <= line + 2
    else:
        assert f"{path}:{line}: {key}: " in err, err
        assert fragment in err


def test_missing_file_exits_78(tmp_path: Path) -> None:
    res = cli("run", "--config", str(tmp_path / "nope.yaml"), "--check-config")
    assert res.returncode == 78
    assert "cannot read" in res.stderr
