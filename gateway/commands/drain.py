"""`bluegate-gateway drain --config CFG [--deadline S]` (design.md, Commands).

Delivers what the outbox holds -- first what a killed process left in flight --
and exits 0 once the broker acknowledged everything, or 1 if the deadline passes
first (the outbox intact for a later `drain` or `run`).
"""

from __future__ import annotations

import argparse

from gateway.config import load_gateway_config

HELP = "deliver what the outbox holds; exit 0 when it is empty"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="CFG", help="unit YAML")
    parser.add_argument(
        "--deadline",
        type=float,
        default=None,
        metavar="S",
        help="give up after S seconds with status 1 (default: wait for ever)",
    )


def run(args: argparse.Namespace) -> int:
    from gateway import delivery  # paho/cryptography only when needed

    cfg = load_gateway_config(args.config)
    return delivery.drain(cfg, args.deadline)
