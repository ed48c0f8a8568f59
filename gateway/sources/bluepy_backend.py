"""Shell: the live `bluepy:hciN` source (design.md, Sources). The only module that
imports bluepy, and only when a scanner is opened (style.md 3.4), so the package
imports on machines without bluepy.

How bluepy 1.3.0 scans: `Scanner` spawns `bluepy-helper` and speaks a line protocol
with it; an active scan is the kernel's management "Start Discovery" (`scan`), a
passive scan drives the HCI socket directly (`pasv`). Each report arrives as
`rsp=$scan addr=b.. type=h.. rssi=h.. flag=h.. d=b..` and bluepy folds it into a
`ScanEntry` in `Scanner.scanned`, then calls the delegate. We use it as follows:

* the payload is `ScanEntry.rawData`, the AD bytes exactly as received, never the
  `getScanData()` strings;
* `Scanner.clear()` after every tick: `scanned` is keyed by address and phones rotate
  addresses every 10-20 minutes, so without it the table grows for ever;
* active scan: the kernel merges ADV_IND + SCAN_RSP into one Device Found event
  (the report then carries both); a SCAN_RSP it could not merge is marked with
  MGMT_DEV_FOUND_SCAN_RSP (bit 5, Linux 6.4+) and NOT_CONNECTABLE is bit 2. The
  helper sends these flags negated (`send_uint(tag_FLAG, -ev->flags)`), and
  `ScanEntry` keeps only a `connectable` guessed from the negated value, so we read
  the flag from the report line itself;
* RSSI: the helper sends `-rssi` as an unsigned 32-bit value (active) or `256 - rssi`
  of the unsigned byte (passive); we undo both, and drop HCI's 127 "not available";
* a dead helper (`BTLEInternalError: Helper exited`, or bluepy stopping it after a
  failed management command) is reaped and restarted with a counter and back-off;
* start-up errors become one line with the fix (`RadioPermissionError`,
  `AdapterUnavailableError`).

Two bluepy 1.3.0 defects are worked around here, on the instance, without patching
bluepy: `Scanner.start()` ignores a failed `scan` answer (e.g. "Not Powered") and
scans nothing for ever, so we run the same start sequence with its own primitives
and check every answer; and `_waitResp()` polls the pipe's file descriptor while
reading through a buffered text wrapper, so lines already buffered stay unseen until
more output arrives (a report can wait a whole quiet period). `_HelperPipe` gives
bluepy a `readline()`/`poll()` pair that knows what it has buffered.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import select
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any, Final

from gateway.errors import EXIT_CONFIG, BlueGateError, UsageError
from gateway.models import AddrType, Report

_LOGGER = logging.getLogger(__name__)

# Management API status codes (BlueZ lib/mgmt.h) that bluepy-helper passes on as
# `estat`, e.g. "Failed to execute management command 'le on' (code: 20, error:
# Permission Denied)" (bluepy issues #313, #448).
MGMT_NOT_SUPPORTED: Final = 0x0C
MGMT_NOT_POWERED: Final = 0x0F
MGMT_INVALID_INDEX: Final = 0x11
MGMT_RFKILLED: Final = 0x12
MGMT_PERMISSION_DENIED: Final = 0x14

# Device Found flags (lib/mgmt.h)
DEV_FOUND_NOT_CONNECTABLE: Final = 1 << 2
DEV_FOUND_SCAN_RSP: Final = 1 << 5

RSSI_MIN_DBM: Final = -127
RSSI_MAX_DBM: Final = 20

START_TIMEOUT_S: Final = 5.0
STOP_TIMEOUT_S: Final = 2.0
RESTART_BACKOFF_INITIAL_S: Final = 1.0
RESTART_BACKOFF_MAX_S: Final = 60.0
# A helper that ran this long before dying is not flapping: restart at once.
STABLE_RUN_S: Final = 60.0
BUSY_RETRY_S: Final = 0.5

_ADAPTER_RE = re.compile(r"hci(\d{1,3})")


class ScannerError(BlueGateError):
    """The live scanner cannot run; the message says what to do."""


class RadioPermissionError(ScannerError):
    """The process lacks CAP_NET_RAW / CAP_NET_ADMIN. Restarting will not help."""

    exit_code = EXIT_CONFIG


class AdapterUnavailableError(ScannerError):
    """The adapter is absent, down, blocked by rfkill or has no LE."""


class _AdapterBusy(ScannerError):
    """A scan start refused with Busy (e.g. a GATT connection in progress)."""


def load_btle() -> Any:
    """Import `bluepy.btle` (the only place bluepy is imported)."""
    try:
        from bluepy import btle
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ScannerError(
            "bluepy is not installed: pip install 'bluegate[pi]' "
            "(needs libglib2.0-dev to build bluepy-helper)"
        ) from exc
    return btle


def parse_adapter(adapter: str) -> int:
    """`hci0` -> 0."""
    m = _ADAPTER_RE.fullmatch(adapter)
    if m is None:
        raise UsageError(f"bluepy: adapter must look like hci0, not {adapter!r}")
    return int(m.group(1))


def rssi_from_helper(raw: int) -> int | None:
    """Undo bluepy-helper's RSSI encodings; None when not a valid RSSI.

    `raw` is what the helper printed: `-rssi` as unsigned 32 bits (active scan, a
    positive RSSI wraps past 2**31) or `256 - u8` (passive scan, values above 128
    are positive RSSIs).
    """
    if raw >= 1 << 31:
        rssi = (1 << 32) - raw
    elif raw > 128:
        rssi = 256 - raw
    else:
        rssi = -raw
    if RSSI_MIN_DBM <= rssi <= RSSI_MAX_DBM:
        return rssi
    return None


def mgmt_flags_from_helper(raw: int) -> int:
    """The helper prints `-flags` as unsigned 32 bits."""
    return (-raw) & 0xFFFFFFFF


def _field_hex(line: str, tag: str) -> int | None:
    """Integer value of `tag=h..` in a raw helper line (fields split by \\x1e)."""
    start = line.find("\x1e" + tag + "=h")
    if start < 0:
        return None
    start += len(tag) + 3
    end = line.find("\x1e", start)
    try:
        return int(line[start : end if end >= 0 else len(line)].strip(), 16)
    except ValueError:
        return None


class _HelperPipe:
    """Line reader over bluepy-helper's stdout that knows what it has buffered.

    bluepy calls `readline()` on `Popen.stdout` and `poll()` on a `select.poll`
    registered on it; installed in place of both (see the module docstring).
    """

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._proc = proc
        self._wrapper = proc.stdout  # closed by reap_helper
        assert self._wrapper is not None
        self._fd = self._wrapper.fileno()
        self._buf = bytearray()
        self._lines: list[str] = []
        self._eof = False
        self._poller = select.poll()
        self._poller.register(self._fd, select.POLLIN)
        self.last_line = ""

    # the file side ----------------------------------------------------------------

    def fileno(self) -> int:
        return self._fd

    def _fill(self, timeout_ms: int | None) -> None:
        if self._eof:
            return
        if not self._poller.poll(timeout_ms):
            return
        try:
            chunk = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        if not chunk:
            self._eof = True
            if self._buf:
                self._lines.append(self._buf.decode("utf-8", "replace"))
                self._buf.clear()
            return
        self._buf += chunk
        if b"\n" in chunk:
            *complete, rest = self._buf.split(b"\n")
            self._lines.extend(c.decode("utf-8", "replace") + "\n" for c in complete)
            self._buf = bytearray(rest)

    def readline(self) -> str:
        while not self._lines and not self._eof:
            self._fill(None)
        if self._lines:
            line = self._lines.pop(0)
            self.last_line = line
            return line
        # EOF: bluepy loops on "" until Popen.poll() sees the exit; let it be reaped
        # rather than spin.
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=1.0)
        return ""

    def close(self) -> None:
        self._eof = True

    # the poller side ----------------------------------------------------------

    def register(self, fd: object, eventmask: int = 0) -> None:
        """bluepy registers stdout once; we are already watching it."""

    def unregister(self, fd: object) -> None:
        """Nothing to do; the descriptor is closed by reap_helper."""

    def poll(self, timeout_ms: float | None = None) -> list[tuple[int, int]]:
        if timeout_ms is None:
            while not self._lines and not self._eof:
                self._fill(None)
        else:
            # A chunk may end mid-line: keep reading until a whole line or the deadline.
            deadline = time.monotonic() + max(0.0, timeout_ms) / 1000.0
            while not self._lines and not self._eof:
                remaining_ms = int((deadline - time.monotonic()) * 1000.0)
                if remaining_ms <= 0:
                    break
                self._fill(remaining_ms)
        if self._lines or self._eof:
            return [(self._fd, select.POLLIN)]
        return []


def install_pipe(helper_obj: Any) -> _HelperPipe:
    """Put a `_HelperPipe` between a started bluepy helper object and its stdout."""
    proc = helper_obj._helper
    pipe = _HelperPipe(proc)
    helper_obj._poller = pipe
    proc.stdout = pipe
    return pipe


def reap_helper(
    helper_obj: Any, proc: subprocess.Popen[str] | None, pipe: _HelperPipe | None
) -> None:
    """Stop a bluepy-helper for good: quit, wait, kill if needed, close every pipe.

    bluepy's own `_stopHelper()` blocks for ever on a hung helper, raises on a dead
    one, and leaves the pipes to the garbage collector; this does none of that.
    """
    if proc is not None:
        if proc.poll() is None:
            try:
                assert proc.stdin is not None
                proc.stdin.write("quit\n")
                proc.stdin.flush()
            except (OSError, ValueError):
                pass
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if pipe is not None:
            pipe.close()
            stdout: Any = pipe._wrapper
        else:
            stdout = proc.stdout
        for stream in (proc.stdin, stdout):
            try:
                if stream is not None:
                    stream.close()
            except (OSError, ValueError):
                pass
    if helper_obj is not None:
        if getattr(helper_obj, "_helper", None) is proc:
            helper_obj._helper = None
        err = getattr(helper_obj, "_stderr", None)
        if err is not None:
            err.close()
            helper_obj._stderr = None


def describe_start_failure(
    adapter: str, command: str, estat: int | None, emsg: str | None, code: str | None
) -> ScannerError:
    """One line with the cause and the fix, from what bluepy-helper answered."""
    idx = adapter[3:]
    what = f"bluepy:{adapter}: '{command}' failed"
    if estat is not None or emsg:
        what += f" (code {estat}: {emsg or '?'})"
    elif code:
        what += f" ({code})"
    if estat == MGMT_PERMISSION_DENIED or code == "nomgmt":
        return RadioPermissionError(
            f"{what}: the process may not drive the Bluetooth adapter. Run the service "
            "with AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN (deploy/ units do), or "
            f"`sudo setcap cap_net_raw,cap_net_admin+eip {load_btle().helperExe}`"
        )
    if estat == MGMT_INVALID_INDEX:
        return AdapterUnavailableError(
            f"{what}: there is no adapter {adapter}; check `btmgmt info` / "
            "`hciconfig -a` and the USB dongle or the Pi's UART (`dmesg | grep -i blue`)"
        )
    if estat == MGMT_RFKILLED:
        return AdapterUnavailableError(
            f"{what}: {adapter} is blocked by rfkill; run `sudo rfkill unblock "
            f"bluetooth` then `sudo btmgmt --index {idx} power on`"
        )
    if estat == MGMT_NOT_POWERED:
        return AdapterUnavailableError(
            f"{what}: {adapter} is down; run `sudo rfkill unblock bluetooth` and "
            f"`sudo hciconfig {adapter} up` (or `sudo btmgmt --index {idx} power on`)"
        )
    if estat == MGMT_NOT_SUPPORTED:
        return AdapterUnavailableError(
            f"{what}: {adapter} does not support Bluetooth Low Energy"
        )
    if code == "badstate" and command == "pasv":
        return AdapterUnavailableError(
            f"{what}: the adapter refused raw HCI scan commands: it is down (`sudo "
            f"hciconfig {adapter} up`) or the process lacks CAP_NET_RAW "
            "(AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN)"
        )
    if code == "busy":
        return _AdapterBusy(f"{what}: adapter busy")
    return ScannerError(what)


class _Delegate:
    """bluepy delegate: turns each `ScanEntry` update into a `Report`.

    Duck-typed (bluepy only calls `handleDiscovery`), so no subclassing of an
    untyped class is needed.
    """

    def __init__(self, source: BluepySource) -> None:
        self._source = source

    def handleDiscovery(self, entry: Any, is_new_dev: bool, is_new_data: bool) -> None:
        self._source._on_entry(entry)

    def handleNotification(self, handle: int, data: bytes) -> None:
        """Scanners get no notifications."""


class BluepySource:
    """`bluepy:hciN`: a live scan with bluepy (implements the Source protocol)."""

    def __init__(
        self,
        adapter: str,
        *,
        active: bool = True,
        gateway: str | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.adapter = adapter
        self.index = parse_adapter(adapter)
        self.active = active
        self.gateway = gateway
        self._clock = clock
        self._monotonic = monotonic
        self._btle = load_btle()
        self._delegate = _Delegate(self)
        self._scanner: Any = None
        self._proc: subprocess.Popen[str] | None = None
        self._pipe: _HelperPipe | None = None
        self._batch: list[Report] = []
        self._closed = False
        self._started_mono: float | None = None
        self._next_start_mono = 0.0
        self._failures = 0  # consecutive start failures / early deaths
        # liveness, read by the health gate
        self.last_report_mono: float | None = None
        self.helper_restarts = 0
        self.helper_deaths = 0
        self.last_error: str | None = None
        # counters
        self.reports = 0
        self.dropped_rssi = 0
        self.dropped_addr_type = 0
        self.protocol_errors = 0
        self.peak_table = 0  # largest Scanner.scanned seen within one tick

    # -- Source protocol ----------------------------------------------------------

    @property
    def ended(self) -> bool:
        """A live source ends only when closed."""
        return self._closed

    @property
    def alive(self) -> bool:
        proc = self._proc
        return self._scanner is not None and proc is not None and proc.poll() is None

    def poll(self, timeout_s: float) -> list[Report]:
        """Scan for up to `timeout_s` and return what was heard (one tick)."""
        if self._closed:
            return []
        if self._scanner is None:
            self._revive(timeout_s)
            return self._take()
        scanner = self._scanner
        try:
            # process(0) would mean "for ever" to bluepy.
            scanner.process(max(timeout_s, 0.001))
        except (self._btle.BTLEException, OSError, ValueError) as exc:
            self._on_process_error(exc)
        finally:
            if scanner.scanned:
                self.peak_table = max(self.peak_table, len(scanner.scanned))
            # Bound memory: rotating addresses would otherwise accumulate here.
            scanner.clear()
        return self._take()

    def __iter__(self) -> Iterator[Report]:
        while not self._closed:
            yield from self.poll(1.0)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_scanner(graceful=True)

    def __enter__(self) -> BluepySource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- escalation ---------------------------------------------------------------

    def start(self) -> None:
        """Start the helper and the scan; raises ScannerError with the fix."""
        self._start_scanner()
        self._failures = 0

    def restart(self) -> None:
        """Stop the helper and start a fresh one (first step of the escalation)."""
        self._stop_scanner(graceful=True)
        self.helper_restarts += 1
        _LOGGER.warning("bluepy:%s: restarting bluepy-helper", self.adapter)
        self._start_scanner()

    def reset_adapter(
        self, run: Callable[..., subprocess.CompletedProcess[bytes]] = subprocess.run
    ) -> bool:
        """Power-cycle the adapter, then restart the scan (second escalation step).

        bluepy-helper has no power command, so this uses BlueZ's tools: `btmgmt
        --index N power off/on` (management API, needs CAP_NET_ADMIN), else
        `hciconfig hciN reset` (legacy ioctl). Returns False when neither worked;
        the caller then lets systemd restart the unit (WatchdogSec).
        """
        self._stop_scanner(graceful=True)
        ok = False
        plans: list[list[list[str]]] = []
        if shutil.which("btmgmt"):
            idx = str(self.index)
            plans.append(
                [
                    ["btmgmt", "--index", idx, "power", "off"],
                    ["btmgmt", "--index", idx, "power", "on"],
                ]
            )
        if shutil.which("hciconfig"):
            plans.append([["hciconfig", self.adapter, "reset"]])
        for plan in plans:
            try:
                ok = all(
                    run(cmd, capture_output=True, timeout=10.0, check=False).returncode
                    == 0
                    for cmd in plan
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                _LOGGER.warning("bluepy:%s: %s failed: %s", self.adapter, plan[0], exc)
                ok = False
            if ok:
                _LOGGER.warning(
                    "bluepy:%s: adapter reset with %s", self.adapter, plan[0][0]
                )
                break
        if not ok:
            _LOGGER.error("bluepy:%s: could not reset the adapter", self.adapter)
        self._next_start_mono = 0.0
        try:
            self.helper_restarts += 1
            self._start_scanner()
        except ScannerError as exc:
            self.last_error = str(exc)
            self._schedule_retry()
        return ok

    # -- internals ----------------------------------------------------------------

    def _take(self) -> list[Report]:
        batch, self._batch = self._batch, []
        return batch

    def _on_entry(self, entry: Any) -> None:
        pipe = self._pipe
        line = pipe.last_line if pipe is not None else ""
        raw_rssi = _field_hex(line, "rssi")
        if raw_rssi is None:
            raw_rssi = -int(entry.rssi)
        rssi = rssi_from_helper(raw_rssi)
        if rssi is None:
            self.dropped_rssi += 1
            return
        if entry.addrType == "random":
            addr_type = AddrType.RANDOM
        elif entry.addrType == "public":
            addr_type = AddrType.PUBLIC
        else:
            # Passive scan reports identity/anonymous types as 0: unknowable here.
            self.dropped_addr_type += 1
            return
        raw_flag = _field_hex(line, "flag") or 0
        flags = mgmt_flags_from_helper(raw_flag)
        scan_rsp = bool(flags & DEV_FOUND_SCAN_RSP)
        connectable: bool | None
        if not self.active or scan_rsp:
            # Passive reports carry no event type (the helper sends flag=0), and the
            # kernel cannot know whether a lone SCAN_RSP's device is connectable.
            connectable = None
        else:
            connectable = not flags & DEV_FOUND_NOT_CONNECTABLE
        data = entry.rawData
        payload = bytes(data) if isinstance(data, bytes | bytearray) else b""
        self._batch.append(
            Report(
                t=self._clock(),
                addr=str(entry.addr).upper(),
                addr_type=addr_type,
                rssi=rssi,
                data=payload,
                scan_rsp=scan_rsp,
                gateway=self.gateway,
                connectable=connectable,
            )
        )
        self.reports += 1
        self.last_report_mono = self._monotonic()

    def _cmd(self) -> str:
        return "scan" if self.active else "pasv"

    def _request(self, scanner: Any, command: str) -> dict[str, list[Any]]:
        scanner._writeCmd(command + "\n")
        rsp: dict[str, list[Any]] | None = scanner._waitResp(["mgmt"], START_TIMEOUT_S)
        if rsp is None:
            raise ScannerError(
                f"bluepy:{self.adapter}: bluepy-helper did not answer '{command}' "
                f"within {START_TIMEOUT_S:.0f} s"
            )
        return rsp

    def _check(self, command: str, rsp: dict[str, list[Any]]) -> None:
        code = rsp.get("code", [None])[0]
        if code == "success":
            return
        estat = rsp.get("estat", [None])[0]
        emsg = rsp.get("emsg", [None])[0]
        raise describe_start_failure(self.adapter, command, estat, emsg, code)

    def _start_scanner(self) -> None:
        btle = self._btle
        scanner = btle.Scanner(self.index).withDelegate(self._delegate)
        scanner.passive = not self.active
        try:
            scanner._startHelper(iface=self.index)
        except OSError as exc:
            reap_helper(scanner, None, None)  # bluepy opened /dev/null for stderr
            raise ScannerError(
                f"bluepy:{self.adapter}: cannot run bluepy-helper "
                f"({btle.helperExe}): {exc.strerror or exc}; reinstall bluepy "
                "(pip install --force-reinstall bluepy==1.3.0)"
            ) from exc
        proc = scanner._helper
        pipe = install_pipe(scanner)
        try:
            self._check("le on", self._request(scanner, "le on"))
            cmd = self._cmd()
            rsp = self._request(scanner, cmd)
            if rsp.get("code", [None])[0] == "busy":
                # A discovery left running by a previous helper: stop it, try again
                # (what Scanner.start() attempts, with the answers checked).
                self._request(scanner, cmd + "end")
                rsp = self._request(scanner, cmd)
            self._check(cmd, rsp)
        except btle.BTLEManagementError as exc:
            reap_helper(scanner, proc, pipe)
            raise describe_start_failure(
                self.adapter, "le on", exc.estat, exc.emsg, "nomgmt"
            ) from exc
        except (btle.BTLEException, OSError, ValueError) as exc:
            reap_helper(scanner, proc, pipe)
            raise ScannerError(
                f"bluepy:{self.adapter}: bluepy-helper failed at start: {exc}"
            ) from exc
        except ScannerError:
            reap_helper(scanner, proc, pipe)
            raise
        self._scanner, self._proc, self._pipe = scanner, proc, pipe
        self._started_mono = self._monotonic()
        self.last_error = None
        _LOGGER.info(
            "bluepy:%s: %s scan started (helper pid %s)",
            self.adapter,
            "active" if self.active else "passive",
            proc.pid,
        )

    def _stop_scanner(self, *, graceful: bool) -> None:
        scanner, proc, pipe = self._scanner, self._proc, self._pipe
        self._scanner = self._proc = self._pipe = None
        if scanner is None:
            return
        if graceful and proc is not None and proc.poll() is None:
            try:
                scanner._writeCmd(self._cmd() + "end\n")
                scanner._waitResp(["mgmt"], STOP_TIMEOUT_S)
            except (self._btle.BTLEException, OSError, ValueError):
                pass
        reap_helper(scanner, proc, pipe)

    def _on_process_error(self, exc: BaseException) -> None:
        proc = self._proc
        btle = self._btle
        dead = proc is None or proc.poll() is not None or self._scanner._helper is None
        if not dead:
            # A line bluepy could not parse, or "Address type changed during scan":
            # the helper is fine, skip the report.
            self.protocol_errors += 1
            _LOGGER.debug("bluepy:%s: skipped a report: %s", self.adapter, exc)
            return
        # bluepy's process() re-issues `scan` when the kernel ends a discovery, and on
        # a refusal (Busy while a GATT connection is being made, no estat) stops the
        # helper and raises this: not a crash.
        busy = (
            isinstance(exc, btle.BTLEManagementError)
            and exc.estat is None
            and "management command" in str(exc)
        )
        code = proc.returncode if proc is not None else None
        self.helper_deaths += 1
        self.last_error = f"bluepy-helper stopped ({exc}; exit status {code})"
        _LOGGER.warning("bluepy:%s: %s", self.adapter, self.last_error)
        ran_s = self._monotonic() - (self._started_mono or 0.0)
        self._stop_scanner(graceful=False)
        if busy or ran_s >= STABLE_RUN_S:
            self._failures = 0  # not a crash loop: restart at once
        else:
            self._failures += 1
        self._schedule_retry()

    def _schedule_retry(self) -> None:
        if self._failures <= 0:
            delay = 0.0
        else:
            delay = min(
                RESTART_BACKOFF_INITIAL_S * 2.0 ** (self._failures - 1),
                RESTART_BACKOFF_MAX_S,
            )
        self._next_start_mono = self._monotonic() + delay

    def _revive(self, timeout_s: float) -> None:
        """Restart a dead helper when its back-off has passed; sleep otherwise."""
        wait_s = self._next_start_mono - self._monotonic()
        if wait_s > 0:
            time.sleep(min(wait_s, max(timeout_s, 0.0)))
            return
        try:
            self.helper_restarts += 1
            self._start_scanner()
        except RadioPermissionError:
            raise
        except _AdapterBusy as exc:
            self.last_error = str(exc)
            self._next_start_mono = self._monotonic() + BUSY_RETRY_S
        except ScannerError as exc:
            self.last_error = str(exc)
            self._failures += 1
            self._schedule_retry()
            _LOGGER.warning(
                "bluepy:%s: restart failed (%s); next try in %.0f s",
                self.adapter,
                exc,
                max(self._next_start_mono - self._monotonic(), 0.0),
            )


def open_bluepy_source(
    adapter: str, *, active: bool = True, gateway: str | None = None
) -> BluepySource:
    """Open and start `bluepy:<adapter>`; raises ScannerError with the fix."""
    source = BluepySource(adapter, active=active, gateway=gateway)
    source.start()
    return source
