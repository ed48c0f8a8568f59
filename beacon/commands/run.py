"""`bluegate-beacon run --config CFG`: the beacon daemon (design.md, Commands).

`--check-config` validates the file and prints the effective configuration (exit 0,
or 78 with one line naming file, line and key), as `bluegate-gateway run` does.
`--bus-address` points the advertiser at another D-Bus than the system bus (tests,
a bluetoothd in a container).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import yaml

from beacon.config import load_beacon_config
from gateway import yamlconf

HELP = "run the beacon daemon (BlueZ advertising; under systemd: notify, watchdog)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="CFG", help="unit YAML file")
    parser.add_argument("--check-config", action="store_true")
    parser.add_argument("--format", choices=("yaml", "json"), default="yaml")
    parser.add_argument("--bus-address", help="D-Bus address (default: the system bus)")


def run(args: argparse.Namespace) -> int:
    cfg = load_beacon_config(args.config)
    if args.check_config:
        plain = yamlconf.redacted(cfg)
        if args.format == "json":
            sys.stdout.write(json.dumps(plain, indent=2) + "\n")
        else:
            sys.stdout.write(yaml.safe_dump(plain, sort_keys=False))
        if cfg.key_file is not None and not os.path.exists(cfg.key_file):
            print(
                f"note: key_file does not exist yet: {cfg.key_file} "
                "(bluegate-beacon enroll --config ...)",
                file=sys.stderr,
            )
        return 0
    from beacon import app

    return app.run_daemon(args.config, cfg, bus_address=args.bus_address)
