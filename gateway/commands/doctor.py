"""`bluegate-gateway doctor --config CFG [--json]`: field diagnostics.

Each check says PASS, WARN or FAIL, what it saw, and for anything but PASS what to
do. Exit status 1 if any check FAILs, else 0. Nothing here changes the unit: the
adapter is only queried, the outbox is opened read-only (a running daemon holds
its write lock, and opening it as a writer would start a new `boot`), the broker
connection uses its own client id so the daemon's persistent session is untouched.

Checks:
- adapter: present (/sys/class/bluetooth/hciN), not rfkill-blocked
  (/sys/class/rfkill/*/soft|hard), up (HCIGETDEVINFO flags, as `hciconfig` does);
- capabilities: the bluepy-helper binary's file capabilities (`getcap`), this
  process's CapEff/CapAmb (/proc/self/status) and the installed unit's
  AmbientCapabilities: scanning needs CAP_NET_RAW and CAP_NET_ADMIN;
- clock: /run/systemd/timesync/synchronized, `timedatectl show`, the kernel's
  adjtimex state (TIME_ERROR = unsynchronised);
- broker: a real MQTT connect (TLS when the config has a CA) and its CONNACK;
- disk: free space where the outbox lives against the outbox bound;
- outbox: depth, oldest undelivered age and records dropped so far.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import socket
import sqlite3
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, Literal

from gateway.config import GatewayConfig, load_gateway_config
from gateway.systemd import TIME_ERROR, adjtimex_state, clock_synchronised

HELP = (
    "check the adapter, capabilities, clock, broker, disk and outbox (exit 1 on FAIL)"
)

Status = Literal["PASS", "WARN", "FAIL"]

CAP_NET_ADMIN: Final = 12
CAP_NET_RAW: Final = 13
NEEDED_CAPS: Final = (1 << CAP_NET_ADMIN) | (1 << CAP_NET_RAW)
# <bluetooth/hci.h>: HCIGETDEVINFO = _IOR('H', 211, int); struct hci_dev_info is 92
# bytes with `flags` (bit 0 HCI_UP) at offset 16.
HCIGETDEVINFO: Final = 0x800448D3
HCI_DEV_INFO_SIZE: Final = 92
HCI_UP: Final = 1 << 0
# Below this, a full outbox bound or a growing journal can fill the card.
DISK_FAIL_MB: Final = 20.0
OUTBOX_OLD_S: Final = 3600.0
BROKER_TIMEOUT_S: Final = 6.0


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


@dataclass(frozen=True, slots=True)
class Env:
    """Where the checks look; tests point these at a scratch tree (a fake adapter)."""

    sys_root: str = "/sys"
    proc_status: str = "/proc/self/status"
    run_dir: str = "/run"
    unit_file: str = "/etc/systemd/system/bluegate-gateway.service"
    helper: str | None = None  # bluepy-helper path; None = ask bluepy
    use_hci_socket: bool = True


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="CFG", help="unit YAML file")
    parser.add_argument("--json", action="store_true", help="one JSON object")


# -- adapter ------------------------------------------------------------------------


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def hci_flags(index: int) -> int | None:
    """The adapter's HCI flags via HCIGETDEVINFO, or None when it cannot be asked."""
    family = getattr(socket, "AF_BLUETOOTH", None)
    proto = getattr(socket, "BTPROTO_HCI", None)
    if family is None or proto is None:
        return None
    try:
        with socket.socket(family, socket.SOCK_RAW, proto) as sock:
            buf = bytearray(HCI_DEV_INFO_SIZE)
            struct.pack_into("<H", buf, 0, index)
            fcntl.ioctl(sock.fileno(), HCIGETDEVINFO, buf, True)
    except OSError:
        return None
    return int(struct.unpack_from("<I", buf, 16)[0])


