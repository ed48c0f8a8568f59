"""`bluegate-central import --config CFG FILE...`: reference data from YAML or CSV."""

from __future__ import annotations

import argparse
import time

from central import refdata
from central.commands.common import add_config, load, print_json

HELP = "import sites, zones, gateways, people and tag assignments (YAML or CSV)"


def configure(parser: argparse.ArgumentParser) -> None:
    add_config(parser)
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument(
        "--table",
        choices=refdata.TABLES,
        help="table of a CSV file (default: its name)",
    )


def run(args: argparse.Namespace) -> int:
    items = [
        item for path in args.files for item in refdata.read_file(path, args.table)
    ]
    _config, store = load(args)
    counts = refdata.import_items(
        store, items
    )  # validated fully before anything is written
    store.audit(time.time(), "cli", "import", {"files": args.files}, len(items))
    store.close()
    print_json({"imported": counts})
    return 0
