"""BlueGate gateway: scan, decode, aggregate, keep and forward BLE contact sightings."""

from __future__ import annotations

__version__ = "0.1.0"
