"""The rendered nginx site, for every environment, in the nginx image: it passes ``nginx -t``;
run in front of a stand-in Odoo, it passes Odoo's own answers on and shows the maintenance
page only when Odoo cannot be reached."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.render import render
from tasks.settings import Settings, load_settings
from tasks.tls import self_signed_pair
from tests.harness.docker_cli import docker, owner_labels
from tests.harness.images import nginx_image
from tests.harness.waiting import wait_for
from tests.integration.maintenance import MAINTENANCE_TEXT, answer
from tests.unit.environments import HOST_SHAPE, PROJECT, host_data

NGINX_FILES = PROJECT / "files" / "nginx"  # what its Dockerfile copies into the image
# What the stand-in Odoo answers: its own errors, which nginx must not replace.
ODOO_STANDIN_SITE = """
server {
    listen 8069;
    location = /own-500 { return 500 "Odoo's own 500\\n"; }
    location = /own-503 { add_header Retry-After 120 always; return 503 "Odoo's own 503\\n"; }
    location / { return 200 "Odoo\\n"; }
}
"""


def _site(env: str, tmp_path: Path) -> tuple[Settings, list[str]]:
    """The rendered site of ``env`` with its certificate, as ``docker run`` mounts in the image
    (the image's own files too: the main configuration and the maintenance page)."""
    settings = load_settings(host_data(env, tmp_path), HOST_SHAPE)
    (tmp_path / "dfr.conf").write_text(render("nginx/dfr.conf.j2", settings))
    tls = tmp_path / "tls"
    tls.mkdir()
    cert, key = self_signed_pair(settings.domain)
    (tls / "fullchain.pem").write_bytes(cert)
    (tls / "privkey.pem").write_bytes(key)
    mounts = [
        "-v", f"{NGINX_FILES / 'nginx.conf'}:/etc/nginx/nginx.conf:ro",
        "-v", f"{NGINX_FILES / 'maintenance.html'}:/usr/share/nginx/dfr/maintenance.html:ro",
        "-v", f"{tmp_path / 'dfr.conf'}:/etc/nginx/conf.d/default.conf:ro",
        "-v", f"{tls}:/etc/nginx/tls:ro",
    ]  # fmt: skip
    return settings, mounts


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
@pytest.mark.smoke
def test_rendered_nginx_config_passes_nginx_t(env, tmp_path):
    _, mounts = _site(env, tmp_path)
    result = subprocess.run(
        ["docker", "run", "--rm", *owner_labels("rendered-configs"), "--add-host", "odoo:127.0.0.1",
         *mounts, nginx_image(), "nginx", "-t"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr


@pytest.fixture
def network() -> Iterator[str]:
    name = f"dfr-test-site-{uuid.uuid4().hex[:8]}"
    docker("network", "create", *owner_labels("rendered-configs"), name)
    yield name
    docker("network", "rm", name, check=False)


ADDRESS = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"


def _run(network: str, *args: str) -> str:
    return docker("run", "-d", "--rm", *owner_labels("rendered-configs"), "--network", network,
                  *args)  # fmt: skip


def _curl(address: str, domain: str, path: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["curl", "-sS", "-k", "-i", "--max-time", "10", "--resolve", f"{domain}:443:{address}",
         *args, f"https://{domain}{path}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_odoos_own_errors_pass_and_only_an_unreachable_odoo_gets_the_maintenance_page(
    env, tmp_path, network
):
    settings, mounts = _site(env, tmp_path)
    standin_site = tmp_path / "odoo-standin.conf"
    standin_site.write_text(ODOO_STANDIN_SITE)
    site_mount = f"{standin_site}:/etc/nginx/conf.d/default.conf:ro"
    odoo = _run(network, "--network-alias", "odoo", "-v", site_mount, nginx_image())
    proxy = _run(network, *mounts, nginx_image())
    try:
        address = docker("inspect", "-f", ADDRESS, proxy)
        domain = settings.domain

        def odoo_answers() -> bool:
            reply = _curl(address, domain, "/")
            return reply.returncode == 0 and answer(reply)[0] == 200

        wait_for("the proxy to pass the stand-in Odoo's answer", odoo_answers, timeout=30)

        status, headers, body = answer(_curl(address, domain, "/own-500"))
        assert (status, body) == (500, "Odoo's own 500\n") and "retry-after" not in headers
        status, headers, body = answer(_curl(address, domain, "/own-503"))
        assert (status, body, headers["retry-after"]) == (503, "Odoo's own 503\n", "120")

        docker("stop", "-t", "1", odoo)
        status, headers, body = answer(_curl(address, domain, "/web/login"))
        assert status == 503 and headers["retry-after"] == "30" and MAINTENANCE_TEXT in body
        assert ("strict-transport-security" in headers) == (env != "dev")
    finally:
        docker("rm", "-f", odoo, proxy, check=False)
