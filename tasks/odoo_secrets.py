"""The secret part of odoo.conf: database password and the hashed master password."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from tasks.facts import OdooSecretsOnHost
from tasks.settings import Settings

PBKDF2_ROUNDS = 600_000  # what Odoo 18 uses for admin_passwd
SALT_BYTES = 16  # passlib's default for pbkdf2_sha512, as Odoo hashes it itself


def _ab64(raw: bytes) -> str:
    """passlib's adapted base64, as Odoo's pbkdf2-sha512 hashes use it."""
    return base64.b64encode(raw).decode().rstrip("=").replace("+", ".")


def _un_ab64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text.replace(".", "+") + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def hashed_master_password(password: str, salt: bytes) -> str:
    """pbkdf2-sha512 in passlib's format, as Odoo 18 verifies ``admin_passwd``."""
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ROUNDS)
    return f"$pbkdf2-sha512${PBKDF2_ROUNDS}${_ab64(salt)}${_ab64(digest)}"


def _legacy_salt(password: str, env: str) -> bytes:
    """The salt dfr-deploy used to derive from the environment's name and the password: the
    same for every host of an environment, so a hash of it could be attacked with a table
    computed in advance. A file still holding one gets a random salt."""
    return hmac.new(f"dfr-{env}".encode(), password.encode(), hashlib.sha256).digest()[:16]


def _conf(db_password: str, master_hash: str) -> str:
    return f"db_password = {db_password}\nadmin_passwd = {master_hash}\n"


def odoo_secrets_conf(settings: Settings, on_host: OdooSecretsOnHost | None) -> str:
    """Lines the entrypoint appends to odoo.conf's [options] section.

    The master password is hashed with a random salt per host. While neither password changed,
    the host's file is rendered again byte for byte (its salt, checked against the file's
    digest), so an unchanged deploy changes nothing; otherwise a new salt is drawn.
    """
    db_password = settings.secrets.db_password
    master = settings.secrets.odoo_admin_passwd
    salt = _un_ab64(on_host.salt) if on_host else None
    if on_host and salt and len(salt) == SALT_BYTES and salt != _legacy_salt(master, settings.env):
        kept = _conf(db_password, hashed_master_password(master, salt))
        if hashlib.sha256(kept.encode()).hexdigest() == on_host.sha256:
            return kept
    return _conf(db_password, hashed_master_password(master, secrets.token_bytes(SALT_BYTES)))
