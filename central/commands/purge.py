"""`bluegate-central purge --config CFG`: delete raw records past retention_days."""

from __future__ import annotations

import argparse
import time

from central.commands.common import add_config, load, print_json
from gateway.errors import UsageError

HELP = "retention purge: raw records older than retention_days (case extracts are kept)"


def configure(parser: argparse.ArgumentParser) -> None:
    add_config(parser)
    parser.add_argument(
        "--days", type=float, default=None, help="override retention_days"
    )


def run(args: argparse.Namespace) -> int:
    config, store = load(args)
    days = config.retention_days if args.days is None else args.days
    if days < 0:
        raise UsageError("--days must not be negative")
    now = time.time()
    before = now - days * 86_400
    counts = store.purge(before)
    store.audit(now, "cli", "purge", {"days": days}, sum(counts.values()))
    store.close()
    print_json({"retention_days": days, "deleted": counts})
    return 0
