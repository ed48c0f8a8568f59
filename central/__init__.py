"""BlueGate central: ingest signed batches, store them, answer ops (contacts of a case)."""

from __future__ import annotations
