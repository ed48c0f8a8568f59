"""`bluegate-central enroll --config CFG --gateway ID --public-key PATH`."""

from __future__ import annotations

import argparse
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from central.commands.common import add_config, load
from gateway.errors import InputError, UsageError

HELP = "register a gateway's Ed25519 batch-signing public key (PEM)"


def configure(parser: argparse.ArgumentParser) -> None:
    add_config(parser)
    parser.add_argument("--gateway", required=True, metavar="ID")
    parser.add_argument("--public-key", required=True, metavar="PATH")


def run(args: argparse.Namespace) -> int:
    gateway = args.gateway
    if not gateway or any(c in gateway for c in "/#+ "):
        raise UsageError("--gateway: a gateway id without '/', '#', '+' or spaces")
    try:
        with open(args.public_key, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise InputError(f"{args.public_key}: cannot read: {exc.strerror}") from None
    try:
        key = load_pem_public_key(data)
    except ValueError:
        raise InputError(f"{args.public_key}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"{args.public_key}: not an Ed25519 key")
    pem = key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    _config, store = load(args)
    store.enroll_gateway(gateway, pem, time.time())
    store.close()
    print(f"enrolled {gateway}")
    return 0
