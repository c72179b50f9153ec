"""TLS material: check an operator's certificate and key, or make a self-signed pair."""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tasks.errors import SettingsError


def check_pair(certificate: Path, key: Path, domain: str | None) -> None:
    try:
        cert = x509.load_pem_x509_certificate(certificate.read_bytes())
    except ValueError:
        raise SettingsError(f"tls_certificate {certificate} is not a PEM certificate") from None
    try:
        private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    except (ValueError, TypeError):
        raise SettingsError(
            f"tls_certificate_key {key} is not an unencrypted PEM private key"
        ) from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.PEM
    if cert.public_key().public_bytes(encoding, public) != private.public_key().public_bytes(
        encoding, public
    ):
        raise SettingsError(
            f"tls_certificate {certificate} and tls_certificate_key {key} do not match: "
            "give the key the certificate was issued for"
        )
    if cert.not_valid_after_utc < datetime.datetime.now(datetime.UTC):
        raise SettingsError(f"tls_certificate {certificate} expired on {cert.not_valid_after_utc}")


def self_signed_pair(domain: str, days: int = 825) -> tuple[bytes, bytes]:
    """A self-signed certificate for ``domain`` (dev and staging), PEM certificate and key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem
