"""Shell: a small certificate authority for a BlueGate fleet (`bluegate-central ca`).

One directory holds the CA: `ca-key.pem` (ECDSA P-256, 0600) and `ca.pem` (the
self-signed certificate every gateway and the broker trust). The CA signs:

- gateway client certificates from the request `bluegate-gateway enroll` made: the
  subject's CN (the gateway id) is kept exactly, because Mosquitto uses it as the
  user name (`use_identity_as_username`) and the ACL's `%u` confines the gateway
  to its own topics; extended key usage clientAuth only;
- the broker's server certificate, with a subjectAltName for each host name or IP
  address gateways connect to (TLS hostname checking is on at every gateway);
  extended key usage serverAuth only.

Keep the CA directory off the broker and off the units (an ops laptop or an
offline machine): whoever holds `ca-key.pem` can mint a certificate for any gateway.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.errors import BlueGateError, InputError

CA_KEY: Final = "ca-key.pem"
CA_CERT: Final = "ca.pem"
# Gateway ids are MQTT topic levels and Mosquitto user names.
_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class PkiError(BlueGateError):
    """The CA directory or a request is unusable; the message says why."""


@dataclass(frozen=True, slots=True)
class Issued:
    path: Path
    subject: str
    serial: int
    not_after: dt.datetime
    fingerprint: str  # SHA-256 of the certificate, hex pairs


def _save_cert(path: Path, cert: x509.Certificate) -> Issued:
    """Write a certificate (PEM, world-readable: it is public) and describe it."""
    _write(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return Issued(
        path,
        cert.subject.rfc4514_string(),
        cert.serial_number,
        cert.not_valid_after_utc,
        _cert_fingerprint(cert),
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _cert_fingerprint(cert: x509.Certificate) -> str:
    digest = cert.fingerprint(hashes.SHA256()).hex()
    return ":".join(digest[i : i + 2] for i in range(0, 64, 2))


def _write(path: Path, data: bytes, mode: int, force: bool = True) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise PkiError(f"{path} exists; refusing to overwrite it") from None
    except OSError as exc:
        raise PkiError(f"{path}: {exc.strerror}") from exc
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def init_ca(
    directory: str, *, name: str = "BlueGate fleet CA", days: int = 3650
) -> Issued:
    """Create the CA key and self-signed certificate (never over an existing CA)."""
    base = Path(directory)
    try:
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise PkiError(f"{base}: {exc.strerror}") from exc
    if (base / CA_KEY).exists() or (base / CA_CERT).exists():
        raise PkiError(f"{base} already holds a CA; refusing to overwrite it")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "BlueGate"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(base / CA_KEY, _pem_key(key), 0o600, force=False)
    return _save_cert(base / CA_CERT, cert)


def load_ca(directory: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    base = Path(directory)
    try:
        key = serialization.load_pem_private_key(
            (base / CA_KEY).read_bytes(), password=None
        )
        cert = x509.load_pem_x509_certificate((base / CA_CERT).read_bytes())
    except OSError as exc:
        raise PkiError(
            f"no CA in {base} ({exc.strerror}); run `bluegate-central ca init`"
        ) from exc
    except ValueError as exc:
        raise PkiError(f"CA files in {base} are not PEM ({exc})") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{base / CA_KEY} is not an ECDSA key")
    return key, cert


def _leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    days: int,
    usage: x509.ObjectIdentifier,
    san: x509.SubjectAlternativeName | None,
) -> x509.Certificate:
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def sign_csr(directory: str, csr_path: str, out: str, *, days: int = 825) -> Issued:
    """Sign a gateway's request into a client certificate; its CN is kept as is."""
    ca_key, ca_cert = load_ca(directory)
    try:
        csr = x509.load_pem_x509_csr(Path(csr_path).read_bytes())
    except OSError as exc:
        raise InputError(f"{csr_path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise InputError(f"{csr_path}: not a PEM certificate request ({exc})") from exc
    if not csr.is_signature_valid:
        raise InputError(f"{csr_path}: the request's signature does not verify")
    cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(cns) != 1 or not _NAME_RE.match(str(cns[0].value)):
        raise InputError(
            f"{csr_path}: the request needs exactly one CN that is a gateway id "
            "(letters, digits, '.', '_', '-'); it becomes the MQTT user name"
        )
    public_key = csr.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise InputError(f"{csr_path}: expected an ECDSA key (bluegate-gateway enroll)")
    san = None
    with contextlib.suppress(x509.ExtensionNotFound):
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    cert = _leaf(
        ca_key,
        ca_cert,
        csr.subject,
        public_key,
        days,
        ExtendedKeyUsageOID.CLIENT_AUTH,
        san,
    )
    return _save_cert(Path(out), cert)


def issue_client(
    directory: str, common_name: str, out_dir: str, *, days: int = 825
) -> tuple[Issued, Path]:
    """Key + client certificate in one step (central's ingest user, tests)."""
    if not _NAME_RE.match(common_name):
        raise InputError(f"bad common name {common_name!r}")
    ca_key, ca_cert = load_ca(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    base = Path(out_dir)
    base.mkdir(parents=True, exist_ok=True)
    key_path = base / f"{common_name}-key.pem"
    _write(key_path, _pem_key(key), 0o600)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = _leaf(
        ca_key,
        ca_cert,
        subject,
        key.public_key(),
        days,
        ExtendedKeyUsageOID.CLIENT_AUTH,
        None,
    )
    return _save_cert(base / f"{common_name}.pem", cert), key_path


def server_cert(
    directory: str, hosts: list[str], out_dir: str | None = None, *, days: int = 825
) -> tuple[Issued, Path]:
    """The broker's key and certificate, with a SAN for every host name or IP."""
    if not hosts:
        raise InputError("give at least one --host (the name gateways connect to)")
    ca_key, ca_cert = load_ca(directory)
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "BlueGate"),
            x509.NameAttribute(NameOID.COMMON_NAME, hosts[0]),
        ]
    )
    cert = _leaf(
        ca_key,
        ca_cert,
        subject,
        key.public_key(),
        days,
        ExtendedKeyUsageOID.SERVER_AUTH,
        x509.SubjectAlternativeName(names),
    )
    base = Path(out_dir or directory)
    base.mkdir(parents=True, exist_ok=True)
    stem = "server-" + re.sub(r"[^A-Za-z0-9._-]", "_", hosts[0])
    key_path = base / f"{stem}-key.pem"
    _write(key_path, _pem_key(key), 0o600)
    return _save_cert(base / f"{stem}.pem", cert), key_path
