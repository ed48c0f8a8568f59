"""Shell: the `btsnoop:PATH` source, Android and Linux HCI logs (design.md, Sources).

File format (RFC 1761 style, as Android's `btsnoop_hci.log` and `btmon -w` write it):
a 16-byte header `btsnoop\\0`, version 1, datalink; then records of
`original_len, included_len, flags, drops` (u32 BE) + timestamp (i64 BE, microseconds
since 0000-01-01) + the packet. Datalinks:

- 1001 HCI un-encapsulated: the packet type comes from the flags
  (bit 0 direction 1 = received, bit 1 command/event);
- 1002 HCI UART (H4): the first byte is the H4 type (0x04 event);
- 2001 Linux monitor (btmon): the low 16 bits of the flags are the opcode (3 = event).

Only received LE Meta events (0x3E) are read: subevent 0x02, legacy LE Advertising
Reports (Num_Reports > 1 as consecutive per-report records, as Linux parses them,
protocols.md 5.1), and 0x0D, LE Extended Advertising Reports (5.2), whose data split
over several events (data status 01, "more to come") is reassembled per
(address type, address, SID). RSSI 127 means "not available": such reports are
dropped and counted (models.Report carries a real RSSI).

A damaged file does not raise: the source yields every report before the damage,
then stops with `error` (one line naming the file and the byte offset) and
`error_offset` set, and logs a warning.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from typing import IO, Final

from gateway.errors import InputError
from gateway.models import AddrType, Report

_LOGGER = logging.getLogger(__name__)

MAGIC: Final = b"btsnoop\x00"
FILE_HEADER: Final = struct.Struct(">8sII")
RECORD_HEADER: Final = struct.Struct(">IIIIq")
# Microseconds from 0000-01-01 (proleptic Gregorian, as btsnoop counts) to 1970-01-01.
EPOCH_DELTA_US: Final = 0x00DCDDB30F2F8000

DLT_HCI: Final = 1001
DLT_H4: Final = 1002
DLT_MONITOR: Final = 2001
DATALINKS: Final = {DLT_HCI: "hci", DLT_H4: "h4", DLT_MONITOR: "monitor"}

H4_EVENT: Final = 0x04
H4_TYPES: Final = frozenset({0x01, 0x02, 0x03, 0x04, 0x05})  # cmd, ACL, SCO, event, ISO
MONITOR_EVENT: Final = 0x0003
EVT_LE_META: Final = 0x3E
SUB_ADV_REPORT: Final = 0x02
SUB_EXT_ADV_REPORT: Final = 0x0D
RSSI_UNAVAILABLE: Final = 127
LEGACY_SCAN_RSP: Final = 0x04
MAX_RECORD: Final = 0x10000 + 16  # an ACL packet of 64 KiB and its framing
MAX_PENDING: Final = 64  # extended-report reassemblies in flight
MAX_EXT_DATA: Final = 1650  # Core spec: longest extended advertising data
BATCH: Final = 512

# Legacy Event_Type -> connectable (None: a SCAN_RSP does not say).
_LEGACY_CONNECTABLE: Final = {0: True, 1: True, 2: False, 3: False, 4: None}
_ADDR_TYPES: Final = {int(member): member for member in AddrType}


def _addr(raw: bytes) -> str:
    return raw[::-1].hex(":").upper()


def _int8(byte: int) -> int:
    return byte - 256 if byte > 127 else byte


class BtsnoopSource:
    """`btsnoop:PATH` (implements the Source protocol)."""

    def __init__(self, path: str, *, gateway: str | None = None) -> None:
        self.path = path
        self.gateway = gateway
        try:
            self._file: IO[bytes] = open(path, "rb")  # noqa: SIM115
        except OSError as exc:
            raise InputError(f"{path}: cannot open: {exc.strerror or exc}") from exc
        head = self._file.read(FILE_HEADER.size)
        if len(head) < FILE_HEADER.size or head[:8] != MAGIC:
            self._file.close()
            raise InputError(
                f"{path}: not a btsnoop file (no 'btsnoop' header at byte 0)"
            )
        _, version, datalink = FILE_HEADER.unpack(head)
        if version != 1 or datalink not in DATALINKS:
            self._file.close()
            raise InputError(
                f"{path}: unsupported btsnoop version {version} / datalink {datalink} "
                "(supported: 1001 HCI, 1002 H4, 2001 Linux monitor)"
            )
        self.datalink = datalink
        self._reports = self._read()
        self._ended = False
        self._pending: dict[tuple[int, bytes, int], bytearray] = {}
        # where it stopped, if the file is damaged
        self.error: str | None = None
        self.error_offset: int | None = None
        # counters
        self.records = 0
        self.events = 0
        self.reports = 0
        self.dropped_rssi = 0
        self.malformed_events = 0
        self.unknown_addr_type = 0
        self.truncated_ext = 0
        self.dropped_fragments = 0

    # -- reading ----------------------------------------------------------------

    def _stop(self, offset: int, why: str) -> None:
        self.error_offset = offset
        self.error = (
            f"{self.path}: {why} at byte offset {offset}; "
            f"stopped after {self.reports} reports"
        )
        _LOGGER.warning("%s", self.error)

    def _read(self) -> Iterator[Report]:
        read = self._file.read
        offset = FILE_HEADER.size
        hsize = RECORD_HEADER.size
        unpack = RECORD_HEADER.unpack
        datalink = self.datalink
        while True:
            head = read(hsize)
            if not head:
                return
            if len(head) < hsize:
                self._stop(offset, "truncated record header")
                return
            orig_len, incl_len, flags, _drops, ts_us = unpack(head)
            if incl_len > orig_len or incl_len > MAX_RECORD or incl_len == 0:
                self._stop(offset, f"corrupt record (length {incl_len} of {orig_len})")
                return
            if datalink != DLT_MONITOR and flags > 3:
                self._stop(offset, f"corrupt record (flags 0x{flags:x})")
                return
            packet = read(incl_len)
            if len(packet) < incl_len:
                self._stop(offset, "truncated record")
                return
            if datalink == DLT_H4 and packet[0] not in H4_TYPES:
                self._stop(offset, f"corrupt record (H4 type 0x{packet[0]:02x})")
                return
            record_offset = offset
            offset += hsize + incl_len
            self.records += 1
            if datalink == DLT_H4:
                if packet[0] != H4_EVENT:
                    continue
                event = packet[1:]
            elif datalink == DLT_HCI:
                if flags != 3:  # received event
                    continue
                event = packet
            else:
                if flags & 0xFFFF != MONITOR_EVENT:
                    continue
                event = packet
            if len(event) < 3 or event[0] != EVT_LE_META:
                continue
            self.events += 1
            t = (ts_us - EPOCH_DELTA_US) / 1e6
            plen = event[1]
            params = event[2 : 2 + plen]
            if not params or len(params) < plen:
                self.malformed_events += 1
                _LOGGER.debug("short LE Meta event in record at %d", record_offset)
                if not params:
                    continue
            sub = params[0]
            if sub == SUB_ADV_REPORT:
                yield from self._legacy(params, t)
            elif sub == SUB_EXT_ADV_REPORT:
                yield from self._extended(params, t)

    def _legacy(self, p: bytes, t: float) -> Iterator[Report]:
        n = len(p)
        if n < 2:
            self.malformed_events += 1
            return
        off = 2
        for _ in range(p[1]):
            if off + 9 > n:
                self.malformed_events += 1
                return
            evt = p[off]
            addr_type = _ADDR_TYPES.get(p[off + 1])
            raw_addr = p[off + 2 : off + 8]
            dlen = p[off + 8]
            off += 9
            if off + dlen + 1 > n:
                self.malformed_events += 1
                return
            data = p[off : off + dlen]
            rssi = _int8(p[off + dlen])
            off += dlen + 1
            report = self._report(
                t,
                raw_addr,
                addr_type,
                rssi,
                data,
                scan_rsp=evt == LEGACY_SCAN_RSP,
                connectable=_LEGACY_CONNECTABLE.get(evt),
            )
            if report is not None:
                yield report

    def _extended(self, p: bytes, t: float) -> Iterator[Report]:
        n = len(p)
        if n < 2:
            self.malformed_events += 1
            return
        off = 2
        pending = self._pending
        for _ in range(p[1]):
            if off + 24 > n:
                self.malformed_events += 1
                return
            evt = p[off] | (p[off + 1] << 8)
            at_raw = p[off + 2]
            raw_addr = p[off + 3 : off + 9]
            sid = p[off + 11]
            rssi = _int8(p[off + 13])
            dlen = p[off + 23]
            off += 24
            if off + dlen > n:
                self.malformed_events += 1
                return
            data = p[off : off + dlen]
            off += dlen
            status = (evt >> 5) & 0x03
            key = (at_raw, raw_addr, sid)
            if status == 0x01:  # more to come: keep the fragment
                buf = pending.pop(key, None)
                if buf is None:
                    buf = bytearray()
                    if len(pending) >= MAX_PENDING:
                        del pending[next(iter(pending))]  # oldest reassembly
                        self.dropped_fragments += 1
                buf += data
                if len(buf) > MAX_EXT_DATA:
                    self.dropped_fragments += 1
                    continue
                pending[key] = buf  # re-inserted: most recent last
                continue
            head = pending.pop(key, None)
            if head is not None:
                data = bytes(head) + data
            if status == 0x02:
                self.truncated_ext += 1  # controller gave up; keep what arrived
            report = self._report(
                t,
                raw_addr,
                _ADDR_TYPES.get(at_raw),
                rssi,
                data,
                scan_rsp=bool(evt & 0x08),
                connectable=bool(evt & 0x01),
            )
            if report is not None:
                yield report

    def _report(
        self,
        t: float,
        raw_addr: bytes,
        addr_type: AddrType | None,
        rssi: int,
        data: bytes,
        *,
        scan_rsp: bool,
        connectable: bool | None,
    ) -> Report | None:
        """One report of either subevent, or None (counted) when it cannot be used."""
        if addr_type is None:
            self.unknown_addr_type += 1
            return None
        if rssi == RSSI_UNAVAILABLE:
            self.dropped_rssi += 1
            return None
        self.reports += 1
        return Report(
            t=t,
            addr=_addr(raw_addr),
            addr_type=addr_type,
            rssi=rssi,
            data=data,
            scan_rsp=scan_rsp,
            gateway=self.gateway,
            connectable=connectable,
        )

    # -- Source protocol ----------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self._ended

    def poll(self, timeout_s: float) -> list[Report]:
        """The next batch at once (a recording does not wait on the radio)."""
        batch: list[Report] = []
        for report in self._reports:
            batch.append(report)
            if len(batch) >= BATCH:
                return batch
        self._finish()
        return batch

    def __iter__(self) -> Iterator[Report]:
        yield from self._reports
        self._finish()

    def _finish(self) -> None:
        self._ended = True
        self._file.close()

    def close(self) -> None:
        self._ended = True
        self._file.close()

    def counters(self) -> dict[str, int]:
        return {
            "records": self.records,
            "le_meta_events": self.events,
            "reports": self.reports,
            "dropped_rssi_unavailable": self.dropped_rssi,
            "malformed_events": self.malformed_events,
            "unknown_addr_type": self.unknown_addr_type,
            "truncated_extended": self.truncated_ext,
            "dropped_fragments": self.dropped_fragments,
        }
