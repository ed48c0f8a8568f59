"""Shell: the `jsonl:PATH` trace source and its writer (design.md, trace line).

One advertising report per line:
`{"t": 1596866400.25, "addr": "5E:12:34:56:78:9A", "addr_type": "random", "rssi": -67,
  "data": "0201...", "scan_rsp": false, "gateway": "bus-07"}`

A bad line stops the source with InputError naming the file, the line and the field
(design.md, Bad input): a trace is our own file, so damage is reported, not skipped.
With a gateway filter, lines of other gateways are skipped; lines without a
`gateway` field belong to every gateway (single-gateway traces omit it).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterator
from typing import IO, Any, Final

from gateway.errors import InputError
from gateway.models import AddrType, Report

_LOGGER = logging.getLogger(__name__)

BATCH: Final = 512
_ADDR_RE: Final = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
_HEX_RE: Final = re.compile(r"^(?:[0-9A-Fa-f]{2})*$")


def report_from_json(obj: Any, where: str) -> Report:
    """Validate one decoded trace line; InputError names `where` and the field."""
    if not isinstance(obj, dict):
        raise InputError(f"{where}: not a JSON object")

    def bad(field: str, why: str) -> InputError:
        return InputError(f"{where}: field {field!r}: {why}")

    t = obj.get("t")
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
        raise bad("t", "missing or not a number (Unix seconds)")
    addr = obj.get("addr")
    if not isinstance(addr, str) or not _ADDR_RE.match(addr):
        raise bad("addr", "missing or not an address like 5E:12:34:56:78:9A")
    label = obj.get("addr_type", "random")
    try:
        addr_type = AddrType.from_label(label) if isinstance(label, str) else None
    except ValueError:
        addr_type = None
    if addr_type is None:
        raise bad(
            "addr_type",
            f"{label!r} is not public, random, public-identity, "
            "random-identity or anonymous",
        )
    rssi = obj.get("rssi")
    if isinstance(rssi, bool) or not isinstance(rssi, int) or not -127 <= rssi <= 20:
        raise bad("rssi", "missing or not an integer dBm in [-127, 20]")
    data = obj.get("data")
    if not isinstance(data, str) or not _HEX_RE.match(data):
        raise bad("data", "missing or not hex")
    scan_rsp = obj.get("scan_rsp", False)
    if not isinstance(scan_rsp, bool):
        raise bad("scan_rsp", "not true/false")
    gateway = obj.get("gateway")
    if gateway is not None and not isinstance(gateway, str):
        raise bad("gateway", "not a string")
    connectable = obj.get("connectable")
    if connectable is not None and not isinstance(connectable, bool):
        raise bad("connectable", "not true/false")
    return Report(
        t=float(t),
        addr=addr.upper(),
        addr_type=addr_type,
        rssi=rssi,
        data=bytes.fromhex(data),
        scan_rsp=scan_rsp,
        gateway=gateway,
        connectable=connectable,
    )


def report_to_json(report: Report) -> dict[str, Any]:
    out: dict[str, Any] = {
        "t": report.t,
        "addr": report.addr,
        "addr_type": report.addr_type.label,
        "rssi": report.rssi,
        "data": report.data.hex(),
        "scan_rsp": report.scan_rsp,
    }
    if report.gateway is not None:
        out["gateway"] = report.gateway
    if report.connectable is not None:
        out["connectable"] = report.connectable
    return out


class JsonlSource:
    """`jsonl:PATH`: a recorded trace (implements the Source protocol)."""

    def __init__(self, path: str, *, gateway: str | None = None) -> None:
        self.path = path
        self.gateway = gateway
        try:
            self._file: IO[str] = open(path, encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise InputError(f"{path}: cannot open: {exc.strerror or exc}") from exc
        self._lines = self._read()
        self._ended = False
        self.reports = 0
        self.skipped_other_gateway = 0

    def _read(self) -> Iterator[Report]:
        wanted = self.gateway
        for lineno, line in enumerate(self._file, 1):
            if not line.strip():
                continue
            where = f"{self.path}:{lineno}"
            try:
                obj = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InputError(f"{where}: not JSON: {exc}") from None
            except ValueError as exc:  # e.g. integers too long to convert
                raise InputError(f"{where}: not JSON: {exc}") from None
            report = report_from_json(obj, where)
            if wanted is not None and report.gateway not in (None, wanted):
                self.skipped_other_gateway += 1
                continue
            self.reports += 1
            yield report

    @property
    def ended(self) -> bool:
        return self._ended

    def poll(self, timeout_s: float) -> list[Report]:
        """The next batch at once (a recording does not wait on the radio)."""
        batch: list[Report] = []
        for report in self._lines:
            batch.append(report)
            if len(batch) >= BATCH:
                return batch
        self._ended = True
        return batch

    def __iter__(self) -> Iterator[Report]:
        yield from self._lines
        self._ended = True

    def close(self) -> None:
        self._ended = True
        self._file.close()


class TraceWriter:
    """Writes reports as `jsonl:` trace lines (`scan --out FILE`)."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._file: IO[str] = open(path, "w", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from exc
        self.written = 0

    def write(self, report: Report) -> None:
        self._file.write(json.dumps(report_to_json(report), separators=(",", ":")))
        self._file.write("\n")
        self.written += 1

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
