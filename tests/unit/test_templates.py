"""Every template renders for every environment, strictly, and says what production needs."""

from __future__ import annotations

import configparser
import subprocess
from pathlib import Path

import compose
import pytest

from tasks.odoo_options import ODOO18_OPTIONS
from tasks.render import render
from tasks.settings import load_settings
from tests.unit.environments import HOST_SHAPE, PROJECT, STRONG, host_data

ENVS = ["dev", "staging", "prod"]
SHA = {"postgres": "2" * 16, "odoo": "0" * 16, "nginx": "1" * 16}


def _odoo_conf(env, tmp_path, **overrides) -> configparser.RawConfigParser:
    text = render("odoo.conf.j2", load_settings(host_data(env, tmp_path, **overrides), HOST_SHAPE))
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    return parser


def test_the_option_list_is_odoos_own():
    listed = (PROJECT / "docs" / "odoo18-options.txt").read_text().split("\n")
    assert {line for line in listed[1:] if line.strip()} == ODOO18_OPTIONS


@pytest.mark.parametrize("env", ENVS)
def test_odoo_conf_uses_only_real_odoo18_keys(env, tmp_path):
    conf = _odoo_conf(env, tmp_path, odoo_options={"email_from": "erp@example.org"})
    assert conf.sections() == ["options"]
    assert set(conf["options"]) <= ODOO18_OPTIONS
    assert conf["options"]["email_from"] == "erp@example.org"


@pytest.mark.parametrize("env", ENVS)
def test_no_secret_in_any_rendered_file(env, tmp_path):
    settings = load_settings(host_data(env, tmp_path), HOST_SHAPE)
    images = {"odoo": "dfr/odoo:x", "postgres": "dfr/postgres:x", "nginx": "dfr/nginx:x"}
    rendered = [
        render("odoo.conf.j2", settings),
        render("nginx/dfr.conf.j2", settings),
        render("compose.yaml.j2", settings, images=images, odoo_memory_limit="2g", config_sha=SHA),
    ]
    for text in rendered:
        for secret in STRONG.values():
            assert secret not in text


def test_production_locks_the_database_manager_and_pins_the_database(tmp_path):
    options = _odoo_conf("prod", tmp_path)["options"]
    assert options["list_db"] == "False"
    assert options["dbfilter"] == "^dfr$"
    assert options["proxy_mode"] == "True"
    assert options["without_demo"] == "all"
    assert int(options["workers"]) == 8  # 4 CPUs, 8 GiB


def test_dev_is_threaded_with_demo_data_and_open_manager(tmp_path):
    options = _odoo_conf("dev", tmp_path)["options"]
    assert options["workers"] == "0"
    assert options["without_demo"] == "False"
    assert options["list_db"] == "True"


def test_boolean_overrides_are_written_as_odoo_reads_them(tmp_path):
    options = _odoo_conf("staging", tmp_path, odoo_options={"x_sendfile": False})["options"]
    assert options["x_sendfile"] == "False"


def test_nginx_routes_websocket_to_gevent_only_in_worker_mode(tmp_path):
    prod = render("nginx/dfr.conf.j2", load_settings(host_data("prod", tmp_path), HOST_SHAPE))
    dev = render("nginx/dfr.conf.j2", load_settings(host_data("dev", tmp_path), HOST_SHAPE))
    assert "set $odoo_websocket $odoo_host:8072;" in prod
    assert "set $odoo_websocket $odoo_host:8069;" in dev
    assert "8072" not in dev
    assert "Strict-Transport-Security" in prod and "Strict-Transport-Security" not in dev
    assert "location ^~ /web/database/" in prod and "/web/database/" not in dev
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in prod


def _postgres_conf(env, tmp_path, **overrides) -> dict[str, str]:
    """postgresql.conf as PostgreSQL reads it: the last line of a name wins."""
    settings = load_settings(host_data(env, tmp_path, **overrides), HOST_SHAPE)
    values = {}
    for line in render("postgresql.conf.j2", settings).splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, value = (part.strip() for part in line.split("=", 1))
            values[key] = value
    return values


def test_postgres_keeps_minimal_wal_unless_told(tmp_path):
    conf = _postgres_conf("prod", tmp_path)
    assert conf["wal_level"] == "minimal" and conf["max_wal_senders"] == "0"
    assert conf["listen_addresses"] == "'*'"


def test_postgres_options_come_last_and_are_quoted_as_postgres_reads_them(tmp_path):
    conf = _postgres_conf(
        "prod", tmp_path,
        postgres_options={"wal_level": "replica", "max_wal_senders": 10, "fsync": True,
                          "application_name": "it's"},
    )  # fmt: skip
    assert conf["wal_level"] == "'replica'" and conf["max_wal_senders"] == "10"
    assert conf["fsync"] == "on"
    assert conf["application_name"] == "'it''s'"


@pytest.mark.parametrize("env", ENVS)
def test_compose_file_passes_docker_compose_config(env, tmp_path):
    settings = load_settings(host_data(env, tmp_path), HOST_SHAPE)
    images = {"odoo": "dfr/odoo:x", "postgres": "dfr/postgres:x", "nginx": "dfr/nginx:x"}
    (tmp_path / "compose.yaml").write_text(
        render("compose.yaml.j2", settings, images=images, odoo_memory_limit="2g", config_sha=SHA)
    )
    binary = Path(compose.__file__).parent / "docker-compose"
    result = subprocess.run(
        [str(binary), "-f", "compose.yaml", "config", "--format", "json"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    import json

    config = json.loads(result.stdout)
    published = {
        name: [p["published"] for p in svc.get("ports", [])]
        for name, svc in config["services"].items()
    }
    assert published["nginx"] == ["80", "443"]
    assert published["odoo"] == []
    assert published["postgres"] == (["5432"] if env == "dev" else [])
    assert all("healthcheck" in svc for svc in config["services"].values())
    assert config["services"]["postgres"]["command"] == [
        "postgres", "-c", "config_file=/etc/postgresql/postgresql.conf"
    ]  # fmt: skip
