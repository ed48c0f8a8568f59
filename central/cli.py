"""`bluegate-central`: ingest service, queries and administration (design.md)."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.clikit import dispatch

COMMANDS = {
    "serve": "central.commands.serve",
    "contacts": "central.commands.contacts",
    "enroll": "central.commands.enroll",
    "token": "central.commands.token",
    "stats": "central.commands.stats",
    "ca": "central.commands.ca",
    "import": "central.commands.import_refdata",
    "query": "central.commands.query",
    "purge": "central.commands.purge",
    "beacon": "central.commands.beacon",
}


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch("bluegate-central", COMMANDS, argv)
