"""The master password's hash (admin_passwd): a random salt per host, kept while unchanged."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tasks.facts import OdooSecretsFile, OdooSecretsOnHost
from tasks.odoo_secrets import _legacy_salt, hashed_master_password, odoo_secrets_conf
from tasks.settings import Settings, load_settings
from tests.unit.environments import HOST_SHAPE, STRONG, host_data
from tests.unit.odoo_crypt import ODOO_CRYPT_CONTEXT

NEW_MASTER = "Wm5tB8xR2kQ7vN3cH9pL4d"


def _settings(tmp_path: Path, **secrets: str) -> Settings:
    data = host_data("prod", tmp_path)
    Path(data["secrets_file"]).write_text(
        "".join(f"{k}={v}\n" for k, v in {**STRONG, **secrets}.items())
    )
    return load_settings(data, HOST_SHAPE)


def _on_host(conf: str, tmp_path: Path) -> OdooSecretsOnHost | None:
    """What the deploy reads from a host holding ``conf``: the fact's own command, run by sh."""
    path = tmp_path / "secrets" / "odoo_secrets.conf"
    path.parent.mkdir(exist_ok=True)
    path.write_text(conf)
    fact = OdooSecretsFile()
    out = subprocess.run(["sh", "-c", fact.command(str(path))], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return fact.process(out.stdout.splitlines())


def _master_hash(conf: str) -> str:
    (line,) = [line for line in conf.splitlines() if line.startswith("admin_passwd = ")]
    return line.removeprefix("admin_passwd = ")


def _salt(stored: str) -> str:
    return stored.split("$")[3]


def test_the_hash_verifies_as_odoo_18_checks_the_master_password(tmp_path):
    stored = _master_hash(odoo_secrets_conf(_settings(tmp_path), None))
    assert stored.startswith("$pbkdf2-sha512$600000$")
    assert ODOO_CRYPT_CONTEXT.verify(STRONG["DFR_ODOO_ADMIN_PASSWD"], stored)
    assert not ODOO_CRYPT_CONTEXT.verify(NEW_MASTER, stored)
    assert not ODOO_CRYPT_CONTEXT.needs_update(stored)  # Odoo would not re-hash it


def test_two_hosts_with_the_same_password_get_different_salts_and_hashes(tmp_path):
    settings = _settings(tmp_path)
    first, second = (_master_hash(odoo_secrets_conf(settings, None)) for _ in range(2))
    assert _salt(first) != _salt(second) and first != second
    assert len(ODOO_CRYPT_CONTEXT.handler("pbkdf2_sha512").from_string(first).salt) == 16
    for stored in (first, second):
        assert ODOO_CRYPT_CONTEXT.verify(STRONG["DFR_ODOO_ADMIN_PASSWD"], stored)


def test_an_unchanged_password_renders_the_hosts_file_byte_for_byte(tmp_path):
    settings = _settings(tmp_path)
    on_host = odoo_secrets_conf(settings, None)
    seen = _on_host(on_host, tmp_path)
    assert seen is not None and seen.salt == _salt(_master_hash(on_host))
    assert _master_hash(on_host) not in repr(seen)  # the fact never holds the hash
    assert odoo_secrets_conf(settings, seen) == on_host


@pytest.mark.parametrize("rotated", ["DFR_ODOO_ADMIN_PASSWD", "DFR_DB_PASSWORD"])
def test_a_rotated_password_gets_a_new_salt(tmp_path, rotated):
    on_host = odoo_secrets_conf(_settings(tmp_path), None)
    seen = _on_host(on_host, tmp_path)
    settings = _settings(tmp_path, **{rotated: NEW_MASTER})
    new = _master_hash(odoo_secrets_conf(settings, seen))
    assert _salt(new) != _salt(_master_hash(on_host))
    assert ODOO_CRYPT_CONTEXT.verify(settings.secrets.odoo_admin_passwd, new)
    if rotated == "DFR_ODOO_ADMIN_PASSWD":
        assert not ODOO_CRYPT_CONTEXT.verify(STRONG["DFR_ODOO_ADMIN_PASSWD"], new)


def test_a_hash_with_the_old_environment_derived_salt_is_replaced_once(tmp_path):
    settings = _settings(tmp_path)
    password = STRONG["DFR_ODOO_ADMIN_PASSWD"]
    legacy = hashed_master_password(password, _legacy_salt(password, "prod"))
    old_file = f"db_password = {STRONG['DFR_DB_PASSWORD']}\nadmin_passwd = {legacy}\n"
    upgraded = odoo_secrets_conf(settings, _on_host(old_file, tmp_path))
    assert _salt(_master_hash(upgraded)) != _salt(legacy)
    assert odoo_secrets_conf(settings, _on_host(upgraded, tmp_path)) == upgraded


@pytest.mark.parametrize(
    "conf",
    [
        "db_password = x\n",  # no admin_passwd line
        "db_password = x\nadmin_passwd = plain-text\n",
        "db_password = x\nadmin_passwd = $pbkdf2-sha512$600000$c2hvcnQ$AAAA\n",  # 5-byte salt
    ],
)
def test_a_file_without_a_usable_salt_gets_a_new_random_one(tmp_path, conf):
    settings = _settings(tmp_path)
    rendered = odoo_secrets_conf(settings, _on_host(conf, tmp_path))
    assert ODOO_CRYPT_CONTEXT.verify(STRONG["DFR_ODOO_ADMIN_PASSWD"], _master_hash(rendered))
    assert odoo_secrets_conf(settings, _on_host(rendered, tmp_path)) == rendered


def test_no_file_on_the_host_reads_as_none(tmp_path):
    fact = OdooSecretsFile()
    missing = str(tmp_path / "none" / "odoo_secrets.conf")
    out = subprocess.run(["sh", "-c", fact.command(missing)], capture_output=True, text=True)
    assert out.returncode == 0 and fact.process(out.stdout.splitlines()) is None
