"""`bluegate-beacon`: ID schedules, frames and the advertiser daemon (design.md)."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.clikit import dispatch

COMMANDS = {
    "ids": "beacon.commands.ids",
    "frame": "beacon.commands.frame",
    "run": "beacon.commands.run",
    "enroll": "beacon.commands.enroll",
}


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch("bluegate-beacon", COMMANDS, argv)
