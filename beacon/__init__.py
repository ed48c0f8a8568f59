"""BlueGate beacon: rotating Bluezone-format location IDs, and the ID schemes shared
with the gateway and central (Bluezone, Exposure Notification)."""

from __future__ import annotations
