"""Sources of advertising reports (design.md, Sources) and the `open_source` factory.

Monikers: `bluepy:hciN` (live, on the Pi), `btsnoop:PATH` (Android/Linux HCI logs),
`jsonl:PATH` (the trace format of design.md), `sim:PATH` (a simulated site).

Every source implements `Source`: `poll(timeout_s)` for a live or paced loop (a
recorded source returns its next batch at once), iteration for recorded sources as
fast as possible, `ended` and `close()`. Backends are imported lazily so that the
package imports on machines without bluepy (style.md 3.4).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

from gateway.errors import UsageError
from gateway.models import Report

SCHEMES = ("bluepy", "btsnoop", "jsonl", "sim")


@runtime_checkable
class Source(Protocol):
    """What the pipeline reads advertising reports from."""

    @property
    def ended(self) -> bool:
        """True once a recorded source is exhausted (a live one: once closed)."""
        ...

    def poll(self, timeout_s: float) -> list[Report]:
        """The reports available within `timeout_s` (live) or the next batch (recorded)."""
        ...

    def __iter__(self) -> Iterator[Report]: ...

    def close(self) -> None: ...


def split_moniker(moniker: str) -> tuple[str, str]:
    scheme, sep, rest = moniker.partition(":")
    if not sep or not rest or scheme not in SCHEMES:
        raise UsageError(
            f"unknown source {moniker!r}: expected bluepy:hciN, btsnoop:PATH, "
            "jsonl:PATH or sim:PATH"
        )
    return scheme, rest


def open_source(moniker: str, *, gateway: str | None = None, **options: Any) -> Source:
    """Open a source by moniker. Raises UsageError (one line) for an unknown scheme.

    `gateway`: the gateway id stamped on live reports, or the filter applied to a
    multi-gateway trace. `options` go to the backend (`active=` for bluepy).
    """
    scheme, rest = split_moniker(moniker)
    if scheme == "jsonl":
        from gateway.sources.jsonl import JsonlSource

        return JsonlSource(rest, gateway=gateway, **options)
    if scheme == "btsnoop":
        from gateway.sources.btsnoop import BtsnoopSource

        return BtsnoopSource(rest, gateway=gateway, **options)
    if scheme == "bluepy":
        from gateway.sources.bluepy_backend import open_bluepy_source

        return open_bluepy_source(rest, gateway=gateway, **options)
    # sim is written beside this module by its own owner; imported by name so that
    # this factory type-checks on its own.
    sim = importlib.import_module("gateway.sources.sim")
    source: Source = sim.open_sim_source(rest, gateway=gateway, **options)
    return source
