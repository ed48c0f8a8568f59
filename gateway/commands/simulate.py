"""`bluegate-gateway simulate`: a simulated site's multi-gateway trace and its truth."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import time
from typing import TextIO

from gateway.models import Report
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
    parser.add_argument(
        "--split",
        action="store_true",
        help="one trace-<gateway>.jsonl per gateway instead of trace.jsonl",
    )


def trace_line(r: Report) -> str:
    return (
        f'{{"t": {r.t:.3f}, "addr": "{r.addr}", "addr_type": "random", '
        f'"rssi": {r.rssi}, "data": "{r.data.hex()}", '
        f'"scan_rsp": {"true" if r.scan_rsp else "false"}, '
        f'"gateway": "{r.gateway}", '
        f'"connectable": {"true" if r.connectable else "false"}}}\n'
    )


def write_traces(
    sim: Simulator, out_dir: str, *, split: bool = False
) -> dict[str, int]:
    """Write the simulator's reports as `jsonl` traces; return counts per gateway."""
    per_gateway: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        handles: dict[str, TextIO] = {}
        if not split:
            single = stack.enter_context(
                open(os.path.join(out_dir, "trace.jsonl"), "w", encoding="utf-8")
            )
        for r in sim.reports():
            gw = r.gateway or ""
            if split:
                handle = handles.get(gw)
                if handle is None:
                    handle = stack.enter_context(
                        open(
                            os.path.join(out_dir, f"trace-{gw}.jsonl"),
                            "w",
                            encoding="utf-8",
                        )
                    )
                    handles[gw] = handle
                handle.write(trace_line(r))
            else:
                single.write(trace_line(r))
            per_gateway[gw] = per_gateway.get(gw, 0) + 1
    return per_gateway


def simulate(
    scenario_path: str,
    out_dir: str,
    *,
    hours: float | None = None,
    seed: int | None = None,
    split: bool = False,
) -> dict[str, object]:
    """Write `trace.jsonl`, the truth files and `site.json`; return the summary."""
    scenario = with_overrides(load_scenario(scenario_path), hours=hours, seed=seed)
    os.makedirs(out_dir, exist_ok=True)
    sim = Simulator(scenario, TruthWriter(out_dir))
    started = time.monotonic()
    per_gateway = write_traces(sim, out_dir, split=split)
    count = sum(per_gateway.values())
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
    summary = simulate(
        args.scenario, args.out_dir, hours=args.hours, seed=args.seed, split=args.split
    )
    print(
        f"{summary['reports']} reports from {summary['people']} people in "
        f"{summary['elapsed_s']} s -> {args.out_dir}"
    )
    return 0
