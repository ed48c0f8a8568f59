"""`bluegate-gateway enroll --config CFG [--force]` (design.md, Commands).

Creates the unit's batch-signing key, TLS key and certificate signing request in
`identity.dir`, keeping whatever already exists unless `--force`; prints the paths
of the public key and the request, and a summary for the technician.
"""

from __future__ import annotations

import argparse

from gateway import keys
from gateway.config import load_gateway_config

HELP = "create the unit's signing key, TLS key and certificate request"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="CFG", help="unit YAML")
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace existing keys (central must enroll the new public key and "
        "the CA sign the new request)",
    )


def run(args: argparse.Namespace) -> int:
    cfg = load_gateway_config(args.config)
    result = keys.enroll(cfg.identity.dir, cfg.gateway, cfg.site, force=args.force)
    print(result.signing_pub)
    print(result.csr)
    state = {name: "new" for name in result.created}
    state.update({name: "kept" for name in result.kept})
    print(f"# gateway {cfg.gateway} at site {cfg.site}")
    print(f"#   signing key  {state[keys.SIGNING_KEY]:4}  {result.signing_fingerprint}")
    print(f"#   TLS key      {state[keys.TLS_KEY]:4}  {result.tls_fingerprint}")
    print(f"#   request      {state[keys.TLS_CSR]:4}  CN={cfg.gateway} OU={cfg.site}")
    print("# next steps:")
    print(
        f"#   central: bluegate-central enroll --config CENTRAL.yaml "
        f"--gateway {cfg.gateway} --public-key {result.signing_pub}"
    )
    print(
        f"#   ops CA:  bluegate-central ca sign --dir CA_DIR --csr {result.csr} "
        f"--out {cfg.gateway}.pem"
    )
    print(
        f"#   unit:    copy the signed certificate here; in {args.config} set "
        f"mqtt.cert to it, mqtt.key: {result.tls_key}, mqtt.ca: the CA's ca.pem"
    )
    return 0
