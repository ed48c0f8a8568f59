"""Shell: the small command-line frame shared by the three BlueGate programs.

Each subcommand lives in its own module with `configure(parser)` and
`run(args) -> int`; this frame turns BlueGateError into one line on stderr and
the exit status of design.md (0 ok, 1 failure, 2 usage, 78 configuration).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Protocol

from gateway import __version__
from gateway.errors import EXIT_FAILURE, BlueGateError


class CommandModule(Protocol):
    HELP: str

    def configure(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def dispatch(prog: str, commands: dict[str, str], argv: Sequence[str] | None) -> int:
    """Parse `argv`, run the chosen command module, map errors to exit codes."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--version", action="version", version=f"{prog} {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more log output (-vv: debug)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules: dict[str, CommandModule] = {}
    for name, module_path in commands.items():
        module: CommandModule = importlib.import_module(module_path)
        modules[name] = module
        module.configure(
            sub.add_parser(name, help=module.HELP, description=module.HELP)
        )
    args = parser.parse_args(argv)
    setup_stderr_logging(args.verbose)
    try:
        return modules[args.command].run(args)
    except BlueGateError as exc:
        print(f"{prog} {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_FAILURE


def setup_stderr_logging(verbose: int) -> None:
    """Log to stderr unless something (the systemd journal shell) already set a handler."""
    root = logging.getLogger()
    if root.handlers:
        return
    level = (
        logging.WARNING
        if verbose == 0
        else logging.INFO
        if verbose == 1
        else logging.DEBUG
    )
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
