"""`bluegate-central ca init|sign|server-cert|client`: the fleet's small CA (central/pki.py)."""

from __future__ import annotations

import argparse

from central import pki

HELP = "a small certificate authority for gateways and the broker"


def _days(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 36500:
        raise argparse.ArgumentTypeError("days must be between 1 and 36500")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="ca_command", required=True, metavar="ACTION")
    init = sub.add_parser("init", help="create the CA key and self-signed certificate")
    init.add_argument("--dir", required=True, help="CA directory (keep it offline)")
    init.add_argument("--name", default="BlueGate fleet CA", help="the CA's CN")
    init.add_argument("--days", type=_days, default=3650)

    sign = sub.add_parser(
        "sign", help="sign a gateway's request (bluegate-gateway enroll)"
    )
    sign.add_argument("--dir", required=True, help="CA directory")
    sign.add_argument("--csr", required=True, help="the gateway's tls.csr")
    sign.add_argument("--out", required=True, help="where to write the certificate")
    sign.add_argument("--days", type=_days, default=825)

    server = sub.add_parser("server-cert", help="the broker's key and certificate")
    server.add_argument("--dir", required=True, help="CA directory")
    server.add_argument(
        "--host",
        required=True,
        action="append",
        help="a DNS name or IP address gateways connect to (repeatable)",
    )
    server.add_argument("--out-dir", help="where to write them (default: --dir)")
    server.add_argument("--days", type=_days, default=825)

    client = sub.add_parser(
        "client", help="a key and client certificate for a service (central ingest)"
    )
    client.add_argument("--dir", required=True, help="CA directory")
    client.add_argument("--cn", required=True, help="user name at the broker")
    client.add_argument("--out-dir", required=True)
    client.add_argument("--days", type=_days, default=825)


def _show(issued: pki.Issued) -> None:
    print(issued.path)
    print(f"# subject   {issued.subject}")
    print(f"# serial    {issued.serial:x}")
    print(f"# expires   {issued.not_after.date().isoformat()}")
    print(f"# sha256    {issued.fingerprint}")


def run(args: argparse.Namespace) -> int:
    if args.ca_command == "init":
        _show(pki.init_ca(args.dir, name=args.name, days=args.days))
    elif args.ca_command == "sign":
        _show(pki.sign_csr(args.dir, args.csr, args.out, days=args.days))
    elif args.ca_command == "server-cert":
        issued, key = pki.server_cert(args.dir, args.host, args.out_dir, days=args.days)
        _show(issued)
        print(f"# key       {key}")
    else:
        issued, key = pki.issue_client(args.dir, args.cn, args.out_dir, days=args.days)
        _show(issued)
        print(f"# key       {key}")
    return 0
