"""`python -m beacon` is `bluegate-beacon`."""

from __future__ import annotations

import sys

from beacon.cli import main

sys.exit(main())
