"""Error hierarchy and exit codes shared by every BlueGate command (design.md)."""

from __future__ import annotations

from typing import Final

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
EXIT_CONFIG: Final = 78  # EX_CONFIG: systemd units set RestartPreventExitStatus=78


class BlueGateError(Exception):
    """Base of every error a command turns into one line and an exit status."""

    exit_code: int = EXIT_FAILURE


class UsageError(BlueGateError):
    """Bad command-line input (not hex, unknown source moniker, ...)."""

    exit_code = EXIT_USAGE


class InputError(BlueGateError):
    """A file given as input is malformed; the message names file, line and field."""

    exit_code = EXIT_USAGE


class ConfigError(BlueGateError):
    """A configuration file is invalid; the message names file, line and key."""

    exit_code = EXIT_CONFIG

    def __init__(self, file: str, line: int | None, key: str, message: str) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.message = message
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {key}: {message}")
