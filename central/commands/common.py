"""Helpers shared by central's commands: config, store, times, output."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from central.config import CentralConfig, load_central_config
from central.store import SqlStore, StoreError, open_store
from gateway.errors import BlueGateError, UsageError


def add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", required=True, metavar="CFG", help="central YAML file"
    )


def load(args: argparse.Namespace) -> tuple[CentralConfig, SqlStore]:
    config = load_central_config(args.config)
    try:
        return config, open_store(config.storage)
    except StoreError as exc:
        raise BlueGateError(str(exc)) from None


def parse_time(text: str, name: str) -> float:
    """ISO 8601 (a date alone is its UTC midnight; no zone means UTC) -> Unix seconds."""
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{name}: not an ISO time: {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def parse_date(text: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{name}: not a date (YYYY-MM-DD): {text!r}") from None


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    def cell(value: Any) -> str:
        if isinstance(value, list):
            return " ".join(str(v) for v in value)
        return "" if value is None else str(value)

    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [
        max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)
    ]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
