"""`bluegate-central stats --config CFG`: counts as JSON (design.md)."""

from __future__ import annotations

import argparse

from central.commands.common import add_config, load, print_json

HELP = "counts as JSON: batches, records by kind, quarantined, gateways"


def configure(parser: argparse.ArgumentParser) -> None:
    add_config(parser)
    parser.add_argument(
        "--gaps", action="store_true", help="also list every sequence gap"
    )


def run(args: argparse.Namespace) -> int:
    _config, store = load(args)
    out = store.stats()
    if args.gaps:
        out["gaps"] = store.sequence_gaps()
    store.close()
    print_json(out)
    return 0
