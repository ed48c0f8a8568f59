"""`bluegate-gateway`: the edge unit's commands (design.md, Commands)."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.clikit import dispatch

COMMANDS = {
    "decode": "gateway.commands.decode",
    "scan": "gateway.commands.scan",
    "replay": "gateway.commands.replay",
    "run": "gateway.commands.run",
    "drain": "gateway.commands.drain",
    "enroll": "gateway.commands.enroll",
    "doctor": "gateway.commands.doctor",
    "simulate": "gateway.commands.simulate",
}


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch("bluegate-gateway", COMMANDS, argv)
