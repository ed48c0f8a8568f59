"""Shell: the central process as a set of components started and stopped together.

`bluegate-central serve` runs ingest workers now; the HTTP API and ops page join as one
more component. A component is anything with `name`, `start()` and `stop()`. Another
module adds its components by exposing ``make_components(config) -> list[Component]``
and being listed in `COMPONENT_MODULES` (missing modules are skipped), so serve never
needs to know what the HTTP layer looks like.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from central.config import CentralConfig
from central.ingest import IngestWorker

_LOGGER = logging.getLogger(__name__)

# Modules that may contribute components (the HTTP API lands here: central.api).
COMPONENT_MODULES: tuple[str, ...] = ("central.api",)


class Component(Protocol):
    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...


class Service:
    def __init__(self, components: Sequence[Component]) -> None:
        self.components = list(components)
        self._started: list[Component] = []
        self.stopping = threading.Event()

    def start(self) -> None:
        try:
            for component in self.components:
                component.start()
                self._started.append(component)
                _LOGGER.info("serve: %s started", component.name)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.stopping.set()
        for component in reversed(self._started):
            try:
                component.stop()
            except Exception:
                _LOGGER.exception("serve: %s failed to stop cleanly", component.name)
        self._started.clear()

    def ingest_counters(self) -> dict[str, Any]:
        total: dict[str, Any] = {}
        for component in self.components:
            if isinstance(component, IngestWorker):
                for key, value in component.counters.as_dict().items():
                    if isinstance(value, int):
                        total[key] = total.get(key, 0) + value
        return total


def ingest_components(config: CentralConfig) -> list[Component]:
    return [IngestWorker(config, i) for i in range(config.mqtt.workers)]


def build_service(config: CentralConfig, *, extra: Sequence[Component] = ()) -> Service:
    components: list[Component] = ingest_components(config)
    for name in COMPONENT_MODULES:
        try:
            module: Any = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        factory = getattr(module, "make_components", None)
        if factory is not None:
            components.extend(factory(config))
    components.extend(extra)
    return Service(components)
