"""`bluegate-central beacon`: the beacon registry, exposure export and radio check.

  register --config CFG --beacon ID --zone Z --key-file F [--site S]
      record the beacon, its zone and its base keys (the current one and every
      retired one archived beside the key file by `bluegate-beacon enroll --rekey`)
  list --config CFG [--all]
  export (--config CFG --beacon ID | --key-file F) --from ISO --to ISO
      print Bluezone's F0 push document for the place and window (protocols.md
      1.6); the health authority pushes it and phones that were there match it
  check --config CFG --from ISO --to ISO
      which gateways heard which beacons, wrong-zone and out-of-slot flags, and
      whether each gateway heard its own zone's beacon (radio proven)

The registry keeps a beacon's retired keys as rows named `<beacon>@<fingerprint>`
with their retirement time, so an export of a window before a rekey still uses
the key the beacon advertised then. Base keys are stored in the central database:
protect it like the key files. Nothing here prints or logs a base key; an export
prints daily keys because that is what it is for (and it is audited).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from typing import Any

from beacon import bluezone, keystore
from central.beacon_check import (
    RegisteredBeacon,
    beacon_index,
    check_presence,
    radio_status,
)
from central.beacon_export import KeyPeriod, export_window, f0_payload
from central.commands.common import load, parse_time, print_json, print_table
from central.store import SqlStore
from gateway.errors import BlueGateError, UsageError

HELP = "beacon registry: register, list, export an exposure key (F0), check zones"

ARCHIVE_SEP = "@"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    reg = sub.add_parser("register", help="register a beacon and its keys")
    reg.add_argument("--config", required=True, metavar="CFG")
    reg.add_argument("--beacon", required=True)
    reg.add_argument("--zone", required=True)
    reg.add_argument("--key-file", required=True, metavar="F")
    reg.add_argument("--site", help="default: the zone's site in the reference data")
    reg.add_argument(
        "--slots-per-day", type=int, default=bluezone.DEFAULT_SLOTS_PER_DAY
    )
    lst = sub.add_parser("list", help="list registered beacons (never their keys)")
    lst.add_argument("--config", required=True, metavar="CFG")
    lst.add_argument("--all", action="store_true", help="include retired keys")
    lst.add_argument("--format", choices=("table", "json"), default="table")
    exp = sub.add_parser("export", help="F0 document for a place and time window")
    exp.add_argument("--config", metavar="CFG")
    exp.add_argument("--beacon")
    exp.add_argument("--key-file", metavar="F", help="export straight from a key file")
    exp.add_argument("--slots-per-day", type=int, default=None)
    exp.add_argument("--from", dest="start", required=True, metavar="ISO")
    exp.add_argument("--to", dest="end", required=True, metavar="ISO")
    chk = sub.add_parser("check", help="beacons heard by gateways, zone flags")
    chk.add_argument("--config", required=True, metavar="CFG")
    chk.add_argument("--from", dest="start", required=True, metavar="ISO")
    chk.add_argument("--to", dest="end", required=True, metavar="ISO")
    chk.add_argument("--clock-tolerance-s", type=float, default=120.0)


def scheme_name(slots_per_day: int) -> str:
    if slots_per_day == bluezone.DEFAULT_SLOTS_PER_DAY:
        return "bluezone"
    return f"bluezone:{slots_per_day}"


def slots_of(scheme: str) -> int:
    if scheme == "bluezone":
        return bluezone.DEFAULT_SLOTS_PER_DAY
    if scheme.startswith("bluezone:") and scheme[9:].isdigit():
        return int(scheme[9:])
    raise BlueGateError(f"unsupported beacon scheme in the registry: {scheme}")


def _check_slots(slots: int) -> None:
    if not 1 <= slots <= 1440 or 86_400_000 % slots:
        raise UsageError("--slots-per-day: must divide a day into whole milliseconds")


def _period(key: keystore.BaseKey) -> KeyPeriod:
    return KeyPeriod(key.base_key, key.created, key.retired)


def _site_of_zone(store: SqlStore, zone: str) -> str | None:
    for row in store.list_table("zones"):
        if row["zone"] == zone and row.get("site"):
            return str(row["site"])
    for row in store.zones_seen():
        if row["zone"] == zone and row.get("site"):
            return str(row["site"])
    return None


def registered(store: SqlStore, include_retired: bool = True) -> list[RegisteredBeacon]:
    """Registry rows grouped per beacon, each with every key it used."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in store.list_beacons(include_retired=include_retired):
        if not str(row["scheme"]).startswith("bluezone") or not row["base_key"]:
            continue
        name = str(row["beacon"]).split(ARCHIVE_SEP, 1)[0]
        groups.setdefault(name, []).append(row)
    out: list[RegisteredBeacon] = []
    for name, rows in sorted(groups.items()):
        current = next((r for r in rows if r["beacon"] == name), rows[-1])
        keys = tuple(
            KeyPeriod(
                bytes.fromhex(r["base_key"]),
                bluezone.date_of(float(r["created"])),
                None if r["retired"] is None else float(r["retired"]),
            )
            for r in rows
        )
        out.append(
            RegisteredBeacon(
                name,
                current["site"],
                current["zone"],
                keys,
                slots_of(current["scheme"]),
            )
        )
    return out


def _register(args: argparse.Namespace) -> int:
    _check_slots(args.slots_per_day)
    if ARCHIVE_SEP in args.beacon:
        raise UsageError(f"--beacon: must not contain {ARCHIVE_SEP!r}")
    history = keystore.load_history(args.key_file)
    _, store = load(args)
    try:
        site = args.site or _site_of_zone(store, args.zone)
        if site is None:
            raise UsageError(
                f"zone {args.zone} is not in the reference data: give --site"
            )
        now = time.time()
        current = history[-1]
        previous = store.get_beacon(args.beacon)
        known = {k.base_key.hex() for k in history}
        scheme = scheme_name(args.slots_per_day)
        if (
            previous is not None
            and previous["base_key"]
            and previous["base_key"] not in known
        ):
            # Rekeyed with a key file that has no archive here: keep the old key,
            # valid until now (an upper bound of when the beacon switched).
            old = bytes.fromhex(previous["base_key"])
            name = f"{args.beacon}{ARCHIVE_SEP}{keystore.fingerprint(old)}"
            store.add_beacon(
                name,
                previous["site"],
                previous["zone"],
                scheme=previous["scheme"],
                key_file=previous["key_file"],
                base_key=previous["base_key"],
                created=float(previous["created"]),
            )
            store.retire_beacon(name, now)
        for key in history[:-1]:
            name = f"{args.beacon}{ARCHIVE_SEP}{key.fingerprint}"
            store.add_beacon(
                name,
                site,
                args.zone,
                scheme=scheme,
                key_file=None,
                base_key=key.base_key.hex(),
                created=key.valid_from,
            )
            store.retire_beacon(name, float(key.retired or now))
        store.add_beacon(
            args.beacon,
            site,
            args.zone,
            scheme=scheme,
            key_file=args.key_file,
            base_key=current.base_key.hex(),
            created=current.valid_from,
        )
        store.audit(
            now,
            getpass.getuser(),
            "beacon-register",
            {"beacon": args.beacon, "zone": args.zone, "keys": len(history)},
            1,
        )
    finally:
        store.close()
    print(
        f"registered {args.beacon} ({site}/{args.zone}): key {current.fingerprint}"
        f" created {current.created.isoformat()}, {len(history) - 1} retired key(s)"
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    _, store = load(args)
    try:
        rows = store.list_beacons(include_retired=args.all)
    finally:
        store.close()
    shown = [
        {
            "beacon": r["beacon"],
            "site": r["site"],
            "zone": r["zone"],
            "scheme": r["scheme"],
            "key": keystore.fingerprint(bytes.fromhex(r["base_key"]))
            if r["base_key"]
            else None,
            "from": keystore.iso_utc(float(r["created"])),
            "retired": None
            if r["retired"] is None
            else keystore.iso_utc(float(r["retired"])),
        }
        for r in rows
    ]
    if args.format == "json":
        print_json(shown)
    else:
        print_table(
            shown, ["beacon", "site", "zone", "scheme", "key", "from", "retired"]
        )
    return 0


def _export(args: argparse.Namespace) -> int:
    start = parse_time(args.start, "--from")
    end = parse_time(args.end, "--to")
    if end <= start:
        raise UsageError("--to must be after --from")
    store: SqlStore | None = None
    if args.key_file:
        keys = [_period(k) for k in keystore.load_history(args.key_file)]
        slots = args.slots_per_day or bluezone.DEFAULT_SLOTS_PER_DAY
        label = args.key_file
    elif args.config and args.beacon:
        _, store = load(args)
        found = [b for b in registered(store) if b.beacon == args.beacon]
        if not found:
            store.close()
            raise UsageError(f"--beacon: {args.beacon} is not registered")
        keys = list(found[0].keys)
        slots = args.slots_per_day or found[0].slots_per_day
        label = args.beacon
    else:
        raise UsageError("give --config with --beacon, or --key-file")
    _check_slots(slots)
    entries = export_window(keys, start, end, slots)
    if store is not None:
        try:
            store.audit(
                time.time(),
                getpass.getuser(),
                "beacon-export",
                {"beacon": label, "from": start, "to": end},
                len(entries),
            )
        finally:
            store.close()
    if not entries:
        raise BlueGateError(f"no key of {label} covers that window")
    print(json.dumps(f0_payload(entries), separators=(",", ":")))
    first = entries[0].time_start
    print(
        f"note: phones match from {keystore.iso_utc(first)} (a daily key starts at UTC "
        "midnight) to the window's end; these daily keys reveal every later ID of the "
        "beacon: rekey it now (bluegate-beacon enroll --rekey) and re-register it",
        file=sys.stderr,
    )
    return 0


def _check(args: argparse.Namespace) -> int:
    start = parse_time(args.start, "--from")
    end = parse_time(args.end, "--to")
    if end <= start:
        raise UsageError("--to must be after --from")
    _, store = load(args)
    try:
        beacons = registered(store)
        index = beacon_index(beacons, start, end)
        records = store.presence_by_keys(sorted(index), start, end) if index else []
        gateway_zones = {
            r["gateway"]: r["zone"]
            for r in store.zones_seen()
            if r["last"] is None or float(r["last"]) >= start
        }
        store.audit(
            time.time(),
            getpass.getuser(),
            "beacon-check",
            {"from": start, "to": end},
            len(records),
        )
    finally:
        store.close()
    heard = check_presence(index, records, args.clock_tolerance_s)
    own_zones = {b.zone for b in beacons}
    status = radio_status(
        heard, {gw: z for gw, z in gateway_zones.items() if z in own_zones}
    )
    print_json(
        {
            "heard": [h.to_json() for h in heard],
            "wrong_zone": [h.to_json() for h in heard if h.wrong_zone],
            "out_of_slot": [h.to_json() for h in heard if h.out_of_slot],
            "gateways": status,
        }
    )
    return 0


def run(args: argparse.Namespace) -> int:
    action = {
        "register": _register,
        "list": _list,
        "export": _export,
        "check": _check,
    }[args.action]
    return action(args)
