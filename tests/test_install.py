"""deploy/install.sh against a scratch root, and `systemd-analyze verify` on what it installed.

--root mode skips apt-get, useradd and systemctl by design; everything else (venv,
layout, permissions, units, journald drop-in, upgrade, uninstall) is the real script.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
INSTALL = REPO / "deploy" / "install.sh"
UNITS = ["bluegate-gateway", "bluegate-beacon", "bluegate-central"]
ANALYZE = shutil.which("systemd-analyze")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A copy of the source (so the build leaves nothing in the tree) and its wheel."""
    src = tmp_path_factory.mktemp("src")
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for name in ("gateway", "beacon", "central", "config", "deploy"):
        shutil.copytree(
            REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (whl,) = out.glob("bluegate-*.whl")
    return src, whl


def install(
    root: Path, wheel: tuple[Path, Path], *extra: str
) -> subprocess.CompletedProcess[str]:
    src, whl = wheel
    return subprocess.run(
        [
            "sh",
            str(INSTALL),
            "--root",
            str(root),
            "--source",
            str(src),
            "--wheel",
            str(whl),
            "--pip-args",
            "--no-deps --no-index",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def populate_system(root: Path) -> None:
    """What a Debian root has that the units refer to: systemd's own units, /bin/kill."""
    (root / "usr" / "lib" / "systemd").mkdir(parents=True, exist_ok=True)
    system = Path("/usr/lib/systemd/system")
    if not system.is_dir():
        system = Path("/lib/systemd/system")
    shutil.copytree(
        system, root / "usr/lib/systemd/system", symlinks=True, dirs_exist_ok=True
    )
    (root / "usr" / "bin").mkdir(parents=True, exist_ok=True)
    if not (root / "bin").exists():
        os.symlink("usr/bin", root / "bin")
    shutil.copy(shutil.which("kill") or "/bin/kill", root / "usr/bin/kill")


def verify(root: Path, *units: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run(
        [
            ANALYZE,
            "verify",
            f"--root={root}",
            "--man=no",
            "--generators=no",
            *(str(root / "etc/systemd/system" / f"{u}.service") for u in units),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_install_layout_and_units(installed) -> None:
    root, res = installed
    assert "skipping apt-get" in res.stdout
    assert "skipping useradd" in res.stdout
    # Layout and permissions.
    assert mode(root / "var/lib/bluegate") == 0o750
    assert mode(root / "var/lib/bluegate/keys") == 0o700
    assert mode(root / "etc/bluegate") == 0o750
    assert mode(root / "etc/bluegate/gateway.yaml") == 0o640
    for unit in UNITS:
        assert (root / "etc/systemd/system" / f"{unit}.service").is_file()
    journald = (root / "etc/systemd/journald.conf.d/bluegate.conf").read_text()
    assert "SystemMaxUse=" in journald
    # The venv runs as /opt/bluegate on the target, not from the scratch path.
    script = root / "opt/bluegate/venv/bin/bluegate-gateway"
    assert script.read_text().splitlines()[0] == "#!/opt/bluegate/venv/bin/python"
    assert os.access(script, os.X_OK)
    # The installed package is this source (its files are in the venv).
    site = next((root / "opt/bluegate/venv/lib").glob("python3*/site-packages"))
    assert (site / "gateway" / "systemd.py").read_text() == (
        REPO / "gateway/systemd.py"
    ).read_text()

    gw = (root / "etc/systemd/system/bluegate-gateway.service").read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "RestartPreventExitStatus=78",
        "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN",
        "CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/bluegate",
        "PrivateTmp=yes",
        "ProtectHome=yes",
    ):
        assert f"\n{line}" in gw, line
    # A bus must not wait for time sync; the beacon and central must.
    directives = [line for line in gw.splitlines() if not line.startswith("#")]
    assert not any("time-sync" in line for line in directives)
    for unit in ("bluegate-beacon", "bluegate-central"):
        text = (root / "etc/systemd/system" / f"{unit}.service").read_text()
        assert (
            "After=time-sync.target" in text
            or "time-sync.target" in text.split("After=")[-1]
        )
        assert (
            "Wants=time-sync.target" in text
            or "Wants=network-online.target time-sync.target" in text
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, wheel):
    root = tmp_path_factory.mktemp("installed") / "root"
    res = install(root, wheel, "--role", "all")
    assert res.returncode == 0, res.stderr
    return root, res


@pytest.mark.skipif(
    ANALYZE is None,
    reason="systemd-analyze is part of systemd (Debian package systemd)",
)
def test_installed_units_pass_systemd_analyze_verify(installed) -> None:
    root, _ = installed
    populate_system(root)
    res = verify(root, *UNITS)
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip() == "", (
        res.stderr
    )  # not even a warning (unknown keys only warn)
    # The check really checks: a broken unit fails, a typo warns.
    unit = root / "etc/systemd/system/bluegate-gateway.service"
    good = unit.read_text()
    unit.write_text(
        good.replace(
            "ExecStart=/opt/bluegate/venv/bin/bluegate-gateway",
            "ExecStart=/opt/bluegate/venv/bin/nothere",
        )
    )
    assert verify(root, "bluegate-gateway").returncode != 0
    unit.write_text(good.replace("WatchdogSec=90", "WatchdogSecs=90"))
    assert "Unknown key" in verify(root, "bluegate-gateway").stderr
    unit.write_text(good)


def test_upgrade_keeps_data_and_config_uninstall_keeps_data(
    tmp_path: Path, wheel
) -> None:
    root = tmp_path / "root"
    assert install(root, wheel, "--role", "gateway").returncode == 0
    cfg = root / "etc/bluegate/gateway.yaml"
    cfg.write_text(cfg.read_text().replace("gateway: room-a", "gateway: room-z"))
    outbox = root / "var/lib/bluegate/outbox.sqlite"
    outbox.write_bytes(b"precious")
    (root / "opt/bluegate/venv/bin/stale-marker").write_text("x")
    res = install(root, wheel, "--upgrade")
    assert res.returncode == 0, res.stderr
    assert "keeping" in res.stdout
    assert "gateway: room-z" in cfg.read_text()
    assert outbox.read_bytes() == b"precious"
    assert (root / "etc/systemd/system/bluegate-gateway.service").is_file()
    assert not (
        root / "etc/systemd/system/bluegate-central.service"
    ).exists()  # role kept

    res = install(root, wheel, "--uninstall")
    assert res.returncode == 0, res.stderr
    assert not (root / "etc/systemd/system/bluegate-gateway.service").exists()
    assert not (root / "etc/systemd/journald.conf.d/bluegate.conf").exists()
    assert not (root / "opt/bluegate").exists()
    assert outbox.read_bytes() == b"precious"
    assert cfg.exists()

    res = install(root, wheel, "--uninstall", "--purge")
    assert res.returncode == 0
    assert not (root / "var/lib/bluegate").exists()
    assert not (root / "etc/bluegate").exists()


def test_bad_usage(tmp_path: Path) -> None:
    res = subprocess.run(
        ["sh", str(INSTALL), "--root", str(tmp_path), "--role", "toaster"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 1
    assert "--role must be" in res.stderr
    res = subprocess.run(
        ["sh", str(INSTALL), "--root", str(tmp_path), "--upgrade"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 1
    assert "install first" in res.stderr
