"""`bluegate-beacon frame --config CFG --at ISO_TIME`: the AD payload (hex) the beacon
advertises at that time (design.md, Commands).

Prints the scheme's own layout (Bluezone's Android layout for `bluezone`); with
`--layout bluez` the same records in the order BlueZ serialises them on the Pi.
Paste the output into `bluegate-gateway decode` to see the key a gateway hears.
"""

from __future__ import annotations

import argparse
import datetime as dt

from beacon import frames, keystore, plan
from beacon.config import load_beacon_config
from gateway.errors import UsageError

HELP = "print the advertising payload (hex) the beacon sends at a given time"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="CFG")
    parser.add_argument("--at", required=True, metavar="ISO_TIME")
    parser.add_argument(
        "--layout",
        choices=("android", "bluez"),
        default="android",
        help="bluezone record order: Android's (default) or BlueZ's on-air order",
    )
    parser.add_argument(
        "--key", action="store_true", help="also print the device key a gateway decodes"
    )


def parse_time(text: str) -> float:
    """ISO 8601 time -> Unix seconds; a time without offset is taken as UTC."""
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--at: not an ISO time: {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def run(args: argparse.Namespace) -> int:
    cfg = load_beacon_config(args.config)
    t = parse_time(args.at)
    if cfg.scheme == "bluezone":
        assert cfg.key_file is not None  # BeaconConfig.check
        key = keystore.load_key(cfg.key_file)
        try:
            advert = plan.advert_at(cfg, t, key.base_key, key.created)
        except ValueError as exc:
            raise UsageError(f"--at: {exc}") from None
    else:
        advert = plan.advert_at(cfg, t)
    ad = advert.ad
    if args.layout == "bluez" and cfg.scheme == "bluezone":
        ad = frames.bluezone_bluez(advert.manufacturer_data[frames.BLUEZONE_COMPANY])
    print(ad.hex())
    if args.key:
        print(advert.key)
    return 0
