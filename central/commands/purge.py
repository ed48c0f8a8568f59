"""`bluegate-central purge` (not built yet)."""

from __future__ import annotations

import argparse

from gateway.errors import BlueGateError

HELP = "purge (not available yet)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs=argparse.REMAINDER)


def run(args: argparse.Namespace) -> int:
    raise BlueGateError("'purge' is not available in this build yet")
