"""Shell: talking to systemd (sd_notify(3) and the journal) for the BlueGate daemons.

Shared by `bluegate-gateway run` and `bluegate-beacon run`. Everything here is a
no-op outside systemd, so the daemons run the same way in a terminal.

- `Notifier` sends READY=1, STATUS=..., WATCHDOG=1, STOPPING=1 and RELOADING=1 (with
  MONOTONIC_USEC, which systemd 253+ needs for `Type=notify-reload` and older ones
  ignore). It uses systemd-python's `systemd.daemon.notify` (libsystemd's
  sd_notify) when it imports, otherwise one AF_UNIX datagram to $NOTIFY_SOCKET,
  including abstract sockets (a leading '@'), exactly as sd_notify does.
- The watchdog period comes from $WATCHDOG_USEC, honoured only when $WATCHDOG_PID is
  unset or names this process (sd_watchdog_enabled(3)). systemd recommends pinging
  at half the period; `ping_interval_s` is that half.
- `setup_logging` logs to the journal with structured fields (SYSLOG_IDENTIFIER,
  GATEWAY, SITE, ...) when the process runs under systemd, else to stderr.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping
from typing import Final

_LOGGER = logging.getLogger(__name__)

# sd_notify(3): one message is at most a few lines; keep STATUS short for `systemctl
# status` (it shows one line) and well under any datagram limit.
_STATUS_MAX_CHARS: Final = 200

Sender = Callable[[str], bool]


def _libsystemd_sender() -> Sender | None:
    """systemd-python's sd_notify binding, or None when it is not installed."""
    try:
        from systemd import daemon
    except ImportError:
        return None

    def send(message: str) -> bool:
        return bool(daemon.notify(message))

    return send


def socket_address(notify_socket: str) -> str | bytes:
    """$NOTIFY_SOCKET as a sockaddr: '@name' is the abstract name '\\0name'."""
    if notify_socket.startswith("@"):
        return b"\0" + notify_socket[1:].encode()
    return notify_socket


def _datagram_sender(notify_socket: str) -> Sender:
    address = socket_address(notify_socket)

    def send(message: str) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(address)
                sock.sendall(message.encode())
        except OSError as exc:
            _LOGGER.debug("sd_notify to %s failed: %s", notify_socket, exc)
            return False
        return True

    return send


def watchdog_period_s(environ: Mapping[str, str], pid: int) -> float | None:
    """The watchdog period systemd expects, or None when the watchdog is off for us."""
    usec = environ.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    owner = environ.get("WATCHDOG_PID", "")
    if owner and (not owner.isdigit() or int(owner) != pid):
        return None
    return int(usec) / 1_000_000


class Notifier:
    """sd_notify for one daemon; every method is a no-op outside systemd."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        sender: Sender | None = None,
        prefer_libsystemd: bool = True,
    ) -> None:
        env = os.environ if environ is None else environ
        self.notify_socket = env.get("NOTIFY_SOCKET") or None
        self.watchdog_s = watchdog_period_s(env, os.getpid())
        self._sender: Sender | None = None
        if sender is not None:
            self._sender = sender
        elif self.notify_socket is not None:
            lib = _libsystemd_sender() if prefer_libsystemd else None
            # sd_notify reads $NOTIFY_SOCKET itself: only use it when the socket we
            # were given is the one in the process environment.
            if (
                lib is not None
                and os.environ.get("NOTIFY_SOCKET") == self.notify_socket
            ):
                self._sender = lib
            else:
                self._sender = _datagram_sender(self.notify_socket)
        self.last_status = ""
        self.sent = 0

    @property
    def enabled(self) -> bool:
        return self._sender is not None

    @property
    def ping_interval_s(self) -> float | None:
        """How often to send WATCHDOG=1: half the period, as sd_watchdog_enabled advises."""
        return None if self.watchdog_s is None else self.watchdog_s / 2

    def notify(self, *fields: str) -> bool:
        """Send `fields` (e.g. 'READY=1') as one message; False when not delivered."""
        if self._sender is None:
            return False
        ok = self._sender("\n".join(fields))
        if ok:
            self.sent += 1
        return ok

    def ready(self, status: str | None = None) -> bool:
        fields = ["READY=1"]
        if status:
            fields.append(self._status_field(status))
        return self.notify(*fields)

    def status(self, text: str) -> bool:
        """STATUS=..., sent only when it changed (one datagram per change, not per tick)."""
        field = self._status_field(text)
        if field == self.last_status:
            return True
        ok = self.notify(field)
        if ok:
            self.last_status = field
        return ok

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def watchdog_trigger(self) -> bool:
        """WATCHDOG=trigger: ask systemd to act as if the watchdog had expired."""
        return self.notify("WATCHDOG=trigger")

    def stopping(self, status: str | None = None) -> bool:
        fields = ["STOPPING=1"]
        if status:
            fields.append(self._status_field(status))
        return self.notify(*fields)

    def reloading(self, monotonic_usec: int | None = None) -> bool:
        """RELOADING=1 with the CLOCK_MONOTONIC time systemd needs to order replies."""
        if monotonic_usec is None:
            monotonic_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec}")

    def _status_field(self, text: str) -> str:
        one_line = " ".join(text.split())[:_STATUS_MAX_CHARS]
        return f"STATUS={one_line}"


def under_systemd(environ: Mapping[str, str] | None = None) -> bool:
    """True when stderr goes to the journal, or the process is a systemd service."""
    env = os.environ if environ is None else environ
    stream = env.get("JOURNAL_STREAM", "")
    if stream:
        # systemd.exec(5): JOURNAL_STREAM is "device:inode" of the stderr stream it
        # connected; a child whose stderr was redirected must not take it as ours.
        try:
            st = os.fstat(sys.stderr.fileno())
        except (OSError, ValueError, AttributeError):
            return False
        return stream == f"{st.st_dev}:{st.st_ino}"
    return bool(env.get("INVOCATION_ID")) and os.path.exists(
        "/run/systemd/journal/socket"
    )


def setup_logging(
    identifier: str,
    fields: Mapping[str, str],
    level: int | str = logging.INFO,
    *,
    environ: Mapping[str, str] | None = None,
) -> str:
    """Route the root logger to the journal (structured) or stderr; return which.

    `fields` become journal fields on every entry (upper-case names, e.g. GATEWAY,
    SITE) so `journalctl GATEWAY=bus-07` finds one unit's lines on a shared host.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    if isinstance(level, str):
        level = logging.getLevelName(level.upper())
    root.setLevel(level)
    if under_systemd(environ):
        try:
            from systemd.journal import JournalHandler
        except ImportError:
            JournalHandler = None
        if JournalHandler is not None:
            extra = {k.upper(): str(v) for k, v in fields.items()}
            handler_j: logging.Handler = JournalHandler(
                SYSLOG_IDENTIFIER=identifier, **extra
            )
            handler_j.setFormatter(logging.Formatter("%(name)s: %(message)s"))
            root.addHandler(handler_j)
            return "journal"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"{identifier} %(levelname)s %(name)s: %(message)s")
    )
    root.addHandler(handler)
    return "stderr"


