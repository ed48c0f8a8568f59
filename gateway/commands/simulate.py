"""`bluegate-gateway simulate`: a simulated site's multi-gateway trace and its truth."""

from __future__ import annotations

import argparse
import json
import logging
import os
import time

from gateway.sim.engine import Simulator, with_overrides
from gateway.sim.scenario import load_scenario
from gateway.sim.truth import TruthWriter

_LOGGER = logging.getLogger(__name__)

HELP = "simulate a site: write every gateway's reports (jsonl) and the ground truth"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario",
        default="mine-site",
        help="scenario YAML file, or an embedded one: mine-site (default), small",
    )
    parser.add_argument("--out-dir", required=True, help="folder for trace and truth")
    parser.add_argument("--hours", type=float, help="override the scenario's length")
    parser.add_argument("--seed", type=int, help="override the scenario's seed")


def simulate(
    scenario_path: str,
    out_dir: str,
    *,
    hours: float | None = None,
    seed: int | None = None,
) -> dict[str, object]:
    """Write `trace.jsonl`, the truth files and `site.json`; return the summary."""
    scenario = with_overrides(load_scenario(scenario_path), hours=hours, seed=seed)
    os.makedirs(out_dir, exist_ok=True)
    sim = Simulator(scenario, TruthWriter(out_dir))
    started = time.monotonic()
    count = 0
    per_gateway: dict[str, int] = {}
    with open(os.path.join(out_dir, "trace.jsonl"), "w", encoding="utf-8") as out:
        write = out.write
        for r in sim.reports():
            write(
                f'{{"t": {r.t:.3f}, "addr": "{r.addr}", "addr_type": "random", '
                f'"rssi": {r.rssi}, "data": "{r.data.hex()}", '
                f'"scan_rsp": {"true" if r.scan_rsp else "false"}, '
                f'"gateway": "{r.gateway}", '
                f'"connectable": {"true" if r.connectable else "false"}}}\n'
            )
            count += 1
            per_gateway[r.gateway or ""] = per_gateway.get(r.gateway or "", 0) + 1
    elapsed = time.monotonic() - started
    summary: dict[str, object] = {
        "site": scenario.site,
        "scenario": scenario_path,
        "seed": scenario.seed,
        "start": sim.t_start,
        "end": sim.t_end,
        "people": len(sim.people),
        "reports": count,
        "reports_per_gateway": per_gateway,
        "elapsed_s": round(elapsed, 2),
        "zones": [
            {
                "name": z.name,
                "kind": z.kind,
                "gateways": [g.id for g in z.gateway_specs],
            }
            for z in scenario.zones
        ],
    }
    with open(os.path.join(out_dir, "site.json"), "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=1)
    return summary


def run(args: argparse.Namespace) -> int:
    summary = simulate(args.scenario, args.out_dir, hours=args.hours, seed=args.seed)
    print(
        f"{summary['reports']} reports from {summary['people']} people in "
        f"{summary['elapsed_s']} s -> {os.path.join(args.out_dir, 'trace.jsonl')}"
    )
    return 0