def check_adapter(cfg: GatewayConfig, env: Env) -> list[Check]:
    if not cfg.source.startswith("bluepy:"):
        return [Check("adapter", "PASS", f"source {cfg.source} needs no adapter")]
    name = cfg.source.split(":", 1)[1]
    node = Path(env.sys_root) / "class" / "bluetooth" / name
    if not node.exists():
        present = (
            sorted(p.name for p in node.parent.glob("hci*"))
            if node.parent.exists()
            else []
        )
        return [
            Check(
                "adapter",
                "FAIL",
                f"{name} not present (adapters: {', '.join(present) or 'none'})",
                "check the adapter is plugged in / enabled (dtparam=krnbt=on on a Pi; "
                "`sudo systemctl status bluetooth hciuart`), or set `source:` to one "
                "of the adapters present",
            )
        ]
    checks: list[Check] = []
    rfkill = sorted((Path(env.sys_root) / "class" / "rfkill").glob("rfkill*"))
    blocked = [
        f"{rf.name} {kind}"
        for rf in rfkill
        if _read(rf / "type") == "bluetooth"
        for kind in ("soft", "hard")
        if _read(rf / kind) == "1"
    ]
    if blocked:
        hard = any(b.endswith("hard") for b in blocked)
        checks.append(
            Check(
                "adapter",
                "FAIL",
                f"{name} present but rfkill-blocked ({', '.join(blocked)})",
                "hardware switch or firmware block: check the board/config.txt"
                if hard
                else "sudo rfkill unblock bluetooth (and set a Wi-Fi country in "
                "raspi-config: Bookworm soft-blocks radios until it is set)",
            )
        )
        return checks
    index = int(name[3:]) if name[3:].isdigit() else 0
    flags = hci_flags(index) if env.use_hci_socket else None
    if flags is None:
        checks.append(
            Check(
                "adapter",
                "WARN",
                f"{name} present, not blocked; could not ask whether it is up",
                f"run `hciconfig {name}` or `btmgmt --index {index} info` as root",
            )
        )
    elif not flags & HCI_UP:
        checks.append(
            Check(
                "adapter",
                "FAIL",
                f"{name} present, not blocked, but DOWN",
                f"sudo btmgmt --index {index} power on  (or: sudo hciconfig {name} up)",
            )
        )
    else:
        checks.append(Check("adapter", "PASS", f"{name} present, up, not blocked"))
    return checks


# -- capabilities --------------------------------------------------------------------


def _caps_from_status(text: str) -> dict[str, int]:
    caps: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("CapEff", "CapAmb", "CapPrm", "CapBnd"):
            with contextlib.suppress(ValueError):
                caps[key] = int(value.strip(), 16)
    return caps


def _helper_path(env: Env) -> str | None:
    if env.helper is not None:
        return env.helper
    try:
        from bluepy import btle
    except ImportError:
        return None
    return str(btle.helperExe)


