"""README.md is generated from docs/readme/*.md: it must not drift from them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_readme_is_up_to_date() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "build_readme.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_readme_names_the_two_commands() -> None:
    text = (REPO / "README.md").read_text()
    assert "make demo" in text
    assert "make test" in text
