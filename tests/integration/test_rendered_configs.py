"""The rendered nginx site passes ``nginx -t`` in the nginx image, for every environment."""

from __future__ import annotations

import subprocess

import pytest

from tasks.render import render
from tasks.settings import load_settings
from tasks.tls import self_signed_pair
from tests.harness.docker_cli import owner_labels
from tests.harness.images import nginx_image
from tests.unit.environments import HOST_SHAPE, PROJECT, host_data


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
@pytest.mark.smoke
def test_rendered_nginx_config_passes_nginx_t(env, tmp_path):
    settings = load_settings(host_data(env, tmp_path), HOST_SHAPE)
    (tmp_path / "dfr.conf").write_text(render("nginx/dfr.conf.j2", settings))
    tls = tmp_path / "tls"
    tls.mkdir()
    cert, key = self_signed_pair(settings.domain)
    (tls / "fullchain.pem").write_bytes(cert)
    (tls / "privkey.pem").write_bytes(key)
    result = subprocess.run(
        ["docker", "run", "--rm", *owner_labels("rendered-configs"), "--add-host", "odoo:127.0.0.1",
         "-v", f"{PROJECT / 'files/nginx/nginx.conf'}:/etc/nginx/nginx.conf:ro",
         "-v", f"{tmp_path / 'dfr.conf'}:/etc/nginx/conf.d/default.conf:ro",
         "-v", f"{tls}:/etc/nginx/tls:ro",
         nginx_image(), "nginx", "-t"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr
