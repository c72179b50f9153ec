"""The secret part of odoo.conf: database password and the hashed master password."""

from __future__ import annotations

import base64
import hashlib
import hmac

from tasks.settings import Settings

PBKDF2_ROUNDS = 600_000  # what Odoo 18 uses for admin_passwd


def _ab64(raw: bytes) -> str:
    """passlib's adapted base64, as Odoo's pbkdf2-sha512 hashes use it."""
    return base64.b64encode(raw).decode().rstrip("=").replace("+", ".")


def hashed_master_password(password: str, salt_key: str) -> str:
    """pbkdf2-sha512 in passlib's format, with a salt derived from the environment so the
    rendered file only changes when the password does."""
    salt = hmac.new(salt_key.encode(), password.encode(), hashlib.sha256).digest()[:16]
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ROUNDS)
    return f"$pbkdf2-sha512${PBKDF2_ROUNDS}${_ab64(salt)}${_ab64(digest)}"


def odoo_secrets_conf(settings: Settings) -> str:
    """Lines the entrypoint appends to odoo.conf's [options] section."""
    master = hashed_master_password(settings.secrets.odoo_admin_passwd, f"dfr-{settings.env}")
    return f"db_password = {settings.secrets.db_password}\nadmin_passwd = {master}\n"
