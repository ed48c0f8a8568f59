"""Shared helpers of the beacon tests: the real CLIs as subprocesses, key files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def cli(
    package: str, *args: str, timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", package, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout_s,
    )


def write_key(path: Path, base_key: bytes, created: str) -> Path:
    path.write_text(json.dumps({"base_key": base_key.hex(), "created": created}))
    path.chmod(0o600)
    return path


def beacon_yaml(
    tmp: Path, key_file: Path, extra: str = "", scheme: str = "bluezone"
) -> Path:
    cfg = tmp / "beacon.yaml"
    cfg.write_text(
        "site: mine-a\n"
        "beacon: room-a-beacon\n"
        "zone: {name: room-a, kind: shift_room}\n"
        f"scheme: {scheme}\n"
        f"key_file: {key_file}\n" + extra
    )
    return cfg
