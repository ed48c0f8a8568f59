"""`bluegate-central serve --config CFG`: ingest workers (and, once present, the HTTP API)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from types import FrameType

from central.commands.common import add_config
from central.config import load_central_config
from central.service import build_service
from central.store import StoreError, open_store
from gateway.errors import BlueGateError

HELP = "ingest batches from MQTT into the store (and serve the HTTP API when built in)"
_LOGGER = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    add_config(parser)
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="ingest workers (default: mqtt.workers)",
    )


def run(args: argparse.Namespace) -> int:
    config = load_central_config(args.config)
    if args.workers is not None:
        from dataclasses import replace

        if args.workers < 1:
            raise BlueGateError("--workers must be at least 1")
        config = replace(config, mqtt=replace(config.mqtt, workers=args.workers))
    try:
        open_store(config.storage).close()  # migrate once before the workers start
    except StoreError as exc:
        raise BlueGateError(str(exc)) from None
    service = build_service(config)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        _LOGGER.info("serve: signal %d, stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    service.start()
    try:
        while not stop.wait(60.0):
            _LOGGER.info("serve: ingest %s", service.ingest_counters())
    finally:
        service.stop()
    return 0
