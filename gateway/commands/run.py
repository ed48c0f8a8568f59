"""`bluegate-gateway run --config CFG`: the daemon (design.md, Commands).

`--check-config` validates the file, prints the effective configuration (defaults
filled in, paths resolved, secrets shown only as the paths they live at) and exits
0, or 78 with one line naming the file, line and key: what `ExecStartPre=` and a
technician run before a restart.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import yaml

from gateway import yamlconf
from gateway.config import GatewayConfig, load_gateway_config

HELP = "run the gateway daemon (under systemd: Type=notify, watchdog, SIGHUP reload)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="CFG", help="unit YAML file")
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="validate CFG, print the effective configuration and exit (78 if invalid)",
    )
    parser.add_argument(
        "--format",
        choices=("yaml", "json"),
        default="yaml",
        help="output format of --check-config (default yaml)",
    )


def missing_files(cfg: GatewayConfig) -> list[str]:
    """Referenced files that do not exist yet (TLS material before `enroll`, ...)."""
    wanted = [
        ("mqtt.ca", cfg.mqtt.ca),
        ("mqtt.cert", cfg.mqtt.cert),
        ("mqtt.key", cfg.mqtt.key),
        ("mqtt.password_file", cfg.mqtt.password_file),
    ]
    wanted += [
        (f"site_beacons[{i}].base_key_file", b.base_key_file)
        for i, b in enumerate(cfg.site_beacons)
    ]
    return [
        f"{key}: {path}" for key, path in wanted if path and not os.path.exists(path)
    ]


def render(cfg: GatewayConfig, fmt: str) -> str:
    plain = yamlconf.redacted(cfg)
    if fmt == "json":
        return json.dumps(plain, indent=2, sort_keys=False) + "\n"
    return str(yaml.safe_dump(plain, sort_keys=False, default_flow_style=False))


def run(args: argparse.Namespace) -> int:
    cfg = load_gateway_config(args.config)  # ConfigError -> one line, exit 78
    if args.check_config:
        sys.stdout.write(render(cfg, args.format))
        sys.stdout.flush()
        for note in missing_files(cfg):
            print(f"note: referenced file does not exist yet: {note}", file=sys.stderr)
        return 0
    from gateway import app

    return app.run_daemon(args.config, cfg, verbose=int(args.verbose or 0))
