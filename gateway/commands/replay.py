"""`bluegate-gateway replay --source SRC --config CFG [--out FILE|-] [--deadline S]`.

Runs the whole edge pipeline on a recorded source at the source's own timestamps,
as fast as the machine allows (design.md). Only this gateway's lines of a
multi-gateway trace are used (lines without `gateway` are taken as ours). With
`--out` the records are written as JSON lines; without it they go through the
outbox to the broker of CFG (gateway.delivery.replay_publish) and the command exits
once the broker acknowledged everything, or with status 1 after `--deadline`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from gateway.config import GatewayConfig, load_gateway_config
from gateway.errors import EXIT_OK, BlueGateError, UsageError
from gateway.models import Report

_LOGGER = logging.getLogger(__name__)

HELP = "run the edge pipeline on a recorded source; publish or write the records"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source", required=True, help="jsonl:PATH, btsnoop:PATH or sim:PATH"
    )
    parser.add_argument("--config", required=True, help="the gateway unit's YAML")
    parser.add_argument(
        "--out", help="write records as JSON lines to FILE ('-': stdout)"
    )
    parser.add_argument(
        "--deadline", type=float, help="give up publishing after S seconds"
    )


def own_reports(reports: Iterable[Report], gateway: str) -> Iterator[Report]:
    """This gateway's lines of a (maybe multi-gateway) trace."""
    for report in reports:
        if report.gateway is None or report.gateway == gateway:
            yield report


def records(cfg: GatewayConfig, source: str) -> tuple[Iterable[dict[str, Any]], Any]:
    from gateway.pipeline import EdgePipeline, run_records

    if not source.startswith(("jsonl:", "btsnoop:", "sim:")):
        raise UsageError(
            f"replay needs a recorded or simulated source (jsonl:, btsnoop: or sim:), "
            f"not {source!r}"
        )
    try:
        sources: Any = importlib.import_module("gateway.sources")
    except ImportError as exc:
        raise BlueGateError(
            f"recorded sources are not available in this build: {exc}"
        ) from None
    src = sources.open_source(source, gateway=cfg.gateway)
    reports = own_reports(iter(src), cfg.gateway)
    gatt = None
    if source.startswith("sim:") and cfg.gatt.enabled:
        # A simulated site knows what each iPhone would answer over GATT: read it
        # through the real resolver (budget, cache, back-off) at the trace's time.
        from gateway.gatt import GattPolicy, GattResolver

        latest = [0.0]
        reader = src.gatt_reader(lambda: latest[0])
        gatt = GattResolver(reader, GattPolicy.from_config(cfg.gatt))
        reports = _pumping_gatt(reports, latest, gatt)
    pipeline = EdgePipeline(cfg, gatt=gatt) if gatt is not None else EdgePipeline(cfg)
    return run_records(pipeline, reports), pipeline


def _pumping_gatt(
    reports: Iterable[Report], latest: list[float], gatt: Any
) -> Iterator[Report]:
    """Start and collect GATT reads once a second of trace time, as `run`'s tick does."""
    next_pump = float("-inf")
    for report in reports:
        latest[0] = report.t
        if report.t >= next_pump:
            gatt.pump(report.t)
            next_pump = report.t + 1.0
        yield report


def write_lines(recs: Iterable[dict[str, Any]], out: TextIO) -> int:
    n = 0
    for rec in recs:
        out.write(json.dumps(rec, separators=(",", ":")) + "\n")
        n += 1
    return n


def run(args: argparse.Namespace) -> int:
    cfg = load_gateway_config(args.config)
    if args.deadline is not None and args.deadline <= 0:
        raise UsageError("--deadline must be positive")
    if args.out is None:
        try:
            delivery: Any = importlib.import_module("gateway.delivery")
            publish = delivery.replay_publish
        except (ImportError, AttributeError):
            raise BlueGateError(
                "publishing replayed records needs gateway.delivery.replay_publish, "
                "which this build lacks; use --out FILE"
            ) from None
        recs, pipeline = records(cfg, args.source)
        status = publish(cfg, recs, args.deadline)  # the exit status (0 or 1)
        _LOGGER.info("replay: %s", pipeline.stats())
        return int(status)
    recs, pipeline = records(cfg, args.source)
    if args.out == "-":
        n = write_lines(recs, sys.stdout)
        sys.stdout.flush()
    else:
        with open(args.out, "w", encoding="utf-8") as fh:
            n = write_lines(recs, fh)
    _LOGGER.info("replay: %d records; %s", n, pipeline.stats())
    return EXIT_OK
