"""The GATT side of simulated iPhones: what a read of Bluezone's characteristic
(protocols.md 1.4) would return, for the pipeline's GATT resolver.

A radio simulation has no connections, so the simulator publishes the truth: which
address carried which 12-byte ID when (`gatt.jsonl`, or live from a running
`Simulator`). `SimGattReader` implements `gateway.gatt.GattReader` on top of it, with
the failures a real read meets (connection refused or timed out, `fail_ratio`), so
the resolver's budget, cache and back-off are exercised as on a Pi:

    reader = SimGattReader(table.lookup, clock=lambda: pipeline_time)
    pipeline = EdgePipeline(cfg, gatt=GattResolver(reader, policy))
"""

from __future__ import annotations

import bisect
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.gatt import ERR_CONNECT, ERR_NO_SERVICE, ReadRequest, ReadResult


@dataclass(slots=True)
class GattTable:
    """addr -> sorted (from, to, id) windows, loaded from gatt.jsonl."""

    windows: dict[str, list[tuple[float, float, bytes]]] = field(default_factory=dict)

    @classmethod
    def from_jsonl(cls, path: str) -> GattTable:
        table = cls()
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    row = json.loads(line)
                    table.windows.setdefault(row["addr"], []).append(
                        (float(row["from"]), float(row["to"]), bytes.fromhex(row["id"]))
                    )
        for spans in table.windows.values():
            spans.sort()
        return table

    def lookup(self, addr: str, t: float) -> bytes | None:
        spans = self.windows.get(addr)
        if not spans:
            return None
        i = bisect.bisect_right(spans, (t, float("inf"), b"")) - 1
        if i >= 0 and spans[i][0] <= t < spans[i][1]:
            return spans[i][2]
        return None


class SimGattReader:
    """`GattReader` answering from the simulator's truth; reads complete at the next
    `results()` call (the resolver's next pump), failing with `fail_ratio`."""

    def __init__(
        self,
        lookup: Callable[[str, float], bytes | None],
        clock: Callable[[], float],
        *,
        fail_ratio: float = 0.1,
        seed: int = 0,
    ) -> None:
        self._lookup = lookup
        self._clock = clock
        self._fail_ratio = fail_ratio
        self._rng = random.Random(seed)
        self._done: list[ReadResult] = []
        self.reads = 0

    @property
    def busy(self) -> bool:
        return bool(self._done)

    def submit(self, request: ReadRequest) -> None:
        self.reads += 1
        if self._rng.random() < self._fail_ratio:
            self._done.append(ReadResult(request.addr, None, ERR_CONNECT, "simulated"))
            return
        value = self._lookup(request.addr, self._clock())
        if value is None:
            self._done.append(ReadResult(request.addr, None, ERR_NO_SERVICE))
        else:
            self._done.append(ReadResult(request.addr, value))

    def results(self) -> list[ReadResult]:
        out, self._done = self._done, []
        return out

    def close(self) -> None:
        self._done = []
