"""Run every benchmark in bench/ and record its figures for the README (`make bench`).

Each benchmark prints, as its last line of output, one JSON object. Its numeric
fields become rows of the README's figures table; a benchmark may instead give
`{"rows": [{"name": ..., "value": ..., "target": ...}, ...]}` to choose them itself.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCHES = ["decode", "pipeline", "outbox", "central", "simulate"]


def rows_of(result: dict[str, Any]) -> list[dict[str, Any]]:
    if isinstance(result.get("rows"), list):
        return list(result["rows"])
    rows = []
    for key, value in result.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            rows.append(
                {
                    "name": key,
                    "value": f"{value:,.4g}"
                    if isinstance(value, float)
                    else f"{value:,}",
                }
            )
    return rows


def run_bench(name: str, extra: list[str]) -> dict[str, Any]:
    script = REPO / "bench" / f"{name}.py"
    command = [sys.executable, str(script), *extra]
    print(f"== {script.relative_to(REPO)}", flush=True)
    proc = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, check=False
    )
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    last = [line for line in proc.stdout.splitlines() if line.strip().startswith("{")]
    if proc.returncode != 0 or not last:
        return {
            "command": f"python bench/{name}.py",
            "rows": [{"name": "failed", "value": f"exit {proc.returncode}"}],
        }
    result = json.loads(last[-1])
    return {"command": f"python bench/{name}.py", "rows": rows_of(result)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--update-readme", metavar="README", help="rebuild this README with the figures"
    )
    parser.add_argument(
        "--only", nargs="*", default=None, help="benchmarks to run (default: all)"
    )
    args = parser.parse_args()
    names = args.only or [n for n in BENCHES if (REPO / "bench" / f"{n}.py").exists()]
    path = REPO / "bench" / "results.json"
    previous = json.loads(path.read_text()) if args.only and path.exists() else {}
    fresh = {f"python bench/{n}.py": run_bench(n, []) for n in names}
    # With --only, the other benchmarks keep their last recorded figures.
    kept = [b for b in previous.get("benches", []) if b["command"] not in fresh]
    results = {
        "date": dt.datetime.now(dt.UTC).date().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "benches": sorted(
            [*kept, *fresh.values()],
            key=lambda b: BENCHES.index(b["command"].split("/")[-1][:-3]),
        ),
    }
    path.write_text(json.dumps(results, indent=2) + "\n")
    if args.update_readme:
        subprocess.run(
            [sys.executable, str(REPO / "tools" / "build_readme.py")], check=True
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
