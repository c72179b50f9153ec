"""Bad input to install_docker: one clear line, non-zero exit, the host untouched."""

from __future__ import annotations

import pytest

from tests.harness.hosts import HostPool, TargetHost
from tests.harness.images import target_image
from tests.harness.pyinfra_run import pyinfra
from tests.integration.conftest import ssh_host

DEPLOY = "tests/integration/deploys/install_docker.py"


@pytest.fixture(scope="module")
def target(start_hosts, pool: HostPool) -> TargetHost:
    (host,) = start_hosts(target_image(), prefix="badinput")
    return host


def _assert_refused(run, message: str, target: TargetHost) -> None:
    assert run.returncode != 0
    error = run.last_error_line()
    assert error.startswith("--> pyinfra error"), run.stderr[-2000:]
    assert message in error
    assert "Traceback" not in run.output
    infra = ssh_host(target)
    assert not infra.file("/etc/docker").exists
    assert not infra.package("docker.io").is_installed
    assert not infra.package("curl").is_installed


def test_unknown_install_mode(pool, target, distro_docker_data):
    inventory = pool.inventory([target], {**distro_docker_data, "docker_install_mode": "snap"})
    _assert_refused(pyinfra(inventory, DEPLOY), "docker_install_mode 'snap' is unknown", target)


def test_compose_plugin_path_missing(pool, target, distro_docker_data, tmp_path):
    missing = tmp_path / "docker-compose"
    inventory = pool.inventory(
        [target], {**distro_docker_data, "docker_compose_plugin_src": str(missing)}
    )
    _assert_refused(pyinfra(inventory, DEPLOY), f"{missing} does not exist", target)


def test_compose_plugin_checksum_mismatch(pool, target, distro_docker_data):
    inventory = pool.inventory(
        [target], {**distro_docker_data, "docker_compose_plugin_sha256": "0" * 64}
    )
    _assert_refused(pyinfra(inventory, DEPLOY), "not the expected 000000", target)


def test_unsupported_os(pool, target, distro_docker_data):
    inventory = pool.inventory([target], distro_docker_data)
    target.exec(
        "cp /etc/os-release /etc/os-release.orig && "
        "sed -i 's/^VERSION_ID=.*/VERSION_ID=\"10\"/' /etc/os-release"
    )
    try:
        run = pyinfra(inventory, DEPLOY)
    finally:
        target.exec("cp /etc/os-release.orig /etc/os-release")
    _assert_refused(run, "runs debian 10, which dfr-deploy does not support", target)
