"""Stack settings: each environment validates; each bad input is one clear line."""

from __future__ import annotations

import stat

import pytest

from tasks.errors import SettingsError
from tasks.odoo_options import size_workers
from tasks.secrets import SECRET_KEYS
from tasks.settings import load_settings
from tasks.tls import self_signed_pair
from tests.unit.environments import HOST_SHAPE, STRONG, host_data


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_environment_validates(env, tmp_path):
    settings = load_settings(host_data(env, tmp_path), HOST_SHAPE)
    assert settings.env == env
    assert settings.project == f"dfr-{env}"
    assert "Zq8r" not in repr(settings)  # secrets never printed by accident


def test_dev_secrets_are_generated_once_with_mode_0600(tmp_path, monkeypatch):
    for key in SECRET_KEYS:
        monkeypatch.delenv(key, raising=False)
    path = tmp_path / "secrets" / "dev.env"
    first = load_settings(host_data("dev", tmp_path, secrets_file=str(path)))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_settings(host_data("dev", tmp_path, secrets_file=str(path)))
    assert first.secrets == second.secrets
    assert len(first.secrets.db_password) >= 24


@pytest.mark.parametrize(
    ("cpus", "ram_mb", "workers"),
    [
        (1, 2048, 2),  # tiny: RAM allows 3, minus 1 cron; never 1 (that disables PDFs)
        (2, 8192, 4),  # CPU bound (2 x 2 + 1 = 5) minus the cron worker
        (4, 8192, 8),  # the guide's example: 4 CPUs give 9, so 8 HTTP workers + 1 cron
        (8, 4096, 5),  # RAM bound: 4096 x 0.5 / 324.8 = 6, minus the cron worker
        (8, 65536, 16),  # CPU bound (8 x 2 + 1 = 17) minus the cron worker
    ],
)
def test_worker_sizing_follows_odoos_formula(cpus, ram_mb, workers):
    sizing = size_workers(cpus, ram_mb, max_cron_threads=1)
    assert sizing.workers == workers
    assert sizing.max_cron_threads == 1


def test_production_sizes_workers_from_the_host(tmp_path):
    settings = load_settings(host_data("prod", tmp_path), {"cpus": 2, "ram_mb": 8192})
    assert settings.workers == 4


def _refused(env, tmp_path, message, facts=HOST_SHAPE, **overrides):
    with pytest.raises(SettingsError) as error:
        load_settings(host_data(env, tmp_path, **overrides), facts)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_unknown_environment(tmp_path):
    _refused("staging", tmp_path, "unknown environment 'qa'", dfr_env="qa")


def test_missing_production_secrets_file(tmp_path, monkeypatch):
    for key in SECRET_KEYS:
        monkeypatch.delenv(key, raising=False)
    missing = tmp_path / "nowhere.env"
    _refused("prod", tmp_path, f"{missing} (missing)", secrets_file=str(missing))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("change-me-please-now", "looks like a placeholder"),
        ("Qz7", "is too weak"),
        ("aaaaaaaaaaaaaaaaaaaaaaa", "is too weak"),
    ],
)
@pytest.mark.parametrize("key", ["DFR_ODOO_ADMIN_PASSWD", "DFR_ODOO_ADMIN_USER_PASSWORD"])
def test_placeholder_or_weak_admin_password_in_production(
    tmp_path, monkeypatch, value, message, key
):
    monkeypatch.setenv(key, value)
    _refused("prod", tmp_path, f"{key} for prod {message}")


def test_a_dev_secrets_file_of_an_older_version_gets_the_new_key_and_keeps_the_others(
    tmp_path, monkeypatch
):
    for key in SECRET_KEYS:
        monkeypatch.delenv(key, raising=False)
    path = tmp_path / "older" / "dev.env"
    path.parent.mkdir()
    old = {k: v for k, v in STRONG.items() if k != "DFR_ODOO_ADMIN_USER_PASSWORD"}
    path.write_text("".join(f"{k}={v}\n" for k, v in old.items()))
    path.chmod(0o600)
    settings = load_settings(host_data("dev", tmp_path, secrets_file=str(path)))
    assert settings.secrets.db_password == STRONG["DFR_DB_PASSWORD"]
    assert len(settings.secrets.admin_user_password) >= 32
    assert path.read_text().startswith("".join(f"{k}={v}\n" for k, v in old.items()))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_settings(host_data("dev", tmp_path, secrets_file=str(path)))
    assert again.secrets.admin_user_password == settings.secrets.admin_user_password


def test_production_without_certificate(tmp_path):
    _refused(
        "prod", tmp_path, "production needs the operator's TLS certificate",
        tls_certificate=None, tls_certificate_key=None,
    )  # fmt: skip


def test_unreadable_certificate(tmp_path):
    _refused("prod", tmp_path, "does not exist", tls_certificate=str(tmp_path / "none.pem"))


def test_certificate_and_key_that_do_not_match(tmp_path):
    _, other_key = self_signed_pair("other.example.org")
    (tmp_path / "other.pem").write_bytes(other_key)
    _refused("prod", tmp_path, "do not match", tls_certificate_key=str(tmp_path / "other.pem"))


def test_workers_not_a_number(tmp_path):
    _refused("staging", tmp_path, "odoo_workers 'many' is not a number", odoo_workers="many")


def test_override_that_is_not_an_odoo_option(tmp_path):
    _refused(
        "staging", tmp_path, "longpolling_port, not an Odoo 18 option",
        odoo_options={"longpolling_port": 8072},
    )  # fmt: skip


def test_postgres_option_that_is_not_a_setting_name(tmp_path):
    _refused(
        "prod", tmp_path, "postgres_options key 'shared buffers' is not a postgresql.conf name",
        postgres_options={"shared buffers": "1GB"},
    )  # fmt: skip


def test_addons_path_missing(tmp_path):
    _refused("dev", tmp_path, "odoo_addons_src", odoo_addons_src=str(tmp_path / "no-addons"))


def test_dev_publishes_on_this_machine_only_and_production_on_every_interface(tmp_path):
    assert load_settings(host_data("dev", tmp_path)).publish_address == "127.0.0.1"
    assert load_settings(host_data("prod", tmp_path), HOST_SHAPE).publish_address == ""
    opened = load_settings(host_data("dev", tmp_path, publish_address=""))
    assert opened.publish_address == ""


@pytest.mark.parametrize("value", ["localhost", "0.0.0.0:80", "127.0.0.1\n", "::1"])
def test_a_publish_address_that_is_not_an_ipv4_address_is_refused(tmp_path, value):
    _refused(
        "dev", tmp_path, f"publish_address {value!r} is not an IPv4 address", publish_address=value
    )