def set_level(level: str) -> None:
    """Change the root log level at run time (SIGHUP or a remote `log_level`)."""
    logging.getLogger().setLevel(logging.getLevelName(level.upper()))


# adjtimex(2) returns TIME_ERROR (5) while the kernel considers the clock unsynced.
TIME_ERROR: Final = 5
_TIMESYNC_MARKER: Final = "/run/systemd/timesync/synchronized"
_libc: ctypes.CDLL | None = None


def adjtimex_state() -> int | None:
    """adjtimex(2) with modes=0 (a pure query): the kernel's clock state, or None."""
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        if name is None:
            return None
        try:
            _libc = ctypes.CDLL(name, use_errno=True)
        except OSError:
            return None
    # struct timex is ~208 bytes on 64-bit; a zeroed, larger buffer has modes == 0.
    buf = ctypes.create_string_buffer(512)
    state = int(_libc.adjtimex(buf))
    return None if state < 0 else state


# A file whose presence alone says "synchronised" (nothing else is asked). For a
# site whose time comes from elsewhere (a GPS daemon that touches a file) and for the
# tests, which must control the answer on a machine whose clock they cannot step.
SYNC_MARKER_ENV: Final = "BLUEGATE_CLOCK_SYNC_MARKER"
# The kernel's boot id: held records (gateway/outbox) carry it, because monotonic time
# only means something within one boot. The variable overrides it (tests that stand
# for a reboot without one).
BOOT_ID_ENV: Final = "BLUEGATE_BOOT_ID"
_BOOT_ID_PATH: Final = "/proc/sys/kernel/random/boot_id"
_fallback_boot_id: str | None = None


def boot_id(path: str = _BOOT_ID_PATH) -> str:
    """This kernel boot's id (a new one after every reboot or power cut).

    Unreadable: a random id for this process, so held records of an earlier process
    are treated as another boot's -- released with their guess, never rebased with
    an offset that may not apply to them."""
    global _fallback_boot_id
    override = os.environ.get(BOOT_ID_ENV)
    if override:
        return override
    try:
        with open(path, encoding="ascii") as fh:
            value = fh.read().strip()
    except OSError:
        value = ""
    if value:
        return value
    if _fallback_boot_id is None:
        import uuid

        _fallback_boot_id = "unknown-" + str(uuid.uuid4())
        _LOGGER.warning("cannot read %s: treating this process as a new boot", path)
    return _fallback_boot_id


def clock_synchronised(marker: str = _TIMESYNC_MARKER) -> bool:
    """Whether wall time can be trusted: timesyncd's marker, else the kernel's state
    (chrony and ntpd clear STA_UNSYNC, so adjtimex stops answering TIME_ERROR).
    With BLUEGATE_CLOCK_SYNC_MARKER set, only that file's presence counts."""
    override = os.environ.get(SYNC_MARKER_ENV)
    if override:
        return os.path.exists(override)
    if os.path.exists(marker):
        return True
    state = adjtimex_state()
    return state is not None and state != TIME_ERROR
