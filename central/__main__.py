"""`python -m central` is `bluegate-central`."""

from __future__ import annotations

import sys

from central.cli import main

sys.exit(main())
