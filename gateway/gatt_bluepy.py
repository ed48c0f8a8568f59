"""Shell: read an iPhone's Bluezone ID over GATT with bluepy's `Peripheral`.

Implements `gateway.gatt.GattReader`: one worker thread, one connection at a time,
results handed back through a thread-safe queue so the tick loop (and the scan)
never waits for a phone. The procedure is protocols.md 1.4: connect to the
advertising address, find service `...A667`, read characteristic `...A689`, expect
exactly 12 bytes, disconnect - always, whatever happened.

bluepy 1.3.0's `Peripheral.connect()` has no timeout (a phone that walked away
leaves it waiting on the kernel's LE connection attempt), and neither has
`disconnect()`. Each phase therefore runs under a watchdog that kills this read's
own bluepy-helper, which makes bluepy raise instead of hanging; the helper is then
reaped with `reap_helper` so no pipe or process is left behind.

bluepy is reached only through `gateway.sources.bluepy_backend.load_btle()`, the
one module that imports it.
"""

from __future__ import annotations

import logging
import queue
import subprocess
import threading
import time
from typing import Any

from gateway.gatt import (
    BLUEZONE_CHAR_UUID,
    BLUEZONE_ID_LEN,
    BLUEZONE_SERVICE_UUID,
    ERR_CONNECT,
    ERR_GATT,
    ERR_HELPER,
    ERR_LENGTH,
    ERR_NO_CHAR,
    ERR_NO_SERVICE,
    ERR_TIMEOUT,
    ReadRequest,
    ReadResult,
)
from gateway.models import AddrType
from gateway.sources.bluepy_backend import load_btle, parse_adapter, reap_helper

_LOGGER = logging.getLogger(__name__)

# Service discovery, characteristic discovery, the read and the disconnect together
# take a few connection events; 5 s is generous even at a 4 s supervision timeout.
IO_TIMEOUT_S = 5.0
_STOP = object()


