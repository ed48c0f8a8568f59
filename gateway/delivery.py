"""Shell: deliver the outbox to the broker and wait for acks (`drain`, `replay`).

Both commands open the unit's outbox (so what a killed process left in flight goes
out first), run a `Publisher` on this thread, and return an exit status: 0 once
the broker acknowledged every record, 1 if `deadline_s` passes first -- the outbox
then still holds everything not acknowledged, for a later `drain` or `run`.

Held records (made before the clock synchronised, gateway/outbox) are not delivered
until rebased: opening the outbox releases those of earlier boots (unrebased), and
if the clock is synchronised now, those of this boot are rebased first. Any still
held are named on stderr; they wait for `run` to see the clock synchronise.
"""

from __future__ import annotations

import itertools
import logging
import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final

from gateway import keys, systemd
from gateway.config import GatewayConfig
from gateway.errors import EXIT_FAILURE, EXIT_OK
from gateway.outbox import SqliteOutbox, open_outbox
from gateway.publisher import Publisher

_LOGGER = logging.getLogger(__name__)

# Records appended per outbox transaction while replaying (a replayed hour is
# thousands of records; one transaction each would be needless fsyncs).
REPLAY_CHUNK: Final = 2000
# How long one pump waits for an event before checking the deadline again.
_WAIT_S: Final = 0.25


def open_unit_outbox(cfg: GatewayConfig) -> SqliteOutbox:
    """The outbox of this unit's configuration (`outbox` section)."""
    return open_outbox(
        cfg.outbox.path,
        max_mb=cfg.outbox.max_mb,
        retention_days=cfg.outbox.retention_days,
        synchronous=cfg.outbox.synchronous,
    )


def rebase_if_synced(outbox: SqliteOutbox) -> None:
    """This boot's held rows, rebased if the clock is synchronised now (the monotonic
    clock is system-wide: the daemon's held rows share it within one boot)."""
    if outbox.stats().held and systemd.clock_synchronised():
        outbox.rebase(time.time() - time.monotonic(), time.time())
    held = outbox.stats().held
    if held:
        sys.stderr.write(
            f"{held} record(s) made before the clock synchronised stay held in "
            f"{outbox.path} until it does (`run` rebases them)\n"
        )


def make_publisher(cfg: GatewayConfig, outbox: SqliteOutbox) -> Publisher:
    key = keys.load_signing_key(cfg.identity.dir)
    if key is None:
        _LOGGER.warning(
            "no signing key in %s: batches go out unsigned, and central quarantines "
            "them unless it allows unsigned batches (run `bluegate-gateway enroll`)",
            cfg.identity.dir,
        )
    return Publisher(cfg, outbox, key)


def _wait_empty(
    outbox: SqliteOutbox, publisher: Publisher, deadline_at: float | None
) -> int:
    while outbox.pending() > 0:
        now = time.monotonic()
        if deadline_at is not None and now >= deadline_at:
            stats = publisher.stats()
            # One line for the operator, whatever the log level.
            sys.stderr.write(
                f"deadline passed: {outbox.pending()} record(s) not acknowledged, "
                f"kept in the outbox {outbox.path}"
                + (f" ({stats.last_error})" if stats.last_error else "")
                + "\n"
            )
            return EXIT_FAILURE
        wait = _WAIT_S if deadline_at is None else min(_WAIT_S, deadline_at - now)
        publisher.pump(time.time(), wait_s=max(wait, 0.001))
    return EXIT_OK


def drain(cfg: GatewayConfig, deadline_s: float | None) -> int:
    """Deliver everything in the outbox; 0 when empty, 1 if the deadline passed."""
    deadline_at = None if deadline_s is None else time.monotonic() + deadline_s
    outbox = open_unit_outbox(cfg)
    try:
        rebase_if_synced(outbox)
        if outbox.pending() == 0:
            return EXIT_OK  # nothing to say to the broker
        publisher = make_publisher(cfg, outbox)
        publisher.start()
        try:
            _LOGGER.info("drain: %d record(s) to deliver", outbox.pending())
            return _wait_empty(outbox, publisher, deadline_at)
        finally:
            publisher.pump(time.time())  # record acks that arrived at the end
            publisher.stop()
    finally:
        outbox.close()


def replay_publish(
    cfg: GatewayConfig,
    records: Iterable[Mapping[str, Any]],
    deadline_s: float | None,
) -> int:
    """Put `records` into the outbox, publish, and wait for the broker's acks.

    Every record is committed to the outbox, however long the broker takes; the
    deadline only bounds the wait for acknowledgements. Returns the exit status.
    """
    deadline_at = None if deadline_s is None else time.monotonic() + deadline_s
    outbox = open_unit_outbox(cfg)
    try:
        rebase_if_synced(outbox)
        publisher = make_publisher(cfg, outbox)
        publisher.start()
        try:
            iterator = iter(records)
            total = 0
            while chunk := list(itertools.islice(iterator, REPLAY_CHUNK)):
                outbox.append_many(chunk, time.time())
                total += len(chunk)
                publisher.pump(time.time())  # overlap publishing with the pipeline
            _LOGGER.info("replay: %d record(s) in the outbox", total)
            return _wait_empty(outbox, publisher, deadline_at)
        finally:
            publisher.pump(time.time())
            publisher.stop()
    finally:
        outbox.close()
