"""Shell: the unit's identity files -- batch-signing key, TLS key, certificate request.

`enroll` creates, in the identity directory (gateway config `identity.dir`, 0700):

| file                  | what                                                  |
|-----------------------|-------------------------------------------------------|
| `signing-key.pem`     | Ed25519 private key (PKCS#8, 0600): signs every batch |
| `signing-key.pub.pem` | its public key: `bluegate-central enroll --public-key`|
| `tls-key.pem`         | ECDSA P-256 private key (0600) for mutual TLS         |
| `tls.csr`             | certificate request: CN = gateway id, OU = site       |

Nothing is ever overwritten without `force` (a regenerated signing key would make
central quarantine every batch until it is enrolled again). Keys never leave the
unit and are never logged; only SHA-256 fingerprints are printed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.x509.oid import NameOID

from gateway.errors import BlueGateError

_LOGGER = logging.getLogger(__name__)

SIGNING_KEY: Final = "signing-key.pem"
SIGNING_PUB: Final = "signing-key.pub.pem"
TLS_KEY: Final = "tls-key.pem"
TLS_CSR: Final = "tls.csr"


class IdentityError(BlueGateError):
    """An identity file is missing, unreadable or not what it should be."""


@dataclass(frozen=True, slots=True)
class EnrollResult:
    signing_key: Path
    signing_pub: Path
    tls_key: Path
    csr: Path
    signing_fingerprint: str
    tls_fingerprint: str
    created: tuple[str, ...]  # file names written by this run
    kept: tuple[str, ...]  # file names that existed and were kept


def fingerprint(public_der: bytes) -> str:
    """`SHA256:` + hex of the DER public key, in colon-separated pairs (OpenSSH-like)."""
    digest = hashlib.sha256(public_der).hexdigest()
    return "SHA256:" + ":".join(digest[i : i + 2] for i in range(0, 64, 2))


def public_der(key: Ed25519PublicKey | ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _write_private(path: Path, data: bytes, force: bool) -> None:
    """Write 0600 atomically; never over an existing file unless forced.

    Every identity file is 0600 (the public ones too: the technician copies them
    as the unit's user; nothing else on the unit needs them).
    """
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if force:
        os.replace(tmp, path)
    else:
        try:
            os.link(tmp, path)  # fails if `path` appeared meanwhile
        finally:
            os.unlink(tmp)


def _pem_private(key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_csr(
    key: ec.EllipticCurvePrivateKey, gateway: str, site: str
) -> x509.CertificateSigningRequest:
    """CN = gateway id (Mosquitto's user name, the ACL's %u), OU = site."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "BlueGate"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, site),
            x509.NameAttribute(NameOID.COMMON_NAME, gateway),
        ]
    )
    san = x509.SubjectAlternativeName(
        [x509.UniformResourceIdentifier(f"urn:bluegate:{site}:{gateway}")]
    )
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .add_extension(san, critical=False)
        .sign(key, hashes.SHA256())
    )


def enroll(
    identity_dir: str, gateway: str, site: str, *, force: bool = False
) -> EnrollResult:
    """Create what is missing (everything with `force`); return paths and fingerprints."""
    base = Path(identity_dir)
    try:
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise IdentityError(f"identity dir {base}: {exc.strerror}") from exc
    created: list[str] = []
    kept: list[str] = []
    paths = {n: base / n for n in (SIGNING_KEY, SIGNING_PUB, TLS_KEY, TLS_CSR)}
    try:
        if force or not paths[SIGNING_KEY].exists():
            signing = Ed25519PrivateKey.generate()
            _write_private(paths[SIGNING_KEY], _pem_private(signing), force)
            created.append(SIGNING_KEY)
        else:
            signing = load_signing_key_file(paths[SIGNING_KEY])
            kept.append(SIGNING_KEY)
        # The public key is derived, so rewriting it is always safe.
        _write_private(
            paths[SIGNING_PUB],
            signing.public_key().public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            ),
            True,
        )
        if force or not paths[TLS_KEY].exists():
            tls = ec.generate_private_key(ec.SECP256R1())
            _write_private(paths[TLS_KEY], _pem_private(tls), force)
            created.append(TLS_KEY)
        else:
            tls = _load_ec_key(paths[TLS_KEY])
            kept.append(TLS_KEY)
        if force or TLS_KEY in created or not paths[TLS_CSR].exists():
            csr = make_csr(tls, gateway, site)
            _write_private(
                paths[TLS_CSR], csr.public_bytes(serialization.Encoding.PEM), True
            )
            created.append(TLS_CSR)
        else:
            kept.append(TLS_CSR)
    except OSError as exc:
        raise IdentityError(f"identity dir {base}: {exc.strerror or exc}") from exc
    return EnrollResult(
        signing_key=paths[SIGNING_KEY],
        signing_pub=paths[SIGNING_PUB],
        tls_key=paths[TLS_KEY],
        csr=paths[TLS_CSR],
        signing_fingerprint=fingerprint(public_der(signing.public_key())),
        tls_fingerprint=fingerprint(public_der(tls.public_key())),
        created=tuple(created),
        kept=tuple(kept),
    )


def _check_private_mode(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        _LOGGER.warning("%s is readable by others (mode %o); chmod 600 it", path, mode)


def _load_ec_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise IdentityError(f"{path} is not an ECDSA private key")
    return key


def load_signing_key_file(path: Path) -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
        _check_private_mode(path)
        key = serialization.load_pem_private_key(data, password=None)
    except OSError as exc:
        raise IdentityError(f"signing key {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise IdentityError(
            f"signing key {path}: not a PEM private key ({exc})"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise IdentityError(f"signing key {path} is not an Ed25519 key")
    return key


def load_signing_key(identity_dir: str) -> Ed25519PrivateKey | None:
    """The unit's batch-signing key, or None if `enroll` has not been run."""
    path = Path(identity_dir) / SIGNING_KEY
    if not path.exists():
        return None
    return load_signing_key_file(path)
