"""Fixture support: point bluepy at `fake_bluepy_helper.py` with a scenario."""

from __future__ import annotations

import json
import sys
from pathlib import Path

FAKE = Path(__file__).with_name("fake_bluepy_helper.py")

# Real frames (protocols.md 1.3, 1.4, 2.1; GAEN vector i=0 of the official set).
BLUEZONE_ANDROID = "0201020FFFB522B9A665D754FE65E665D76A450303564E"
BLUEZONE_IOS_FG = "020106" + "1107" + "67A607ADD1172FA1C44BF573564E0000"
BLUEZONE_IOS_NAME = "0909426C75657A6F6E65"  # SCAN_RSP: Complete Local Name "Bluezone"
GAEN = "02011A03036FFD17166FFD" + "8BE6CD371C5C891604BFBE49DF845096" + "72033874"
BLUEZONE_ID = "B9A665D754FE65E665D76A45"


class FakeAdapter:
    """Writes scenarios and reads the fake helper's event log."""

    def __init__(self, tmp_path: Path, monkeypatch) -> None:
        from bluepy import btle

        self.dir = tmp_path / "fake-adapter"
        self.dir.mkdir()
        self.scenario_path = self.dir / "scenario.json"
        self.log_path = self.dir / "helper.log"
        self.exe = self.dir / "bluepy-helper"
        self.exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
        self.exe.chmod(0o755)
        monkeypatch.setenv("BLUEGATE_FAKE_HELPER", str(self.scenario_path))
        monkeypatch.setattr(btle, "helperExe", str(self.exe))
        self.set()

    def set(self, **scenario) -> FakeAdapter:
        scenario.setdefault("log", str(self.log_path))
        scenario["state_dir"] = str(self.dir)
        self.scenario_path.write_text(json.dumps(scenario))
        (self.dir / "launches").unlink(missing_ok=True)
        return self

    def events(self) -> list[tuple[float, int, int, str]]:
        if not self.log_path.exists():
            return []
        out = []
        for line in self.log_path.read_text().splitlines():
            mono, pid, launch, event = line.split(" ", 3)
            out.append((float(mono), int(pid), int(launch), event))
        return out

    def launches(self) -> int:
        path = self.dir / "launches"
        return int(path.read_text()) if path.exists() else 0