class _Watchdog:
    """Kills a helper process if a phase outlives its timeout."""

    def __init__(self, proc: subprocess.Popen[str], timeout_s: float) -> None:
        self.fired = False
        self._proc = proc
        self._timer = threading.Timer(timeout_s, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        if self._proc.poll() is None:
            self.fired = True
            self._proc.kill()

    def cancel(self) -> None:
        self._timer.cancel()


class BluepyGattReader:
    """`GattReader` over bluepy: a worker thread that reads one phone at a time."""

    def __init__(
        self,
        adapter: str,
        *,
        connect_timeout_s: float = 10.0,
        io_timeout_s: float = IO_TIMEOUT_S,
    ) -> None:
        self.adapter = adapter
        self.index = parse_adapter(adapter)
        self.connect_timeout_s = connect_timeout_s
        self.io_timeout_s = io_timeout_s
        self._btle = load_btle()
        self._requests: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._results: queue.SimpleQueue[ReadResult] = queue.SimpleQueue()
        self._outstanding = 0  # touched only by the owner's thread
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._current: subprocess.Popen[str] | None = None
        self._closed = False
        self.last_duration_s: float | None = None

    # -- GattReader -----------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._outstanding > 0

    def submit(self, request: ReadRequest) -> None:
        if self._closed:
            raise RuntimeError("GATT reader is closed")
        if self._outstanding:
            raise RuntimeError("one GATT read at a time")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"gatt-{self.adapter}", daemon=True
            )
            self._thread.start()
        self._outstanding += 1
        self._requests.put(request)

    def results(self) -> list[ReadResult]:
        out: list[ReadResult] = []
        while True:
            try:
                out.append(self._results.get_nowait())
            except queue.Empty:
                break
        self._outstanding -= len(out)
        return out

    def wait(self, timeout_s: float) -> list[ReadResult]:
        """Block up to `timeout_s` for the read in flight (tools and tests)."""
        try:
            first = self._results.get(timeout=timeout_s)
        except queue.Empty:
            return []
        self._outstanding -= 1
        return [first, *self.results()]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._requests.put(_STOP)
        with self._lock:
            if self._current is not None and self._current.poll() is None:
                self._current.kill()
        if self._thread is not None:
            self._thread.join(timeout=self.connect_timeout_s + self.io_timeout_s + 5.0)

    # -- worker -----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._requests.get()
            if item is _STOP or not isinstance(item, ReadRequest):
                return
            started = time.monotonic()
            try:
                result = self._read(item)
            except Exception as exc:  # the worker must always answer
                _LOGGER.exception("GATT read of %s crashed", item.addr)
                result = ReadResult(item.addr, None, ERR_HELPER, repr(exc))
            self.last_duration_s = time.monotonic() - started
            self._results.put(result)

    def _read(self, req: ReadRequest) -> ReadResult:
        btle = self._btle
        addr_type = (
            btle.ADDR_TYPE_RANDOM
            if req.addr_type in (AddrType.RANDOM, AddrType.RANDOM_IDENTITY)
            else btle.ADDR_TYPE_PUBLIC
        )
        periph = btle.Peripheral()
        try:
            periph._startHelper(iface=self.index)
        except OSError as exc:
            reap_helper(periph, None, None)  # bluepy opened /dev/null for stderr
            return ReadResult(req.addr, None, ERR_HELPER, f"cannot run helper: {exc}")
        proc: subprocess.Popen[str] = periph._helper
        with self._lock:
            self._current = proc
        dog = _Watchdog(proc, self.connect_timeout_s)
        try:
            if self._closed:
                return ReadResult(req.addr, None, ERR_HELPER, "reader closed")
            try:
                periph.connect(req.addr, addr_type, self.index)
            except btle.BTLEDisconnectError as exc:
                return ReadResult(req.addr, None, ERR_CONNECT, str(exc))
            except btle.BTLEException as exc:
                return self._failure(req, dog, exc)
            dog.cancel()
            dog = _Watchdog(proc, self.io_timeout_s)
            try:
                service = periph.getServiceByUUID(BLUEZONE_SERVICE_UUID)
            except btle.BTLEGattError as exc:
                return ReadResult(req.addr, None, ERR_NO_SERVICE, str(exc))
            try:
                chars = service.getCharacteristics(BLUEZONE_CHAR_UUID)
            except KeyError:
                # BlueZ answers "no characteristic" with an empty discovery result,
                # on which bluepy 1.3.0 raises KeyError('hnd').
                chars = []
            if not chars:
                return ReadResult(req.addr, None, ERR_NO_CHAR, "characteristic absent")
            value = chars[0].read()
            if not isinstance(value, bytes) or len(value) != BLUEZONE_ID_LEN:
                size = len(value) if isinstance(value, bytes) else 0
                return ReadResult(req.addr, None, ERR_LENGTH, f"{size} bytes")
            return ReadResult(req.addr, value)
        except btle.BTLEException as exc:
            return self._failure(req, dog, exc)
        except (OSError, ValueError) as exc:
            # A pipe to a helper the watchdog killed, or a line bluepy cannot parse.
            return self._failure(req, dog, exc)
        finally:
            dog.cancel()
            self._disconnect(periph, proc)
            with self._lock:
                self._current = None

    def _failure(
        self, req: ReadRequest, dog: _Watchdog, exc: BaseException
    ) -> ReadResult:
        if dog.fired:
            return ReadResult(req.addr, None, ERR_TIMEOUT, str(exc))
        if isinstance(exc, self._btle.BTLEDisconnectError):
            # The phone dropped the link mid-read (walked away, or iOS said no).
            return ReadResult(req.addr, None, ERR_CONNECT, str(exc))
        if isinstance(exc, OSError) or "Helper exited" in str(exc):
            return ReadResult(req.addr, None, ERR_HELPER, str(exc))
        return ReadResult(req.addr, None, ERR_GATT, str(exc))

    def _disconnect(self, periph: Any, proc: subprocess.Popen[str]) -> None:
        """Disconnect always, bounded in time, and leave no helper behind."""
        if periph._helper is not None and proc.poll() is None:
            dog = _Watchdog(proc, self.io_timeout_s)
            try:
                periph.disconnect()
            except (self._btle.BTLEException, OSError, ValueError) as exc:
                _LOGGER.debug("GATT disconnect: %s", exc)
            finally:
                dog.cancel()
        reap_helper(periph, proc, None)
