"""Advertisements decoded per second on one core, beside TheengsDecoder and
bluetooth-data-tools, over a realistic crowded-room mix (issue 2, Performance).

The mix: a shift-change room for five minutes. Contact-tracing phones (Bluezone
Android, Bluezone iPhones in foreground and background, Exposure Notification with
RPI rotation), worker tags (iBeacon, Eddystone UID/TLM/EID/URL, AltBeacon), and the
unrelated traffic that dominates such a room: Apple Continuity (Nearby Info whose
status bytes change every couple of seconds, AirPods proximity pairing, Find My),
Microsoft CDP beacons of laptops, Samsung phones and watches, Google Fast Pair,
fitness bands and tags with changing sensor bytes, and a little junk. Each device
repeats its payload at its own advertising rate and changes it at its own rate, as
real devices do, so the stream has the repeats a real scanner sees.

Measured in the same process, pinned to one CPU:
- BlueGate `decode_ad` on the stream (its bounded cache included: that is how it
  runs), and also cold (every payload parsed and decoded from scratch);
- TheengsDecoder `decodeBLE` (PyPI theengsdecoder, the decoder of Theengs Gateway),
  fed the JSON it expects; splitting the AD into that JSON is done beforehand and
  NOT counted (in Theengs Gateway, bleak does it);
- bluetooth-data-tools `parse_advertisement_data_bytes` (Home Assistant's AD splitter,
  compiled, with its own LRU cache): it only splits, it recognises nothing.

Prints the rates and ratios, then one JSON line (collected by bench/run_all.py).
Usage: python bench/decode.py [--minutes 5] [--seed 1]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.adstruct import parse_ad, uuid128_air
from gateway.decoders import (
    DecodeStats,
    classify,
    classify_parsed,
    clear_cache,
    decode_ad,
)

TARGET_RATE = 250_000
TARGET_RATIO_THEENGS = 100


def _mfr(company: int, payload: bytes) -> bytes:
    body = company.to_bytes(2, "little") + payload
    return bytes([len(body) + 1, 0xFF]) + body


def _svc16(uuid: int, payload: bytes) -> bytes:
    body = uuid.to_bytes(2, "little") + payload
    return bytes([len(body) + 1, 0x16]) + body


def _flags(value: int = 0x1A) -> bytes:
    return bytes([2, 1, value])


def _name(text: str) -> bytes:
    raw = text.encode()
    return bytes([len(raw) + 1, 0x09]) + raw


class Device:
    """Advertises `make(rng, epoch)` every 1/rate_hz s; a new epoch every change_s."""

    def __init__(
        self,
        kind: str,
        rate_hz: float,
        change_s: float,
        make: Callable[[random.Random, int], bytes],
        rng: random.Random,
    ) -> None:
        self.kind = kind
        self.period_s = 1.0 / rate_hz
        self.change_s = change_s
        self.make = make
        self.phase = rng.random() * self.period_s
        self.offset = rng.random() * change_s
        self.seed = rng.getrandbits(32)
        self._epoch = -1
        self._payload = b""

    def payload(self, t: float) -> bytes:
        epoch = int((t + self.offset) / self.change_s)
        if epoch != self._epoch:
            self._epoch = epoch
            self._payload = self.make(random.Random(self.seed * 100_003 + epoch), epoch)
        return self._payload


def room(rng: random.Random) -> list[Device]:
    def rb(r: random.Random, n: int) -> bytes:
        return r.randbytes(n)

    bz_ios_uuid = uuid128_air("00004e56-73f5-4bc4-a12f-17d1ad07a667")
    kinds: list[
        tuple[str, int, float, float, Callable[[random.Random, int], bytes]]
    ] = [
        # kind, devices, adverts/s, payload change period s, payload
        (
            "bluezone-android",
            25,
            5.0,
            900.0,
            lambda r, e: (
                _flags(0x02) + _mfr(0x22B5, rb(r, 12)) + bytes.fromhex("0303564E")
            ),
        ),
        (
            "bluezone-ios-fg",
            5,
            5.0,
            1e9,
            lambda r, e: _flags(0x06) + b"\x11\x07" + bz_ios_uuid + _name("Bluezone"),
        ),
        (
            "bluezone-ios-bg",
            10,
            5.0,
            1e9,
            lambda r, e: _flags(0x1A) + _mfr(0x004C, b"\x01\x08" + bytes(15)),
        ),
        (
            "gaen",
            40,
            4.0,
            900.0,
            lambda r, e: (
                _flags() + bytes.fromhex("03036FFD") + _svc16(0xFD6F, rb(r, 20))
            ),
        ),
        (
            "ibeacon",
            30,
            1.0,
            1e9,
            lambda r, e: _flags(0x06) + _mfr(0x004C, b"\x02\x15" + rb(r, 20) + b"\xc5"),
        ),
        (
            "eddystone-uid",
            5,
            1.0,
            1e9,
            lambda r, e: (
                _flags(0x06)
                + bytes.fromhex("0303AAFE")
                + _svc16(0xFEAA, b"\x00\xee" + rb(r, 16) + b"\x00\x00")
            ),
        ),
        (
            "eddystone-tlm",
            5,
            0.5,
            10.0,
            lambda r, e: (
                _flags(0x06)
                + bytes.fromhex("0303AAFE")
                + _svc16(
                    0xFEAA,
                    b"\x20\x00\x0b\xb8\x17\x00"
                    + (e * 10).to_bytes(4, "big")
                    + (e * 100).to_bytes(4, "big"),
                )
            ),
        ),
        (
            "eddystone-eid",
            3,
            1.0,
            512.0,
            lambda r, e: (
                _flags(0x06)
                + bytes.fromhex("0303AAFE")
                + _svc16(0xFEAA, b"\x30\xee" + rb(r, 8))
            ),
        ),
        (
            "eddystone-url",
            2,
            1.0,
            1e9,
            lambda r, e: (
                _flags(0x06)
                + bytes.fromhex("0303AAFE")
                + _svc16(0xFEAA, b"\x10\xee\x03mine-a\x07/g")
            ),
        ),
        (
            "altbeacon",
            5,
            1.0,
            1e9,
            lambda r, e: _mfr(0x0118, b"\xbe\xac" + rb(r, 20) + b"\xc5\x00"),
        ),
        # unrelated traffic
        (
            "apple-nearby",
            40,
            3.0,
            2.0,
            lambda r, e: _flags() + _mfr(0x004C, b"\x10\x05" + rb(r, 5)),
        ),
        (
            "apple-nearby+handoff",
            10,
            3.0,
            5.0,
            lambda r, e: (
                _flags()
                + _mfr(0x004C, b"\x0c\x0e" + rb(r, 14) + b"\x10\x05" + rb(r, 5))
            ),
        ),
        (
            "airpods",
            10,
            4.0,
            1.0,
            lambda r, e: _mfr(0x004C, b"\x07\x19\x01\x0e\x20" + rb(r, 22)),
        ),
        ("find-my", 15, 0.5, 900.0, lambda r, e: _mfr(0x004C, b"\x12\x19" + rb(r, 25))),
        (
            "microsoft-cdp",
            8,
            1.0,
            10.0,
            lambda r, e: _mfr(0x0006, b"\x01\x09\x20\x02" + rb(r, 23)),
        ),
        (
            "samsung",
            10,
            2.0,
            60.0,
            lambda r, e: _flags() + _mfr(0x0075, b"\x42\x04\x01\x80\x66" + rb(r, 8)),
        ),
        (
            "fast-pair",
            5,
            2.0,
            1e9,
            lambda r, e: (
                _flags(0x06) + bytes.fromhex("03032CFE") + _svc16(0xFE2C, rb(r, 3))
            ),
        ),
        (
            "band-or-tag",
            20,
            1.0,
            30.0,
            lambda r, e: (
                _flags(0x06)
                + _svc16(r.choice([0xFE95, 0xFEED, 0x181A]), rb(r, r.randint(6, 14)))
                + _name("band" + str(r.randint(0, 99)))
            ),
        ),
        (
            "vendor-mfr",
            15,
            1.0,
            20.0,
            lambda r, e: (
                _flags(0x06) + _mfr(r.randint(0x0100, 0x0900), rb(r, r.randint(4, 20)))
            ),
        ),
        ("junk", 3, 2.0, 0.5, lambda r, e: rb(r, r.randint(1, 31))),
    ]
    devices = []
    for kind, count, rate, change, make in kinds:
        devices.extend(Device(kind, rate, change, make, rng) for _ in range(count))
    return devices


def stream(minutes: float, seed: int) -> tuple[list[bytes], dict[str, int]]:
    rng = random.Random(seed)
    devices = room(rng)
    events: list[tuple[float, int]] = []
    end = minutes * 60.0
    for i, d in enumerate(devices):
        t = d.phase
        while t < end:
            events.append((t, i))
            t += d.period_s * (0.9 + 0.2 * rng.random())  # advertising jitter
    events.sort()
    mix: dict[str, int] = {}
    out = []
    for t, i in events:
        d = devices[i]
        mix[d.kind] = mix.get(d.kind, 0) + 1
        out.append(d.payload(t))
    return out, mix


def rate(run: Callable[[], Any], n: int, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return n / best


def theengs_inputs(payloads: Sequence[bytes]) -> list[str]:
    out = []
    for i, data in enumerate(payloads):
        ad = parse_ad(data)
        obj: dict[str, Any] = {
            "id": f"AA:BB:CC:DD:{(i >> 8) & 255:02X}:{i & 255:02X}",
            "rssi": -70,
        }
        if ad.local_name is not None:
            obj["name"] = ad.local_name
        if ad.manufacturer_data:
            company, body = next(iter(ad.manufacturer_data.items()))
            obj["manufacturerdata"] = (company.to_bytes(2, "little") + body).hex()
        if ad.service_data16:
            uuid, body = next(iter(ad.service_data16.items()))
            obj["servicedata"] = body.hex()
            obj["servicedatauuid"] = f"0x{uuid:04x}"
        out.append(json.dumps(obj))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--theengs-sample", type=int, default=3_000)
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})

    payloads, mix = stream(args.minutes, args.seed)
    n = len(payloads)
    unique = len(set(payloads))
    print(
        f"mix: {n:,} advertisements over {args.minutes:g} min from {sum(1 for _ in room(random.Random(args.seed)))} devices, "
        f"{unique:,} distinct payloads ({unique / n:.1%})"
    )
    for kind, count in sorted(mix.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:22s} {count:8,}")

    # What BlueGate recognises in the mix (and that nothing is dropped silently).
    stats = DecodeStats()
    clear_cache()
    for data in payloads:
        stats.add(classify(data)[1])
    print("decoded:", json.dumps(stats.snapshot()))

    def ours() -> None:
        clear_cache()  # every repetition starts cold: misses included
        for data in payloads:
            decode_ad(data)

    def ours_cold() -> None:
        for data in payloads:
            classify_parsed(parse_ad(data))

    ours_rate = rate(ours, n)
    cold_rate = rate(ours_cold, n)

    from bluetooth_data_tools import parse_advertisement_data_bytes

    def bdt() -> None:
        for data in payloads:
            parse_advertisement_data_bytes(data)

    bdt_rate = rate(bdt, n)

    from TheengsDecoder import decodeBLE

    sample = payloads[: args.theengs_sample]
    inputs = theengs_inputs(sample)
    recognised = sum(1 for s in inputs if decodeBLE(s) is not None)

    def theengs() -> None:
        for s in inputs:
            decodeBLE(s)

    theengs_rate = rate(theengs, len(inputs), repeat=2)

    print()
    print(
        f"BlueGate decode_ad (cached, as run)   {ours_rate:12,.0f} adv/s   target >= {TARGET_RATE:,}"
    )
    print(f"BlueGate decode, cold (no cache)      {cold_rate:12,.0f} adv/s")
    print(f"bluetooth-data-tools (split only)     {bdt_rate:12,.0f} adv/s")
    print(
        f"TheengsDecoder decodeBLE              {theengs_rate:12,.0f} adv/s   ({recognised:,} of {len(inputs):,} recognised)"
    )
    print(
        f"ratio vs TheengsDecoder               {ours_rate / theengs_rate:12,.1f} x    target >= {TARGET_RATIO_THEENGS}"
    )
    print(f"ratio vs TheengsDecoder, cold         {cold_rate / theengs_rate:12,.1f} x")
    print(f"ratio vs bluetooth-data-tools         {ours_rate / bdt_rate:12,.2f} x")
    result = {
        "rows": [
            {
                "name": "decode adv/s/core (crowded-room mix)",
                "value": f"{ours_rate:,.0f}",
                "target": f">= {TARGET_RATE:,}",
            },
            {
                "name": "decode adv/s/core, cold (no cache)",
                "value": f"{cold_rate:,.0f}",
            },
            {
                "name": "x TheengsDecoder",
                "value": f"{ours_rate / theengs_rate:,.0f}",
                "target": f">= {TARGET_RATIO_THEENGS}",
            },
            {
                "name": "x TheengsDecoder, cold",
                "value": f"{cold_rate / theengs_rate:,.0f}",
            },
            {
                "name": "x bluetooth-data-tools (splitter only)",
                "value": f"{ours_rate / bdt_rate:,.2f}",
            },
        ],
        "adv_per_s": round(ours_rate),
        "cold_adv_per_s": round(cold_rate),
        "theengs_adv_per_s": round(theengs_rate),
        "bdt_adv_per_s": round(bdt_rate),
        "ratio_theengs": round(ours_rate / theengs_rate, 1),
        "ratio_theengs_cold": round(cold_rate / theengs_rate, 1),
        "ratio_bdt": round(ours_rate / bdt_rate, 2),
        "advertisements": n,
        "distinct_fraction": round(unique / n, 4),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
