"""`bluegate-beacon enroll --config CFG [--rekey]`: create the beacon's base key.

Enrolment writes 32 random bytes with the day's date to `key_file` (0600, atomic)
and prints a summary for the technician: never the key, only its fingerprint and
the command that registers it at central.

`--rekey` after a disclosure (an exported daily key reveals every later day): the
current key is archived with its validity end and a fresh one replaces it; the
running beacon switches within a minute (at the latest at its next slot boundary).
"""

from __future__ import annotations

import argparse
import time

from beacon import bluezone, keystore
from beacon.config import load_beacon_config
from gateway.errors import UsageError

HELP = "create the beacon's base key (or --rekey after a disclosure)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="CFG")
    parser.add_argument(
        "--rekey",
        action="store_true",
        help="retire the current key (archived for past exports) and make a new one",
    )
    parser.add_argument("--reason", help="why the key is retired (kept in the archive)")


def run(args: argparse.Namespace) -> int:
    cfg = load_beacon_config(args.config)
    if cfg.scheme != "bluezone" or cfg.key_file is None:
        raise UsageError(f"scheme {cfg.scheme} has a static identity and needs no key")
    now = time.time()
    if args.rekey:
        archived, key = keystore.rekey(
            cfg.key_file, now, cfg.slots_per_day, reason=args.reason
        )
        print(f"retired key  {archived.fingerprint}")
        print(
            f"  valid      {archived.created.isoformat()} .. "
            f"{keystore.iso_utc(archived.retired or now)}"
        )
        print(f"  archived   {keystore.archive_dir(cfg.key_file)}/")
    else:
        key = keystore.enroll(cfg.key_file, bluezone.date_of(now))
    print(
        f"beacon       {cfg.site}/{cfg.beacon} zone {cfg.zone.name} ({cfg.zone.kind})"
    )
    print(f"key file     {cfg.key_file} (0600)")
    print(f"key          {key.fingerprint} created {key.created.isoformat()}")
    print(
        "register at central: bluegate-central beacon register --config CENTRAL.yaml "
        f"--beacon {cfg.beacon} --zone {cfg.zone.name} --key-file {cfg.key_file}"
    )
    if args.rekey:
        print("the running beacon switches to the new key at its next tick (<= 1 slot)")
    return 0
