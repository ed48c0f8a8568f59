"""`bluegate-gateway scan --source SRC [--duration S] [--out FILE] [--all]`.

Prints one JSON object per decoded advertisement (a sighting: `format`, `key`, the
format's fields, `t`, `addr`, `addr_type`, `rssi`) until the source ends, then a
summary of counts (every format, `unknown`, `malformed`) on stderr. ADV and SCAN_RSP
halves are merged per address first (gateway.merge). `--out FILE` also records every
report heard as a `jsonl:` trace, for field debugging. A damaged btsnoop file prints
its reports, then one line naming the file and byte offset, and exits 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from gateway.adstruct import parse_ad
from gateway.decoders import UNKNOWN, DecodeStats, classify
from gateway.errors import EXIT_OK, BlueGateError, UsageError
from gateway.merge import ScanMerger
from gateway.models import Report
from gateway.sources import Source, open_source, split_moniker
from gateway.sources.jsonl import TraceWriter

HELP = "print one JSON object per decoded advertisement until the source ends"

LIVE_TICK_S = 0.5


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        required=True,
        metavar="SRC",
        help="bluepy:hciN, btsnoop:PATH, jsonl:PATH or sim:PATH",
    )
    parser.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="stop after S seconds (of the recording's own time for a recorded source)",
    )
    parser.add_argument(
        "--out", metavar="FILE", help="also record every report heard as a jsonl trace"
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="also print unrecognised advertisements (format 'unknown', with an AD digest)",
    )
    parser.add_argument(
        "--gateway",
        metavar="ID",
        help="gateway id stamped on live reports; filter for multi-gateway traces",
    )
    parser.add_argument(
        "--passive",
        action="store_true",
        help="bluepy: passive scan (no SCAN_REQ; iPhone names in SCAN_RSP are missed)",
    )


def _live(source: Source, duration_s: float | None) -> Iterator[Report]:
    deadline = None if duration_s is None else time.monotonic() + duration_s
    while not source.ended:
        timeout = LIVE_TICK_S
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            timeout = min(timeout, left)
        yield from source.poll(timeout)


def _recorded(source: Source, duration_s: float | None) -> Iterator[Report]:
    if duration_s is None:
        yield from source
        return
    first: float | None = None
    for report in source:
        if first is None:
            first = report.t
        if report.t - first > duration_s:
            return
        yield report


def scan(
    reports: Iterable[Report],
    out: Any,
    *,
    stats: DecodeStats,
    show_all: bool = False,
    trace: TraceWriter | None = None,
    tally: dict[str, int] | None = None,
) -> int:
    """Decode `reports` and write sightings to `out`; returns the number printed
    (also kept in `tally["printed"]`, which survives an interruption)."""
    merger = ScanMerger()
    tally = {} if tally is None else tally
    printed = tally["printed"] = 0
    write = out.write
    dumps = json.dumps
    for report in reports:
        if trace is not None:
            trace.write(report)
        merged = merger.feed(report)
        result, outcome = classify(merged.data)
        stats.add(outcome)
        if result is None:
            if not show_all:
                continue
            obj: dict[str, Any] = {"format": UNKNOWN, "key": None}
            if outcome != UNKNOWN:
                obj["malformed"] = True
            obj["ad"] = parse_ad(merged.data).summary()
            obj.update(t=merged.t, addr=merged.addr, rssi=merged.rssi)
            obj["addr_type"] = merged.addr_type.label
        else:
            obj = result.to_json()
            obj["t"] = merged.t
            obj["addr"] = merged.addr
            obj["addr_type"] = merged.addr_type.label
            obj["rssi"] = merged.rssi
        if merged.gateway is not None:
            obj["gateway"] = merged.gateway
        write(dumps(obj) + "\n")
        printed += 1
        tally["printed"] = printed
    return printed


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    if args.duration is not None and args.duration <= 0:
        raise UsageError("--duration must be a positive number of seconds")
    scheme, _ = split_moniker(args.source)
    options: dict[str, Any] = {}
    if scheme == "bluepy":
        options["active"] = not args.passive
    elif args.passive:
        raise UsageError("--passive applies to bluepy: sources only")
    source = open_source(args.source, gateway=args.gateway, **options)
    stats = DecodeStats()
    trace = TraceWriter(args.out) if args.out else None
    tally = {"printed": 0}
    # `timeout 60 bluegate-gateway scan ...` or systemd: stop like Ctrl-C, so that the
    # trace is closed whole and the summary printed.
    signal.signal(signal.SIGTERM, _interrupt)
    # The damage of a recording is reported once, below, as the error line.
    logging.getLogger("gateway.sources.btsnoop").setLevel(logging.ERROR)
    try:
        reports = (
            _live(source, args.duration)
            if scheme == "bluepy"
            else _recorded(source, args.duration)
        )
        scan(
            reports,
            sys.stdout,
            stats=stats,
            show_all=args.all,
            trace=trace,
            tally=tally,
        )
    finally:
        source.close()
        if trace is not None:
            trace.close()
        sys.stdout.flush()
        summary: dict[str, Any] = {"source": args.source, "printed": tally["printed"]}
        summary["decoded"] = stats.snapshot()
        counters = getattr(source, "counters", None)
        if callable(counters):
            summary["source_counters"] = counters()
        if trace is not None:
            summary["recorded"] = trace.written
        print("summary: " + json.dumps(summary), file=sys.stderr)
    error = getattr(source, "error", None)
    if error:
        raise BlueGateError(str(error))
    return EXIT_OK
