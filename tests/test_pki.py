"""The fleet CA (central/pki.py, `bluegate-central ca`) and unit enrolment (gateway/keys.py)."""

from __future__ import annotations

import ipaddress
import os
import stat
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from central import pki
from gateway import keys
from gateway.errors import InputError


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_enroll_creates_0600_files_and_never_overwrites(tmp_path):
    ident = tmp_path / "keys"
    first = keys.enroll(str(ident), "bus-07", "mine-a")
    assert set(first.created) == {keys.SIGNING_KEY, keys.TLS_KEY, keys.TLS_CSR}
    assert mode(ident) == 0o700
    for name in (keys.SIGNING_KEY, keys.SIGNING_PUB, keys.TLS_KEY, keys.TLS_CSR):
        assert mode(ident / name) == 0o600
    csr = x509.load_pem_x509_csr((ident / keys.TLS_CSR).read_bytes())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "bus-07"
    assert (
        csr.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
        == "mine-a"
    )
    before = (ident / keys.SIGNING_KEY).read_bytes()
    again = keys.enroll(str(ident), "bus-07", "mine-a")
    assert again.created == ()
    assert (ident / keys.SIGNING_KEY).read_bytes() == before
    assert again.signing_fingerprint == first.signing_fingerprint
    forced = keys.enroll(str(ident), "bus-07", "mine-a", force=True)
    assert forced.signing_fingerprint != first.signing_fingerprint
    loaded = keys.load_signing_key(str(ident))
    assert (
        keys.fingerprint(keys.public_der(loaded.public_key()))
        == forced.signing_fingerprint
    )
    assert keys.load_signing_key(str(tmp_path / "none")) is None


def test_enroll_command_prints_paths_and_fingerprints_not_keys(tmp_path):
    cfg = tmp_path / "unit.yaml"
    cfg.write_text(
        "site: mine-a\ngateway: bus-07\nzone: {name: bus-07, kind: bus}\n"
        f"identity: {{dir: {tmp_path / 'keys'}}}\noutbox: {{path: {tmp_path / 'o.sqlite'}}}\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "gateway", "enroll", "--config", str(cfg)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = out.splitlines()
    assert lines[0] == str(tmp_path / "keys" / keys.SIGNING_PUB)
    assert lines[1] == str(tmp_path / "keys" / keys.TLS_CSR)
    assert "SHA256:" in out
    assert "PRIVATE KEY" not in out
    assert "BEGIN" not in out


def test_ca_signs_client_keeping_cn_and_server_with_san(tmp_path):
    ca_dir = str(tmp_path / "ca")
    pki.init_ca(ca_dir)
    assert mode(tmp_path / "ca" / pki.CA_KEY) == 0o600
    with pytest.raises(pki.PkiError, match="already holds"):
        pki.init_ca(ca_dir)
    ca_cert = x509.load_pem_x509_certificate(
        (tmp_path / "ca" / pki.CA_CERT).read_bytes()
    )
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    enrolled = keys.enroll(str(tmp_path / "unit"), "bus-07", "mine-a")
    issued = pki.sign_csr(
        ca_dir, str(enrolled.csr), str(tmp_path / "bus-07.pem"), days=30
    )
    cert = x509.load_pem_x509_certificate(issued.path.read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "bus-07"
    assert cert.issuer == ca_cert.subject
    cert.verify_directly_issued_by(ca_cert)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert 29 <= (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 31

    server, key_path = pki.server_cert(ca_dir, ["mqtt.example", "10.0.0.5"])
    assert mode(key_path) == 0o600
    scert = x509.load_pem_x509_certificate(server.path.read_bytes())
    san = scert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["mqtt.example"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.5")]
    assert list(
        scert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    ) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_ca_rejects_a_tampered_or_unusable_request(tmp_path):
    ca_dir = str(tmp_path / "ca")
    pki.init_ca(ca_dir)
    bad = tmp_path / "bad.csr"
    bad.write_text("not a csr")
    with pytest.raises(InputError, match="not a PEM"):
        pki.sign_csr(ca_dir, str(bad), str(tmp_path / "x.pem"))
    enrolled = keys.enroll(
        str(tmp_path / "unit"), "bus/07", "mine-a"
    )  # '/' is a topic separator
    with pytest.raises(InputError, match="CN"):
        pki.sign_csr(ca_dir, str(enrolled.csr), str(tmp_path / "x.pem"))
    with pytest.raises(pki.PkiError, match="no CA"):
        pki.sign_csr(
            str(tmp_path / "nowhere"), str(enrolled.csr), str(tmp_path / "x.pem")
        )


def test_ca_command_line(tmp_path):
    def run(*a):
        return subprocess.run(
            [sys.executable, "-m", "central", "ca", *a], capture_output=True, text=True
        )

    assert run("init", "--dir", str(tmp_path / "ca")).returncode == 0
    again = run("init", "--dir", str(tmp_path / "ca"))
    assert again.returncode == 1
    assert "refusing to overwrite" in again.stderr
    out = run("server-cert", "--dir", str(tmp_path / "ca"), "--host", "localhost")
    assert out.returncode == 0
    assert "server-localhost.pem" in out.stdout
