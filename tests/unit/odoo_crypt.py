"""How Odoo 18 checks a password hash (odoo/tools/config.py for admin_passwd, res.users too):
passlib's pbkdf2_sha512 at 600000 rounds, plaintext accepted but deprecated."""

from __future__ import annotations

from passlib.context import CryptContext

ODOO_CRYPT_CONTEXT = CryptContext(
    ["pbkdf2_sha512", "plaintext"], deprecated=["plaintext"], pbkdf2_sha512__rounds=600_000
)
