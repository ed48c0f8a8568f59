"""`bluegate-central query roster|timeline|gatelog|occupancy|fleet ...`."""

from __future__ import annotations

import argparse
import time

from central import query
from central.commands.common import add_config, load, parse_date, parse_time, print_json
from gateway.errors import UsageError

HELP = "ops queries: roster, timeline, gatelog, occupancy, fleet"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="which", required=True)
    roster = sub.add_parser(
        "roster", help="who was in a zone or at a gateway in a window"
    )
    add_config(roster)
    where = roster.add_mutually_exclusive_group(required=True)
    where.add_argument("--zone")
    where.add_argument("--gateway")
    timeline = sub.add_parser("timeline", help="where a device or person was, in order")
    add_config(timeline)
    who = timeline.add_mutually_exclusive_group(required=True)
    who.add_argument("--device", metavar="KEY")
    who.add_argument("--person", metavar="ID")
    for p in (roster, timeline):
        p.add_argument("--from", dest="t_from", required=True, metavar="ISO")
        p.add_argument("--to", dest="t_to", required=True, metavar="ISO")
    gatelog = sub.add_parser(
        "gatelog", help="entries/exits of a site on a day, visitors, headcount now"
    )
    add_config(gatelog)
    gatelog.add_argument("--site", required=True)
    gatelog.add_argument("--day", required=True, metavar="YYYY-MM-DD")
    gatelog.add_argument(
        "--now",
        default=None,
        metavar="ISO",
        help="headcount at this time (default: now)",
    )
    occ = sub.add_parser("occupancy", help="people present per zone per time bucket")
    add_config(occ)
    occ.add_argument("--zone", required=True)
    occ.add_argument("--from", dest="t_from", required=True, metavar="ISO")
    occ.add_argument("--to", dest="t_to", required=True, metavar="ISO")
    occ.add_argument("--bucket-min", type=float, default=15.0)
    fleet = sub.add_parser(
        "fleet", help="gateway status, health, gaps; silent ones flagged"
    )
    add_config(fleet)
    fleet.add_argument("--silent-after-s", type=float, default=600.0)


def _window(args: argparse.Namespace) -> tuple[float, float]:
    t0 = parse_time(args.t_from, "--from")
    t1 = parse_time(args.t_to, "--to")
    if t1 <= t0:
        raise UsageError("--to must be after --from")
    return t0, t1


def run(args: argparse.Namespace) -> int:
    _config, store = load(args)
    now = time.time()
    if args.which == "roster":
        t0, t1 = _window(args)
        out = query.roster(store, t0=t0, t1=t1, zone=args.zone, gateway=args.gateway)
        rows = out["count"]
    elif args.which == "timeline":
        t0, t1 = _window(args)
        out = query.timeline(
            store, t0=t0, t1=t1, device=args.device, person=args.person
        )
        rows = len(out["entries"])
    elif args.which == "gatelog":
        at = parse_time(args.now, "--now") if args.now else now
        out = query.gatelog(
            store, site=args.site, day=parse_date(args.day, "--day"), now=at
        )
        rows = len(out["events"])
    elif args.which == "occupancy":
        t0, t1 = _window(args)
        if args.bucket_min <= 0:
            raise UsageError("--bucket-min must be positive")
        out = query.occupancy(
            store, zone=args.zone, t0=t0, t1=t1, bucket_s=args.bucket_min * 60
        )
        rows = len(out["buckets"])
    else:
        out = query.fleet(store, now=now, silent_after_s=args.silent_after_s)
        rows = len(out["gateways"])
    store.audit(
        now,
        "cli",
        "query " + args.which,
        {
            k: v
            for k, v in vars(args).items()
            if k not in ("config",) and isinstance(v, str | int | float | None)
        },
        rows,
    )
    store.close()
    print_json(out)
    return 0
