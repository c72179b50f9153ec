"""Secrets of an environment: secrets/<env>.env (python-dotenv) or the process environment.

Dev secrets are generated on first use. Staging and production refuse missing, placeholder or
weak values. Values are returned as plain strings: callers keep them out of command lines,
diffs and logs (see tasks/secret_files.py).
"""

from __future__ import annotations

import os
import re
import secrets as random_secrets
import shlex
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

from tasks.config_values import has_control
from tasks.errors import SettingsError

SECRET_KEYS = {
    "DFR_DB_PASSWORD": "password of the Odoo database role",
    "DFR_POSTGRES_PASSWORD": "password of the PostgreSQL superuser inside the stack",
    "DFR_ODOO_ADMIN_PASSWD": "Odoo master password (admin_passwd)",
    "DFR_ODOO_ADMIN_USER_PASSWORD": "password of the Odoo user admin (the login, not the master)",
}
MIN_LENGTH = 16
_PLACEHOLDER = re.compile(r"change.?me|placeholder|example|xxx|secret|password|todo|admin", re.I)


@dataclass(frozen=True)
class Secrets:
    db_password: str
    postgres_password: str
    odoo_admin_passwd: str
    admin_user_password: str

    def __repr__(self) -> str:  # never print values by accident
        return "Secrets(*hidden*)"


def load_secrets(env: str, path: Path) -> Secrets:
    _check_private(path)  # dev's too: generated 0600, and kept so
    if env == "dev" and not _all_in_environment():
        _generate_missing(path)
    values = {k: v for k, v in dotenv_values(path).items() if v} if path.exists() else {}
    values.update({k: os.environ[k] for k in SECRET_KEYS if os.environ.get(k)})
    for key in SECRET_KEYS:
        if key in values and has_control(values[key]):  # never print the value itself
            raise SettingsError(
                f"{key} for {env} holds a newline or another control character: give the "
                "value on one line"
            )
    missing = [key for key in SECRET_KEYS if key not in values]
    if missing:
        where = f"{path}" if path.exists() else f"{path} (missing)"
        raise SettingsError(
            f"secrets for {env} lack {', '.join(missing)} in {where} or the environment: "
            f"create it from docs/secrets.md (mode 0600)"
        )
    if env != "dev":
        for key in SECRET_KEYS:
            _check_strength(env, key, values[key])
    return Secrets(
        db_password=values["DFR_DB_PASSWORD"],
        postgres_password=values["DFR_POSTGRES_PASSWORD"],
        odoo_admin_passwd=values["DFR_ODOO_ADMIN_PASSWD"],
        admin_user_password=values["DFR_ODOO_ADMIN_USER_PASSWORD"],
    )


OFFSITE_KEY = "DFR_OFFSITE_PASSPHRASE"


def load_offsite_passphrase(env: str, path: Path, own: bool = True) -> str:
    """The passphrase of the environment's off-host repository (borg repokey): asked for only
    where an off-host repository is configured. Dev's is generated like its other secrets.
    Another environment's (``own`` False: a repository this one reads, offsite_reads) comes
    from its secrets file only, never generated nor taken from the process environment."""
    _check_private(path)
    if own and env == "dev" and not os.environ.get(OFFSITE_KEY):
        _generate_missing(path, (OFFSITE_KEY,))
    value = (os.environ.get(OFFSITE_KEY) if own else None) or (
        dotenv_values(path).get(OFFSITE_KEY) if path.exists() else None
    )
    if not value and not own:
        where = f"{path}" if path.exists() else f"{path} (missing)"
        raise SettingsError(
            f"secrets for {env} lack {OFFSITE_KEY} in {where}, which offsite_reads needs to "
            f"read {env}'s off-host repository: copy it there from {env}'s secrets (mode 0600)"
        )
    if not value:
        raise SettingsError(
            f"secrets for {env} lack {OFFSITE_KEY} in {path} or the environment, which the "
            "off-host repository needs: add a random one (docs/offsite-backups.md) and keep a "
            "second copy away from the host"
        )
    if has_control(value):
        raise SettingsError(
            f"{OFFSITE_KEY} for {env} holds a newline or another control character: give the "
            "value on one line"
        )
    if env != "dev":
        _check_strength(env, OFFSITE_KEY, value)
    return value


def _check_private(path: Path) -> None:
    """Refuse a secrets file that group or others may read or write, as ssh does for keys."""
    if not path.exists():
        return
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise SettingsError(
            f"secrets file {path} is open to other users (mode {mode:04o}), as ssh refuses for "
            f"keys: run chmod 600 {shlex.quote(str(path))}"
        )


def _all_in_environment() -> bool:
    return all(os.environ.get(key) for key in SECRET_KEYS)


def _check_strength(env: str, key: str, value: str) -> None:
    if _PLACEHOLDER.search(value):
        raise SettingsError(f"{key} for {env} looks like a placeholder: set a real random value")
    if len(value) < MIN_LENGTH or len(set(value)) < 8:
        raise SettingsError(
            f"{key} for {env} is too weak: use at least {MIN_LENGTH} random characters "
            "(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )


def _generate_missing(path: Path, keys: tuple[str, ...] = tuple(SECRET_KEYS)) -> None:
    """Dev secrets: the file is created 0600 on first use, and a key added by a newer version
    of dfr-deploy is appended to an existing file."""
    present = dotenv_values(path) if path.exists() else {}
    missing = [key for key in keys if not present.get(key) and not os.environ.get(key)]
    if not missing:
        return
    if not path.exists():
        lines = ["# generated by dfr-deploy for dev on first use; keep out of git\n"]
    else:
        lines = [] if path.read_bytes().endswith(b"\n") else ["\n"]
    lines += [f"{key}={random_secrets.token_urlsafe(24)}\n" for key in missing]
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_APPEND | (0 if path.exists() else os.O_CREAT | os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "a") as handle:
        handle.writelines(lines)
