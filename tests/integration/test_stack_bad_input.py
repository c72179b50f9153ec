"""Bad input to deploy.py: one clear line, exit non-zero, nothing changed on the host."""

from __future__ import annotations

import pytest

from tasks.tls import self_signed_pair
from tests.harness.hosts import HostPool, TargetHost
from tests.harness.images import docker_ready_image
from tests.harness.pyinfra_run import pyinfra
from tests.integration.stack import stack_data


@pytest.fixture(scope="module")
def target(start_hosts, pool: HostPool) -> TargetHost:
    (host,) = start_hosts(docker_ready_image(), prefix="refuse")
    return host


def _inventory(pool, target, env, base_images, docker_data, **changes):
    path = pool.inventory([target], name=env)
    name, data = target.inventory_entry()
    data.update(stack_data(path.parent, target, env, base_images, docker_data))
    data.update(changes)
    data = {k: v for k, v in data.items() if v is not None}
    path.write_text(f"targets = [({name!r}, {data!r})]\n")
    return path


def _weak_secrets(path, value):
    path.write_text(
        f"DFR_DB_PASSWORD=Zq8rT1xv9LmN4bW7kP2sYc\nDFR_POSTGRES_PASSWORD=Hf3Jk9Lq2Wn8Rt5Vy1Bx7M\n"
        f"DFR_ODOO_ADMIN_PASSWD={value}\nDFR_ODOO_ADMIN_USER_PASSWORD=uL6nB2vX9cR4tY7wQ3zK8e\n"
    )
    path.chmod(0o600)
    return str(path)


def _open_secrets(path):
    _weak_secrets(path, "pD4gH8jK2mN6qR9tV3wZ5c")
    path.chmod(0o644)
    return str(path)


def _other_key(tmp_path):
    _, key = self_signed_pair("someone-else.example.org")
    (tmp_path / "other.key").write_bytes(key)
    return str(tmp_path / "other.key")


CASES = {
    "unknown environment": ("qa", {}, "unknown environment None"),
    "missing secrets file": (
        "prod", {"secrets_file": "/nonexistent/prod.env"}, "/nonexistent/prod.env (missing)"
    ),
    "placeholder admin password": (
        "prod", {"secrets_file": lambda t: _weak_secrets(t / "p.env", "change-me-now-please")},
        "DFR_ODOO_ADMIN_PASSWD for prod looks like a placeholder",
    ),
    "short admin password": (
        "prod", {"secrets_file": lambda t: _weak_secrets(t / "s.env", "Qz7x")},
        "DFR_ODOO_ADMIN_PASSWD for prod is too weak",
    ),
    "missing certificate": (
        "prod", {"tls_certificate": None, "tls_certificate_key": None},
        "production needs the operator's TLS certificate",
    ),
    "unreadable certificate": (
        "prod", {"tls_certificate": "/nonexistent/cert.pem"}, "does not exist",
    ),
    "certificate and key do not match": (
        "prod", {"tls_certificate_key": _other_key}, "do not match",
    ),
    "workers not a number": ("staging", {"odoo_workers": "four"}, "odoo_workers 'four'"),
    "not an Odoo 18 option": (
        "staging", {"odoo_options": {"db_filter": "^dfr$"}}, "db_filter, not an Odoo 18 option"
    ),
    "addons path missing": (
        "staging", {"odoo_addons_src": "/nonexistent/addons"}, "odoo_addons_src /nonexistent"
    ),
    "secrets file open to other users": (
        "prod", {"secrets_file": lambda t: _open_secrets(t / "o.env")}, "run chmod 600",
    ),
    "a newline adding an odoo.conf key": (
        "prod", {"odoo_options": {"email_from": "a@example.org\nlist_db = True"}},
        "odoo_options email_from",
    ),
    "opening the database manager": (
        "prod", {"odoo_options": {"list_db": True}}, "odoo_options list_db: dfr-deploy sets it",
    ),
    "a module name that writes YAML": (
        "prod", {"odoo_modules": ["dfr_base\n    privileged: true"]}, "odoo_modules has",
    ),
    "a newline in postgresql.conf": (
        "prod", {"postgres_options": {"cluster_name": "x\nlisten_addresses = '*'"}},
        "postgres_options cluster_name",
    ),
    "a base image that runs a command": (
        "prod", {"odoo_base_image": "odoo:18.0;touch /tmp/x"}, "is not an image reference",
    ),
    "a domain with a trailing newline": (
        "prod", {"dfr_domain": "erp.example.org\n"}, "dfr_domain",
    ),
    "a publish address that is a name": (
        "prod", {"publish_address": "localhost"}, "publish_address 'localhost'",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_refused_with_one_line_and_host_untouched(
    case, pool, target, base_images, distro_docker_data, tmp_path
):
    env, changes, message = CASES[case]
    changes = {k: (v(tmp_path) if callable(v) else v) for k, v in changes.items()}
    inventory = _inventory(pool, target, env, base_images, distro_docker_data, **changes)
    run = pyinfra(inventory, "deploy.py")
    assert run.returncode != 0
    error = run.last_error_line()
    assert error.startswith("--> pyinfra error"), run.stderr[-2000:]
    assert message in error
    assert "Traceback" not in run.output
    assert target.exec("ls /opt/dfr 2>/dev/null | wc -l") == "0"
    assert target.exec("docker ps -aq | wc -l") == "0"


def test_a_host_whose_key_is_not_recorded_is_not_connected_to(
    pool, target, base_images, distro_docker_data, tmp_path
):
    """Production trusts only known_hosts/prod (here: an empty file in its place)."""
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    inventory = _inventory(pool, target, "prod", base_images, distro_docker_data,
                           ssh_known_hosts_file=str(empty))  # fmt: skip
    run = pyinfra(inventory, "deploy.py")
    assert run.returncode != 0
    assert f"No host key for {target.address} found in known_hosts" in run.stderr
    assert "Traceback" not in run.output
    assert target.exec("ls /opt/dfr 2>/dev/null | wc -l") == "0"
