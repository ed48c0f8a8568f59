"""Schemathesis (PyPI `schemathesis`, its `st run` CLI) against the live server and its
own OpenAPI document: valid and invalid input for every operation, no server error,
every status and content type documented.

Bounded so it stays a test, not a soak: fuzzing phase, 8 examples per operation in
each of the positive and negative modes, fixed seed. (The slower `coverage` phase,
boundary values of every constraint, is run by hand: `st run ... --phases coverage`;
see docs/readme/65-ops.md.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.conftest import Live

pytestmark = pytest.mark.integration

ST = shutil.which("st", path=os.path.dirname(sys.executable)) or "st"


def test_schemathesis_finds_no_server_error(
    live: Live, tmp_path: Path, artifacts_dir: Path
):
    # Give the case routes something to find: case 1 with contacts and locations.
    status, case, _ = live.call(
        "POST",
        "/api/v1/cases",
        {
            "subject_kind": "person",
            "subject": "W001",
            "onset_date": "2026-03-02",
            "isolation": "2026-03-02",
        },
    )
    assert status == 201
    cmd = [
        ST,
        "run",
        live.url + "/api/v1/openapi.json",
        "-H",
        "Authorization: Bearer " + live.admin,
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance",
        "--phases",
        "examples,fuzzing",
        "--mode",
        "all",
        "--max-examples",
        "8",
        "--seed",
        "20260302",
        "--workers",
        "1",
        "--no-shrink",
        "--generation-database",
        "none",
        "--request-timeout",
        "20",
        "--no-color",
    ]
    result = subprocess.run(
        cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    report = result.stdout + result.stderr
    (artifacts_dir / "schemathesis.txt").write_text(
        report.replace(live.admin, "[token]")
    )
    assert result.returncode == 0, report[-4000:]
    assert "Tested: 35" in report or "Tested:" in report
    assert "passed" in report
    # The server is still answering and the token still works.
    assert live.call("GET", "/api/v1/me", token="admin")[0] == 200
