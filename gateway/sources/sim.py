"""Shell: the `sim:PATH` source (design.md, Sources) - a simulated site.

`PATH` is a scenario file or the name of an embedded one (`mine-site`, `small`),
optionally with query parameters: `sim:mine-site?hours=2&seed=3`. With `gateway`
set, only that gateway's reports are delivered (one gateway process per zone, as
in the demo). Reports come in time order at simulated time, as fast as the machine
allows (`run` paces recorded sources itself). Memory is bounded: the simulator is a
generator with state per person.

iPhones: `gatt_reader(clock)` returns a `gateway.gatt.GattReader` answering from the
simulator (see gateway/sim/gatt.py), for a pipeline that wants to resolve them.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

from gateway.errors import UsageError
from gateway.models import Report
from gateway.sim.engine import Simulator, with_overrides
from gateway.sim.gatt import SimGattReader
from gateway.sim.scenario import load_scenario
from gateway.sim.truth import TruthWriter

_LOGGER = logging.getLogger(__name__)

BATCH = 512


class SimSource:
    def __init__(
        self,
        path: str,
        *,
        gateway: str | None = None,
        hours: float | None = None,
        seed: int | None = None,
        truth_dir: str | None = None,
    ) -> None:
        scenario = with_overrides(load_scenario(path), hours=hours, seed=seed)
        self.simulator = Simulator(scenario, TruthWriter(truth_dir))
        known = {g.id for g in self.simulator.gateways}
        if gateway is not None and gateway not in known:
            raise UsageError(
                f"sim:{path}: no gateway {gateway!r} in the scenario "
                f"(known: {', '.join(sorted(known))})"
            )
        self.gateway = gateway
        self._it: Iterator[Report] | None = self._reports()
        self._ended = False
        self.delivered = 0

    def _reports(self) -> Iterator[Report]:
        want = self.gateway
        for report in self.simulator.reports():
            if want is None or report.gateway == want:
                yield report

    @property
    def ended(self) -> bool:
        return self._ended

    def poll(self, timeout_s: float) -> list[Report]:
        out: list[Report] = []
        it = self._it
        if it is None:
            return out
        for report in it:
            out.append(report)
            if len(out) >= BATCH:
                break
        else:
            self._ended = True
            self._it = None
        self.delivered += len(out)
        return out

    def __iter__(self) -> Iterator[Report]:
        while not self._ended:
            yield from self.poll(0.0)

    def close(self) -> None:
        self._it = None
        self._ended = True

    def gatt_lookup(self, addr: str, t: float) -> bytes | None:
        """What reading Bluezone's characteristic on `addr` returns now (t unused:
        the simulator's state is the current one)."""
        del t
        return self.simulator.gatt_value(addr)

    def gatt_reader(self, clock: Callable[[], float]) -> SimGattReader:
        return SimGattReader(self.gatt_lookup, clock)


def open_sim_source(
    path: str, *, gateway: str | None = None, **options: Any
) -> SimSource:
    """`sim:PATH[?hours=H&seed=N&truth=DIR]` (the factory gateway.sources calls)."""
    base, _, query = path.partition("?")
    params = dict(urllib.parse.parse_qsl(query))
    try:
        hours = float(params["hours"]) if "hours" in params else options.get("hours")
        seed = int(params["seed"]) if "seed" in params else options.get("seed")
    except ValueError:
        raise UsageError(f"sim:{path}: hours and seed must be numbers") from None
    unknown = set(params) - {"hours", "seed", "truth"}
    if unknown:
        raise UsageError(
            f"sim:{path}: unknown parameter(s) {', '.join(sorted(unknown))}"
        )
    return SimSource(
        base,
        gateway=gateway,
        hours=hours,
        seed=seed,
        truth_dir=params.get("truth", options.get("truth_dir")),
    )
