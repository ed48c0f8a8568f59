"""`bluegate-central token create|list|revoke`: API tokens, stored only as SHA-256.

A token is 32 random bytes (256 bits, `secrets`), so a plain SHA-256 is enough to
store it: there is nothing to brute-force as there is for a password."""

from __future__ import annotations

import argparse
import hashlib
import secrets
import time

from central.commands.common import add_config, load, print_json
from gateway.errors import BlueGateError

HELP = "create, list or revoke HTTP API tokens"
PREFIX = "bgt_"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="print a new token (shown once)")
    add_config(create)
    create.add_argument("--role", required=True, choices=("ops", "admin"))
    create.add_argument("--label", default=None)
    lst = sub.add_parser(
        "list", help="tokens with role, label, created, revoked (never the token)"
    )
    add_config(lst)
    revoke = sub.add_parser("revoke", help="revoke a token by id")
    add_config(revoke)
    revoke.add_argument("id", type=int)


def run(args: argparse.Namespace) -> int:
    _config, store = load(args)
    try:
        if args.action == "create":
            token = new_token()
            store.add_token(token_hash(token), args.role, args.label, time.time())
            print(token)
        elif args.action == "list":
            print_json(store.list_tokens())
        else:
            if not store.revoke_token(args.id, time.time()):
                raise BlueGateError(f"no active token with id {args.id}")
            print(f"revoked token {args.id}")
    finally:
        store.close()
    return 0
