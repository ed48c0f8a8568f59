"""Site simulator: a day of the embedded mine site, generation rate and memory.

    .venv/bin/python bench/simulate.py [--hours 24]

Runs the simulator (gateway/sim) on `mine-site` and writes every report as a `jsonl`
trace line to /dev/null, as `bluegate-gateway simulate` does to its file. Two runs
in separate processes (6 h and 24 h) show whether peak memory (max RSS) grows with
the length of the day. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.commands.simulate import trace_line
from gateway.sim.engine import Simulator, with_overrides
from gateway.sim.scenario import load_scenario
from gateway.sim.truth import TruthWriter


def one(hours: float) -> dict[str, float]:
    scenario = with_overrides(load_scenario("mine-site"), hours=hours, seed=None)
    started = time.process_time()
    sim = Simulator(scenario, TruthWriter(None))
    reports = 0
    with open(os.devnull, "w", encoding="utf-8") as sink:
        for report in sim.reports():
            sink.write(trace_line(report))
            reports += 1
    cpu_s = time.process_time() - started
    return {
        "hours": hours,
        "reports": reports,
        "cpu_s": cpu_s,
        "reports_per_s": reports / cpu_s,
        "people": len(sim.people),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--one", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one)))
        return 0
    results = []
    for hours in (args.hours / 4, args.hours):
        proc = subprocess.run(
            [sys.executable, __file__, "--one", str(hours)],
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"{hours:g} h: {results[-1]}", flush=True)
    small, day = results
    print(
        json.dumps(
            {
                "rows": [
                    {
                        "name": f"simulator: {day['hours']:g} h of mine-site ({day['people']} people), CPU s",
                        "value": f"{day['cpu_s']:.0f}",
                        "target": "well under 120",
                    },
                    {
                        "name": "simulator: reports generated per CPU second",
                        "value": f"{day['reports_per_s']:,.0f}",
                    },
                    {
                        "name": f"simulator: peak RSS MB, {small['hours']:g} h / {day['hours']:g} h",
                        "value": f"{small['peak_rss_mb']:.0f} / {day['peak_rss_mb']:.0f}",
                        "target": "flat",
                    },
                ],
                "cpu_s": day["cpu_s"],
                "reports": day["reports"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
