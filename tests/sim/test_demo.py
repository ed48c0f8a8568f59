"""`make demo ONCE=1` at a small scale: every real process, the printed case."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.integration
def test_demo_once_on_the_small_site(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "central.demo",
            "--once",
            "--scenario",
            "small",
            "--hours",
            "1.5",
            "--dir",
            str(tmp_path / "demo"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, done.stderr + out
    stored = re.search(r'central stored: \{"presence": (\d+)', out)
    assert stored is not None
    assert int(stored.group(1)) > 50
    assert "[5/6] beacon" in out
    contacts = re.search(r"^contacts: (\d+)$", out, re.MULTILINE)
    assert contacts is not None
    assert int(contacts.group(1)) > 0
    truth = re.search(r"has (\d+) of them and (\d+) others", out)
    assert truth is not None
    assert int(truth.group(1)) > 0
    assert int(truth.group(2)) == 0  # no one who was not there
    page = re.search(r"ops page: http://127.0.0.1:(\d+)/", out)
    assert page is not None
    # --once stopped every process it started: central's HTTP port is closed
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(page.group(1))), 1.0).close()
    logs = (tmp_path / "demo" / "logs").iterdir()
    assert {p.name for p in logs} >= {"mosquitto.log", "central.log"}