def _file_caps(path: str) -> str | None:
    getcap = shutil.which("getcap") or (
        "/usr/sbin/getcap" if os.path.exists("/usr/sbin/getcap") else None
    )
    if getcap is None:
        return None
    try:
        out = subprocess.run(
            [getcap, path], capture_output=True, text=True, timeout=5, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    # "path cap_net_admin,cap_net_raw=eip" (libcap 2.4x), or "path = cap_...+eip".
    return out.replace(path, "", 1).strip().lstrip("= ").strip()


def file_caps_grant(text: str) -> bool:
    """True when getcap's text gives cap_net_raw and cap_net_admin, effective."""
    for clause in text.replace(" ", "").lstrip("=").split(";"):
        for sep in ("=", "+"):
            names, found, flags = clause.rpartition(sep)
            if found and "e" in flags and "p" in flags:
                wanted = set(names.lower().split(","))
                if {"cap_net_raw", "cap_net_admin"} <= wanted:
                    return True
    return False


def check_capabilities(cfg: GatewayConfig, env: Env) -> list[Check]:
    if not cfg.source.startswith("bluepy:"):
        return [Check("capabilities", "PASS", "a recorded source needs none")]
    status = _read(Path(env.proc_status)) or ""
    caps = _caps_from_status(status)
    eff = caps.get("CapEff", 0)
    amb = caps.get("CapAmb", 0)
    helper = _helper_path(env)
    file_caps = _file_caps(helper) if helper and os.path.exists(helper) else None
    unit = _read(Path(env.unit_file)) or ""
    unit_grants = any(
        line.startswith("AmbientCapabilities=")
        and "CAP_NET_RAW" in line
        and "CAP_NET_ADMIN" in line
        for line in unit.splitlines()
    )
    helper_ok = file_caps_grant(file_caps or "")
    seen = (
        f"process CapEff={eff:#x} CapAmb={amb:#x}; helper "
        f"{helper or 'not found'} file caps: {file_caps or 'none'}; unit "
        f"{'grants' if unit_grants else 'does not grant'} ambient caps"
    )
    if helper is None or not os.path.exists(helper):
        return [
            Check(
                "capabilities",
                "FAIL",
                f"bluepy-helper not found ({helper or 'bluepy not installed'})",
                "pip install 'bluegate[pi]' in /opt/bluegate/venv (needs libglib2.0-dev)",
            )
        ]
    if (eff & NEEDED_CAPS) == NEEDED_CAPS or (amb & NEEDED_CAPS) == NEEDED_CAPS:
        return [Check("capabilities", "PASS", seen)]
    if helper_ok or unit_grants:
        return [Check("capabilities", "PASS", seen)]
    return [
        Check(
            "capabilities",
            "FAIL",
            seen,
            "run the gateway through its systemd unit (AmbientCapabilities="
            "CAP_NET_RAW CAP_NET_ADMIN), or `sudo setcap cap_net_raw,cap_net_admin+eip "
            f"{helper}`",
        )
    ]


# -- clock ---------------------------------------------------------------------------


def _timedatectl() -> str | None:
    exe = shutil.which("timedatectl")
    if exe is None:
        return None
    try:
        res = subprocess.run(
            [exe, "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = res.stdout.strip()
    return value if res.returncode == 0 and value in ("yes", "no") else None


def check_clock(
    cfg: GatewayConfig,
    env: Env,
    *,
    timedatectl: Callable[[], str | None] = _timedatectl,
    kernel: Callable[[], int | None] = adjtimex_state,
) -> list[Check]:
    marker = Path(env.run_dir) / "systemd" / "timesync" / "synchronized"
    if marker.exists():
        return [Check("clock", "PASS", f"synchronised ({marker} exists)")]
    ntp = timedatectl()
    if ntp == "yes":
        return [
            Check("clock", "PASS", "synchronised (timedatectl NTPSynchronized=yes)")
        ]
    state = kernel()
    if state is not None and state != TIME_ERROR and ntp is None:
        return [
            Check(
                "clock", "PASS", f"kernel clock synchronised (adjtimex state {state})"
            )
        ]
    seen = f"not synchronised (timedatectl: {ntp or 'n/a'}, adjtimex state: {state})"
    fix = (
        "check network and NTP: `timedatectl timesync-status`, "
        "`sudo systemctl enable --now systemd-timesyncd`; records made meanwhile "
        'are marked "clock": "unsynced" and rebased later'
    )
    # A bus runs unsynced by design; every other unit should be synced.
    return [Check("clock", "WARN" if cfg.zone.kind == "bus" else "FAIL", seen, fix)]


# -- broker --------------------------------------------------------------------------


def check_broker(
    cfg: GatewayConfig, timeout_s: float = BROKER_TIMEOUT_S
) -> list[Check]:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    m = cfg.mqtt
    where = f"{m.host}:{m.port}" + (" (TLS)" if m.ca else " (plain TCP)")
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"bluegate-doctor-{cfg.site}-{cfg.gateway}",
        protocol=mqtt.MQTTv5 if m.protocol == "5" else mqtt.MQTTv311,
    )
    for key in ("ca", "cert", "key", "password_file"):
        path = getattr(m, key)
        if path and not os.access(path, os.R_OK):
            return [
                Check(
                    "broker",
                    "FAIL",
                    f"mqtt.{key} {path} is missing or unreadable",
                    "run `bluegate-gateway enroll`, have the CSR signed, install the "
                    "certificate and the site CA where the config says",
                )
            ]
    done = threading.Event()
    result: dict[str, str] = {}

    def on_connect(
        c: Any, userdata: Any, flags: Any, rc: Any, props: Any = None
    ) -> None:
        result["rc"] = str(rc)
        result["ok"] = "no" if getattr(rc, "is_failure", False) else "yes"
        done.set()

    client.on_connect = on_connect
    try:
        if m.ca:
            client.tls_set(ca_certs=m.ca, certfile=m.cert, keyfile=m.key)
        if m.username:
            password = None
            if m.password_file:
                password = Path(m.password_file).read_text().strip()
            client.username_pw_set(m.username, password)
        client.connect(m.host, m.port, keepalive=10)
    except (OSError, ValueError) as exc:
        text = str(exc)
        fix = "check mqtt.host/port and the network; is the broker running?"
        if "CERTIFICATE" in text.upper() or "SSL" in type(exc).__name__.upper():
            fix = "check mqtt.ca (the broker's CA) and that the broker's certificate matches mqtt.host"
        elif isinstance(exc, FileNotFoundError | PermissionError):
            fix = "run `bluegate-gateway enroll` and install the signed certificate; check file permissions"
        return [Check("broker", "FAIL", f"{where}: {type(exc).__name__}: {text}", fix)]
    client.loop_start()
    try:
        if not done.wait(timeout_s):
            return [
                Check(
                    "broker",
                    "FAIL",
                    f"{where}: no CONNACK in {timeout_s:.0f}s",
                    "check firewall and that the port speaks MQTT (TLS on 8883)",
                )
            ]
        if result.get("ok") != "yes":
            return [
                Check(
                    "broker",
                    "FAIL",
                    f"{where}: refused ({result.get('rc')})",
                    "the broker refused this unit: check its certificate (signed by the "
                    "site CA, CN = gateway id) or username/password, and the ACL",
                )
            ]
        return [Check("broker", "PASS", f"{where}: connected ({result.get('rc')})")]
    finally:
        with contextlib.suppress(Exception):
            client.disconnect()
        client.loop_stop()


# -- disk and outbox -----------------------------------------------------------------


def _existing_dir(path: str) -> str:
    d = os.path.dirname(os.path.abspath(path))
    while not os.path.isdir(d) and d != os.path.dirname(d):
        d = os.path.dirname(d)
    return d


def check_disk(cfg: GatewayConfig) -> list[Check]:
    d = _existing_dir(cfg.outbox.path)
    st = os.statvfs(d)
    free_mb = st.f_bavail * st.f_frsize / 1024 / 1024
    try:
        used_mb = (
            sum(
                os.path.getsize(cfg.outbox.path + suffix)
                for suffix in ("", "-wal")
                if os.path.exists(cfg.outbox.path + suffix)
            )
            / 1024
            / 1024
        )
    except OSError:
        used_mb = 0.0
    need_mb = max(cfg.outbox.max_mb - used_mb, 0.0)
    seen = f"{free_mb:.0f} MB free in {d}; outbox may grow {need_mb:.0f} MB more (max_mb {cfg.outbox.max_mb:g})"
    if free_mb < DISK_FAIL_MB:
        return [
            Check(
                "disk",
                "FAIL",
                seen,
                "free space now: `journalctl --vacuum-size=50M`, remove old files; records are kept until delivered",
            )
        ]
    if free_mb < need_mb:
        return [
            Check(
                "disk",
                "WARN",
                seen,
                "lower outbox.max_mb or give the data partition more room, or the card fills before the bound drops old records",
            )
        ]
    return [Check("disk", "PASS", seen)]


def outbox_figures(path: str) -> dict[str, Any]:
    """Depth, oldest undelivered, held-for-the-clock and dropped counters, read-only.

    States (gateway/outbox.py): 0 ready, 1 in flight, 2 delivered, 3 held (made on an
    unsynchronised clock, waiting to be rebased; schema v2)."""
    uri = f"file:{path}?mode=ro"
    db = sqlite3.connect(uri, uri=True, timeout=2.0)
    try:
        depth, oldest = db.execute(
            "SELECT count(*), min(created_wall) FROM records WHERE state < 2"
        ).fetchone()
        (held,) = db.execute("SELECT count(*) FROM records WHERE state = 3").fetchone()
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    finally:
        db.close()
    return {
        "depth": int(depth),
        "held": int(held),
        "oldest_wall": oldest,
        "dropped_size": int(meta.get("dropped_size", 0)),
        "dropped_retention": int(meta.get("dropped_retention", 0)),
        "boot": int(meta.get("boot", 0)),
    }


def check_outbox(cfg: GatewayConfig, now_wall: float) -> list[Check]:
    path = cfg.outbox.path
    if not os.path.exists(path):
        return [
            Check(
                "outbox",
                "WARN",
                f"{path} does not exist yet",
                "it is created when `bluegate-gateway run` starts; check outbox.path and that /var/lib/bluegate is writable by user bluegate",
            )
        ]
    try:
        fig = outbox_figures(path)
    except sqlite3.Error as exc:
        return [
            Check(
                "outbox",
                "FAIL",
                f"{path}: {exc}",
                "stop the gateway, copy the file aside for analysis, and let `run` create a new one",
            )
        ]
    age = None if fig["oldest_wall"] is None else now_wall - float(fig["oldest_wall"])
    dropped = fig["dropped_size"] + fig["dropped_retention"]
    seen = (
        f"depth {fig['depth']}, oldest "
        + ("-" if age is None else f"{age:.0f}s")
        + f", held for the clock {fig['held']}"
        + f", dropped {dropped} (size {fig['dropped_size']}, retention {fig['dropped_retention']}), boot {fig['boot']}"
    )
    if dropped:
        return [
            Check(
                "outbox",
                "WARN",
                seen,
                "records were dropped by the bounds: the unit was offline too long for outbox.max_mb / retention_days; check the broker link",
            )
        ]
    if fig["held"] and not clock_synchronised():
        return [
            Check(
                "outbox",
                "WARN",
                seen,
                "records wait for the clock to synchronise before they are published: see the clock check (NTP reachability, `timedatectl`)",
            )
        ]
    if age is not None and age > OUTBOX_OLD_S:
        return [
            Check(
                "outbox",
                "WARN",
                seen,
                "records wait for the broker: see the broker check; `bluegate-gateway drain --config CFG` delivers them",
            )
        ]
    return [Check("outbox", "PASS", seen)]


# -- the command ---------------------------------------------------------------------


def diagnose(cfg: GatewayConfig, env: Env | None = None) -> list[Check]:
    env = env or Env()
    checks: list[Check] = []
    checks += check_adapter(cfg, env)
    checks += check_capabilities(cfg, env)
    checks += check_clock(cfg, env)
    checks += check_broker(cfg)
    checks += check_disk(cfg)
    checks += check_outbox(cfg, time.time())
    return checks


def render(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{c.status}  {c.name:<{width}}  {c.detail}")
        if c.status != "PASS" and c.fix:
            lines.append(f"      {'':<{width}}  -> {c.fix}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    cfg = load_gateway_config(args.config)
    checks = diagnose(cfg)
    failed = any(c.status == "FAIL" for c in checks)
    if args.json:
        out = {"ok": not failed, "checks": [asdict(c) for c in checks]}
        print(json.dumps(out, indent=2))
    else:
        print(render(checks), end="")
    return 1 if failed else 0
