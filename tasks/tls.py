"""TLS material: check an operator's certificate and key, or make a self-signed pair."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509.oid import NameOID
from pyinfra import logger

from tasks.errors import SettingsError

REFUSE_DAYS = 14  # a certificate expiring sooner is refused
WARN_DAYS = 30  # and one expiring sooner than this is deployed with a warning


def check_pair(certificate: Path, key: Path, domain: str, env: str) -> None:
    """The certificate and key match and are in date; in staging and prod the certificate also
    names ``domain`` and lasts another REFUSE_DAYS (warned under WARN_DAYS)."""
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
    _check_key_size(certificate, cert)
    if env in ("staging", "prod"):
        _check_names(certificate, cert, domain)
        _check_days_left(certificate, cert)


# OpenSSL 3's default security level 2 (nginx:stable, Debian 12): nginx refuses smaller keys at
# start ("ee key too small"), so such a pair would pass here and leave nginx down after up.
MIN_RSA_BITS = 2048


def _check_key_size(path: Path, cert: x509.Certificate) -> None:
    public = cert.public_key()
    if isinstance(public, rsa.RSAPublicKey | dsa.DSAPublicKey) and public.key_size < MIN_RSA_BITS:
        raise SettingsError(
            f"tls_certificate {path} has a {public.key_size}-bit key, which nginx's OpenSSL "
            f"refuses: use a certificate with an RSA key of {MIN_RSA_BITS} bits or more, or ECDSA"
        )


def _check_names(path: Path, cert: x509.Certificate, domain: str) -> None:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        names = x509.SubjectAlternativeName([])
    dns = names.get_values_for_type(x509.DNSName)
    addresses = [str(address) for address in names.get_values_for_type(x509.IPAddress)]
    if covers(dns, addresses, domain):
        return
    listed = ", ".join([*dns, *addresses]) or "no subjectAltName"
    raise SettingsError(
        f"tls_certificate {path} is not for {domain} (it names {listed}): give a certificate "
        f"whose subjectAltName names dfr_domain {domain}"
    )


def covers(dns_names: list[str], addresses: list[str], domain: str) -> bool:
    """Whether a certificate naming ``dns_names`` (a single-label "*." wildcard at most, as
    browsers accept: RFC 6125) and ``addresses`` is valid for ``domain``."""
    wanted = domain.lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(wanted)) in addresses
    except ValueError:
        pass
    for name in (name.lower().rstrip(".") for name in dns_names):
        if name == wanted:
            return True
        host, _, parent = wanted.partition(".")
        if name.startswith("*.") and "*" not in name[2:] and parent and name[2:] == parent:
            return bool(host)
    return False


def _check_days_left(path: Path, cert: x509.Certificate) -> None:
    end = cert.not_valid_after_utc
    days = (end - datetime.datetime.now(datetime.UTC)).days
    when = end.strftime("%Y-%m-%d %H:%M UTC")
    if days < REFUSE_DAYS:
        raise SettingsError(
            f"tls_certificate {path} expires on {when}, within {REFUSE_DAYS} days: renew it "
            "and point tls_certificate at the new one"
        )
    if days < WARN_DAYS:
        logger.warning(
            f"tls_certificate {path} expires on {when}, within {WARN_DAYS} days: renew it soon"
        )


def self_signed_pair(
    domain: str, days: int = 825, names: list[str] | None = None
) -> tuple[bytes, bytes]:
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
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in (names or [domain])]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem
