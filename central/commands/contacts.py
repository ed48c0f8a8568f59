"""`bluegate-central contacts`: the contacts of a case (design.md)."""

from __future__ import annotations

import argparse
import csv
import sys
import time

from central import contacts as contacts_mod
from central.commands.common import (
    add_config,
    load,
    parse_date,
    parse_time,
    print_json,
    print_table,
)
from central.rules import Rule, Seed, iso
from gateway.errors import UsageError

HELP = "the contacts of a case (F1, and F2 with --depth 2)"


def configure(parser: argparse.ArgumentParser) -> None:
    add_config(parser)
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--device", metavar="KEY", help="a device key (bluezone:..., ibeacon:..., ...)"
    )
    who.add_argument(
        "--person", metavar="ID", help="a person, through their tag assignments"
    )
    who.add_argument(
        "--bluezone-daily-key",
        metavar="HEX",
        help="a daily key disclosed by the case (64 hex; '-' reads it from stdin, "
        "so it stays out of the process list and shell history)",
    )
    parser.add_argument(
        "--key-date", metavar="DATE", help="the UTC day of --bluezone-daily-key"
    )
    parser.add_argument("--from", dest="t_from", required=True, metavar="ISO")
    parser.add_argument("--to", dest="t_to", required=True, metavar="ISO")
    parser.add_argument("--min-minutes", type=float, default=None, metavar="N")
    parser.add_argument(
        "--window-h",
        type=float,
        default=None,
        metavar="H",
        help="the cumulative window (24)",
    )
    parser.add_argument(
        "--near-bands",
        default=None,
        metavar="LIST",
        help="bands that count as near in open zones (immediate,near)",
    )
    parser.add_argument(
        "--clock-error-s",
        type=float,
        default=None,
        metavar="S",
        help="gateway clock error tolerated for Bluezone slots",
    )
    parser.add_argument("--depth", type=int, choices=(1, 2), default=1)
    parser.add_argument("--format", choices=("json", "csv", "table"), default="json")
    parser.add_argument(
        "--save",
        metavar="LABEL",
        help="keep the answer as a case extract (kept past retention)",
    )


def rule_from(args: argparse.Namespace, base: Rule) -> Rule:
    near = (
        tuple(b.strip() for b in args.near_bands.split(","))
        if args.near_bands
        else base.near_bands
    )
    if not near or any(b not in ("immediate", "near", "far") for b in near):
        raise UsageError("--near-bands: a comma list of immediate, near, far")
    if args.min_minutes is not None and args.min_minutes < 0:
        raise UsageError("--min-minutes must not be negative")
    return Rule(
        min_minutes=base.min_minutes if args.min_minutes is None else args.min_minutes,
        window_h=base.window_h if args.window_h is None else args.window_h,
        near_bands=near,
        clock_error_s=base.clock_error_s
        if args.clock_error_s is None
        else args.clock_error_s,
        slots_per_day=base.slots_per_day,
        merge_gap_s=base.merge_gap_s,
    )


def run(args: argparse.Namespace) -> int:
    config, store = load(args)
    r = config.rules
    rule = rule_from(
        args,
        Rule(
            r.min_minutes,
            r.window_h,
            tuple(r.near_bands),
            r.clock_error_s,
            r.slots_per_day,
            r.merge_gap_s,
        ),
    )
    t0 = parse_time(args.t_from, "--from")
    t1 = parse_time(args.t_to, "--to")
    if t1 <= t0:
        raise UsageError("--to must be after --from")
    if args.bluezone_daily_key is not None:
        if args.key_date is None:
            raise UsageError("--bluezone-daily-key needs --key-date")
        if args.bluezone_daily_key == "-":
            args.bluezone_daily_key = sys.stdin.readline().strip()
        try:
            seed = contacts_mod.bluezone_seed(
                args.bluezone_daily_key,
                parse_date(args.key_date, "--key-date"),
                t0,
                t1,
                rule,
            )
        except ValueError as exc:
            raise UsageError(f"--bluezone-daily-key: {exc}") from None
        args.bluezone_daily_key = None  # do not keep the key around longer than needed
    elif args.device is not None:
        seed = Seed("device", args.device.strip().lower())
    else:
        seed = Seed("person", args.person)
    answer = contacts_mod.contacts(store, seed, t0, t1, rule, depth=args.depth)
    # An extension of design.md's answer: where the case's gateways lost data.
    answer["warnings"] = contacts_mod.coverage_warnings(store, answer, t0, t1)
    now = time.time()
    store.audit(now, "cli", "contacts", answer["case"], len(answer["contacts"]))
    if args.save:
        extract = dict(answer)
        if seed.kind == "bluezone":
            # Keep what the key was expanded to (the IDs and their slots), never the
            # key: the extract can be re-checked later without revealing later days.
            extract["case"] = {
                **answer["case"],
                "derived_slots": [[k, iso(a), iso(b)] for k, a, b in seed.slots],
            }
        answer["case"]["extract_id"] = store.save_case_extract(args.save, extract, now)
    store.close()
    if args.format == "json":
        print_json(answer)
    elif args.format == "csv":
        csv.writer(sys.stdout, lineterminator="\n").writerows(
            contacts_mod.csv_rows(answer)
        )
    else:
        print(f"case: {answer['case']}")
        print(f"exposures: {len(answer['exposures'])}")
        print_table(answer["exposures"], ["zone", "gateway", "from", "to"])
        for warning in answer["warnings"]:
            print(f"warning: {warning}")
        print(f"contacts: {len(answer['contacts'])}")
        print_table(
            answer["contacts"],
            ["level", "class", "person", "key", "zone", "first", "last", "minutes"],
        )
    return 0
