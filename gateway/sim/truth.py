"""Ground truth of a simulated day, written beside the traces.

Files in the output folder (JSON lines unless said):
- `presence.jsonl`: {"person", "role", "zone", "kind", "start", "end"} - who was in
  which zone when (passers-by at a bus stop appear with zone null, kind "outside");
- `keys.jsonl`: {"key", "person", "from", "to"} - every device key a person's
  devices used (each Bluezone slot ID, each Exposure Notification RPI, tag keys);
- `gatt.jsonl`: {"addr", "from", "to", "id"} - what a GATT read of an iPhone's
  Bluezone characteristic would return (a radio simulation cannot connect; the
  pipeline's GATT resolver is fed from this table by `SimGattReader`);
- `pairs.json`: true contact pairs: per pair and zone, minutes shared (enclosed
  zones) and minutes within 2 m (every zone);
- `en.json`: phone-to-phone Exposure Notification sightings: per (receiver, sender,
  zone) the minutes credited per whole-dB attenuation (one scan every 5 minutes, as
  Google's scanner does, each credited with the 5 minutes since the last scan).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from typing import IO, Any, Final

CLOSE_M: Final = 2.0  # MoH / CDC: within 2 m
EN_SCAN_INTERVAL_S: Final = 300.0  # Google's EN scanner: ~4 s every ~5 min


class TruthWriter:
    """Streams the per-event files; accumulates pair minutes (bounded by pairs)."""

    def __init__(self, out_dir: str | None) -> None:
        """`out_dir` None: keep nothing (the `sim:` source feeding a gateway)."""
        self.out_dir = out_dir
        self.enabled = out_dir is not None
        if out_dir is not None:
            os.makedirs(out_dir, exist_ok=True)

        def target(name: str) -> str:
            return os.path.join(out_dir, name) if out_dir is not None else os.devnull

        self._presence: IO[str] = open(  # noqa: SIM115 - closed in close()
            target("presence.jsonl"), "w", encoding="utf-8"
        )
        self._keys: IO[str] = open(  # noqa: SIM115
            target("keys.jsonl"), "w", encoding="utf-8"
        )
        self._gatt: IO[str] = open(  # noqa: SIM115
            target("gatt.jsonl"), "w", encoding="utf-8"
        )
        # (a, b) sorted -> zone -> seconds
        self.close_s: defaultdict[tuple[str, str], defaultdict[str, float]] = (
            defaultdict(lambda: defaultdict(float))
        )
        # (receiver, sender, zone) -> attenuation dB -> minutes
        self.en_min: defaultdict[tuple[str, str, str], defaultdict[int, float]] = (
            defaultdict(lambda: defaultdict(float))
        )
        self.presence_rows: list[tuple[str, str, str, float, float]] = []

    def presence(
        self, person: str, role: str, zone: str | None, kind: str, t0: float, t1: float
    ) -> None:
        if t1 <= t0 or not self.enabled:
            return
        self._presence.write(
            json.dumps(
                {
                    "person": person,
                    "role": role,
                    "zone": zone,
                    "kind": kind,
                    "start": round(t0, 3),
                    "end": round(t1, 3),
                }
            )
            + "\n"
        )
        if zone is not None:
            self.presence_rows.append((person, zone, kind, t0, t1))

    def key(self, key: str, person: str, t0: float, t1: float) -> None:
        if not self.enabled:
            return
        self._keys.write(
            json.dumps(
                {"key": key, "person": person, "from": round(t0, 3), "to": round(t1, 3)}
            )
            + "\n"
        )

    def gatt(self, addr: str, t0: float, t1: float, rolling_id: bytes) -> None:
        if not self.enabled:
            return
        self._gatt.write(
            json.dumps(
                {
                    "addr": addr,
                    "from": round(t0, 3),
                    "to": round(t1, 3),
                    "id": rolling_id.hex(),
                }
            )
            + "\n"
        )

    def close_seconds(self, a: str, b: str, zone: str, seconds: float) -> None:
        if not self.enabled:
            return
        pair = (a, b) if a < b else (b, a)
        self.close_s[pair][zone] += seconds

    def en_sighting(
        self, receiver: str, sender: str, zone: str, att_db: float, minutes: float
    ) -> None:
        if not self.enabled:
            return
        self.en_min[(receiver, sender, zone)][round(att_db)] += minutes

    def close(self, zone_kinds: dict[str, str]) -> None:
        for handle in (self._presence, self._keys, self._gatt):
            handle.close()
        if self.out_dir is None:
            return
        shared = shared_seconds(self.presence_rows)
        pairs: list[dict[str, Any]] = []
        empty: dict[str, float] = {}
        for pair in sorted(set(shared) | set(self.close_s)):
            in_zone = shared.get(pair, empty)
            close = self.close_s.get(pair, empty)
            pairs.extend(
                {
                    "a": pair[0],
                    "b": pair[1],
                    "zone": zone,
                    "kind": zone_kinds.get(zone, "unknown"),
                    "shared_min": round(in_zone.get(zone, 0.0) / 60, 2),
                    "close_min": round(close.get(zone, 0.0) / 60, 2),
                }
                for zone in sorted(set(in_zone) | set(close))
            )
        with open(
            os.path.join(self.out_dir, "pairs.json"), "w", encoding="utf-8"
        ) as fh:
            json.dump({"close_m": CLOSE_M, "pairs": pairs}, fh)
        with open(os.path.join(self.out_dir, "en.json"), "w", encoding="utf-8") as fh:
            json.dump(
                {
                    "scan_interval_s": EN_SCAN_INTERVAL_S,
                    "sightings": [
                        {
                            "receiver": r,
                            "sender": s,
                            "zone": z,
                            "kind": zone_kinds.get(z, "unknown"),
                            "att_min": dict(sorted(h.items())),
                        }
                        for (r, s, z), h in sorted(self.en_min.items())
                    ],
                },
                fh,
            )


def shared_seconds(
    rows: list[tuple[str, str, str, float, float]],
) -> dict[tuple[str, str], dict[str, float]]:
    """Exact co-presence per pair and zone from presence intervals (sweep per zone)."""
    by_zone: defaultdict[str, list[tuple[str, float, float]]] = defaultdict(list)
    for person, zone, _kind, t0, t1 in rows:
        by_zone[zone].append((person, t0, t1))
    out: defaultdict[tuple[str, str], defaultdict[str, float]] = defaultdict(
        lambda: defaultdict(float)
    )
    for zone, spans in by_zone.items():
        spans.sort(key=lambda s: s[1])
        active: list[tuple[str, float, float]] = []
        for person, t0, t1 in spans:
            active = [s for s in active if s[2] > t0]
            for other, _o0, o1 in active:
                if other == person:
                    continue
                overlap = min(t1, o1) - t0
                if overlap > 0:
                    pair = (person, other) if person < other else (other, person)
                    out[pair][zone] += overlap
            active.append((person, t0, t1))
    return {pair: dict(zones) for pair, zones in out.items()}


def load_pairs(out_dir: str) -> list[dict[str, Any]]:
    with open(os.path.join(out_dir, "pairs.json"), encoding="utf-8") as fh:
        pairs: list[dict[str, Any]] = json.load(fh)["pairs"]
    return pairs


def load_jsonl(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
