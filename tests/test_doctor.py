"""`doctor`: each check against a real thing (a scratch sysfs for the adapter, which is
the only faked hardware; real getcap, a real Mosquitto with and without TLS, a real
SQLite outbox held open by a writer)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.commands import doctor
from gateway.commands.doctor import Env, file_caps_grant
from gateway.config import load_gateway_config
from gateway.outbox import open_outbox
from tests.servers import Mosquitto

REPO = Path(__file__).resolve().parent.parent


def make_cfg(
    tmp_path: Path,
    *,
    source: str = "bluepy:hci0",
    kind: str = "shift_room",
    mqtt: str = "{host: 127.0.0.1, port: 1}",
):
    path = tmp_path / "gw.yaml"
    path.write_text(
        f"site: mine-a\ngateway: gw-1\nzone: {{name: z, kind: {kind}}}\nsource: {source}\n"
        f"mqtt: {mqtt}\noutbox: {{path: {tmp_path / 'data' / 'outbox.sqlite'}}}\n"
    )
    return path, load_gateway_config(str(path))


def sysfs(
    tmp_path: Path, *, adapter: bool = True, soft: str = "0", hard: str = "0"
) -> Path:
    root = tmp_path / "sys"
    (root / "class" / "bluetooth").mkdir(parents=True)
    if adapter:
        (root / "class" / "bluetooth" / "hci0").mkdir()
    rf = root / "class" / "rfkill" / "rfkill0"
    rf.mkdir(parents=True)
    (rf / "type").write_text("bluetooth\n")
    (rf / "soft").write_text(soft + "\n")
    (rf / "hard").write_text(hard + "\n")
    wifi = root / "class" / "rfkill" / "rfkill1"
    wifi.mkdir()
    (wifi / "type").write_text("wlan\n")
    (wifi / "soft").write_text("1\n")  # a blocked Wi-Fi is not our problem
    (wifi / "hard").write_text("0\n")
    return root


@pytest.mark.parametrize(
    ("kw", "status", "fragment"),
    [
        ({"adapter": False}, "FAIL", "hci0 not present"),
        ({"soft": "1"}, "FAIL", "rfkill unblock"),
        ({"hard": "1"}, "FAIL", "hardware switch"),
        ({}, "WARN", "could not ask"),  # no HCI socket here: present, not blocked
    ],
)
def test_adapter(tmp_path: Path, kw, status: str, fragment: str) -> None:
    _, cfg = make_cfg(tmp_path)
    env = Env(sys_root=str(sysfs(tmp_path, **kw)), use_hci_socket=False)
    (check,) = doctor.check_adapter(cfg, env)
    assert check.status == status
    assert fragment in check.detail + check.fix


def test_recorded_source_needs_no_adapter(tmp_path: Path) -> None:
    _, cfg = make_cfg(tmp_path, source="jsonl:/x.jsonl")
    assert doctor.check_adapter(cfg, Env(sys_root=str(tmp_path)))[0].status == "PASS"


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("cap_net_admin,cap_net_raw=eip", True),
        ("= cap_net_admin,cap_net_raw+eip", True),
        ("cap_net_raw=eip", False),
        ("cap_net_admin,cap_net_raw=i", False),
        ("", False),
    ],
)
def test_file_caps_grant(text: str, ok: bool) -> None:
    assert file_caps_grant(text) is ok


def status_file(tmp_path: Path, eff: int, amb: int) -> str:
    path = tmp_path / "status"
    path.write_text(
        f"Name:\tpython\nCapInh:\t0000000000000000\nCapPrm:\t{eff:016x}\nCapEff:\t{eff:016x}\nCapBnd:\t000001ffffffffff\nCapAmb:\t{amb:016x}\n"
    )
    return str(path)


def test_capabilities(tmp_path: Path) -> None:
    _, cfg = make_cfg(tmp_path)
    helper = tmp_path / "bluepy-helper"
    shutil.copy("/bin/true", helper)
    none = status_file(tmp_path, 0, 0)
    env = Env(proc_status=none, helper=str(helper), unit_file=str(tmp_path / "nounit"))
    (check,) = doctor.check_capabilities(cfg, env)
    assert check.status == "FAIL"
    assert "setcap cap_net_raw,cap_net_admin+eip" in check.fix
    # Ambient capabilities of this process (what the unit gives the daemon).
    env_amb = Env(
        proc_status=status_file(tmp_path, 0x3000, 0x3000),
        helper=str(helper),
        unit_file=str(tmp_path / "nounit"),
    )
    assert doctor.check_capabilities(cfg, env_amb)[0].status == "PASS"
    # The installed unit grants them.
    unit = tmp_path / "unit"
    unit.write_text((REPO / "deploy/systemd/bluegate-gateway.service").read_text())
    env_unit = Env(proc_status=none, helper=str(helper), unit_file=str(unit))
    assert doctor.check_capabilities(cfg, env_unit)[0].status == "PASS"
    # File capabilities on the helper, set and read with the real libcap tools.
    setcap = shutil.which("setcap") or "/usr/sbin/setcap"
    res = subprocess.run(
        [setcap, "cap_net_raw,cap_net_admin+eip", str(helper)], capture_output=True
    )
    if res.returncode != 0:
        pytest.skip(f"setcap not possible here: {res.stderr!r}")
    (check,) = doctor.check_capabilities(cfg, env)
    assert check.status == "PASS", check
    assert "cap_net_admin,cap_net_raw=eip" in check.detail
    # Missing helper.
    gone = Env(proc_status=none, helper=str(tmp_path / "gone"), unit_file=str(unit))
    assert doctor.check_capabilities(cfg, gone)[0].status == "FAIL"


def test_clock(tmp_path: Path) -> None:
    _, room = make_cfg(tmp_path)
    (tmp_path / "b").mkdir()
    _, bus = make_cfg(tmp_path / "b", kind="bus")
    marker = tmp_path / "run" / "systemd" / "timesync"
    env = Env(run_dir=str(tmp_path / "run"))
    unsynced = {"timedatectl": lambda: "no", "kernel": lambda: doctor.TIME_ERROR}
    assert doctor.check_clock(room, env, **unsynced)[0].status == "FAIL"
    assert (
        doctor.check_clock(bus, env, **unsynced)[0].status == "WARN"
    )  # a bus runs unsynced
    assert (
        doctor.check_clock(room, env, timedatectl=lambda: "yes", kernel=lambda: 5)[
            0
        ].status
        == "PASS"
    )
    assert (
        doctor.check_clock(room, env, timedatectl=lambda: None, kernel=lambda: 0)[
            0
        ].status
        == "PASS"
    )
    marker.mkdir(parents=True)
    (marker / "synchronized").touch()
    assert doctor.check_clock(room, env, **unsynced)[0].status == "PASS"
    # The real kernel answers something sensible.
    assert doctor.adjtimex_state() in (0, 1, 2, 3, 4, 5)


def test_disk_and_outbox(tmp_path: Path) -> None:
    _, cfg = make_cfg(tmp_path)
    assert doctor.check_disk(cfg)[0].status == "PASS"
    assert doctor.check_outbox(cfg, 1000.0)[0].status == "WARN"  # not created yet
    box = open_outbox(cfg.outbox.path, max_mb=1, retention_days=1)
    try:
        box.append_many(
            [
                {
                    "kind": "occupancy",
                    "gateway": "gw-1",
                    "zone": "z",
                    "t": 1.0,
                    "count": 3,
                }
            ]
            * 5,
            1000.0,
        )
        # The daemon holds the write lock; doctor reads alongside it.
        (check,) = doctor.check_outbox(cfg, 1000.0 + 7200)
        assert check.status == "WARN"
        assert "depth 5, oldest 7200s" in check.detail
        assert doctor.check_outbox(cfg, 1010.0)[0].status == "PASS"
    finally:
        box.close()
    bad = tmp_path / "data" / "outbox.sqlite"
    bad.write_bytes(b"not a database at all" * 100)
    assert doctor.check_outbox(cfg, 1000.0)[0].status == "FAIL"


def test_outbox_rows_held_for_the_clock_are_shown(tmp_path: Path, monkeypatch) -> None:
    from gateway.clock import Held

    monkeypatch.setenv("BLUEGATE_CLOCK_SYNC_MARKER", str(tmp_path / "synced"))
    _, cfg = make_cfg(tmp_path)
    box = open_outbox(cfg.outbox.path, max_mb=1, retention_days=1)
    record = {"kind": "occupancy", "gateway": "gw-1", "zone": "z", "t": 1.0, "count": 3}
    try:
        box.append_many([], 1000.0, held=[Held(dict(record), 0.0)] * 3)
        (check,) = doctor.check_outbox(cfg, 1010.0)
        assert check.status == "WARN"  # unsynchronised: the marker file is absent
        assert "held for the clock 3" in check.detail
        assert "depth 0" in check.detail
        (tmp_path / "synced").touch()
        assert doctor.check_outbox(cfg, 1010.0)[0].status == "PASS"
    finally:
        box.close()


@pytest.mark.integration
def test_broker_plain(tmp_path: Path, mosquitto: Mosquitto) -> None:
    _, cfg = make_cfg(tmp_path, mqtt=f"{{host: 127.0.0.1, port: {mosquitto.port}}}")
    (check,) = doctor.check_broker(cfg)
    assert check.status == "PASS", check
    _, closed = make_cfg(tmp_path, mqtt="{host: 127.0.0.1, port: 1}")
    (check,) = doctor.check_broker(closed)
    assert check.status == "FAIL"
    assert "ConnectionRefused" in check.detail


def _cert(
    subject: str, issuer_key, issuer_name, key, *, ca: bool, san: str | None = None
):
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName(san),
                    x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def write_pki(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    ca = _cert("test-ca", ca_key, ca_name, ca_key, ca=True)
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv = _cert("localhost", ca_key, ca_name, srv_key, ca=False, san="localhost")
    pem = serialization.Encoding.PEM
    (d / "ca.pem").write_bytes(ca.public_bytes(pem))
    (d / "server.pem").write_bytes(srv.public_bytes(pem))
    (d / "server-key.pem").write_bytes(
        srv_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


@pytest.mark.integration
def test_broker_tls(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    write_pki(pki)
    other = tmp_path / "other"
    write_pki(other)
    broker = Mosquitto(tmp_path / "mosq")
    broker.extra_config = f"listener {broker.port} 127.0.0.1\nallow_anonymous true\ncafile {pki}/ca.pem\ncertfile {pki}/server.pem\nkeyfile {pki}/server-key.pem\n"
    broker.start()
    try:
        _, cfg = make_cfg(
            tmp_path, mqtt=f"{{host: 127.0.0.1, port: {broker.port}, ca: {pki}/ca.pem}}"
        )
        (check,) = doctor.check_broker(cfg)
        assert check.status == "PASS", check
        assert "(TLS)" in check.detail
        _, wrong = make_cfg(
            tmp_path,
            mqtt=f"{{host: 127.0.0.1, port: {broker.port}, ca: {other}/ca.pem}}",
        )
        (check,) = doctor.check_broker(wrong)
        assert check.status == "FAIL"
        assert (
            "CERTIFICATE_VERIFY_FAILED" in check.detail.upper()
            or "certificate" in check.detail.lower()
        )
        _, missing = make_cfg(
            tmp_path,
            mqtt=f"{{host: 127.0.0.1, port: {broker.port}, ca: {tmp_path}/none.pem}}",
        )
        assert "mqtt.ca" in doctor.check_broker(missing)[0].detail
    finally:
        broker.stop()


@pytest.mark.integration
def test_cli_json_and_exit_status(tmp_path: Path, mosquitto: Mosquitto) -> None:
    path, _ = make_cfg(
        tmp_path,
        source="jsonl:/dev/null",
        kind="bus",
        mqtt=f"{{host: 127.0.0.1, port: {mosquitto.port}}}",
    )
    res = subprocess.run(
        [sys.executable, "-m", "gateway", "doctor", "--config", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = json.loads(res.stdout)
    names = [c["name"] for c in out["checks"]]
    assert names == ["adapter", "capabilities", "clock", "broker", "disk", "outbox"]
    assert res.returncode == (0 if out["ok"] else 1)
    assert all(c["status"] != "FAIL" for c in out["checks"]), out
    # A bluepy source on a machine without the adapter: FAIL, exit 1, the fix printed.
    path, _ = make_cfg(tmp_path, mqtt=f"{{host: 127.0.0.1, port: {mosquitto.port}}}")
    res = subprocess.run(
        [sys.executable, "-m", "gateway", "doctor", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if Path("/sys/class/bluetooth/hci0").exists():
        pytest.skip("this machine has a real hci0")
    assert res.returncode == 1
    assert "FAIL  adapter" in res.stdout
    assert "->" in res.stdout
