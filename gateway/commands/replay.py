"""`bluegate-gateway replay` (not built yet)."""

from __future__ import annotations

import argparse

from gateway.errors import BlueGateError

HELP = "replay (not available yet)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER)


def run(args: argparse.Namespace) -> int:
    raise BlueGateError("'replay' is not available in this build yet")
