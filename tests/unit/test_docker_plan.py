"""The docker-ce plan on Debian 12 and Ubuntu 24.04. Docker's repository cannot be reached from
here, so this mode is verified by its plan (the commands it would run), not by an install."""

from __future__ import annotations

import json

import pytest

from tasks.docker import DOCKER_CE_PACKAGES, DOCKER_KEY_FINGERPRINT, install_docker
from tests.unit.plan import Plan, os_release, plan


def _install_line(docker_plan: Plan) -> list[str]:
    return next(c.split() for c in docker_plan.commands if "apt-get" in c and "install docker" in c)


@pytest.mark.parametrize(
    ("os_id", "version", "codename"),
    [("debian", "12", "bookworm"), ("ubuntu", "24.04", "noble")],
)
def test_docker_ce_plan_adds_pinned_repository_and_installs_the_five_packages(
    os_id, version, codename
):
    docker_plan = plan(install_docker, os_release(os_id, version, codename))
    repo = f"https://download.docker.com/linux/{os_id}"

    key_download = next(c for c in docker_plan.commands if f"{repo}/gpg" in c)
    assert f'[ "$got" != {DOCKER_KEY_FINGERPRINT} ]' in key_download
    assert key_download.endswith(
        "mv /etc/apt/keyrings/docker.asc.download /etc/apt/keyrings/docker.asc"
    )

    sources = docker_plan.uploads["/etc/apt/sources.list.d/docker.sources"]
    assert f"URIs: {repo}" in sources
    assert f"Suites: {codename}" in sources
    assert "Components: stable" in sources
    assert "Architectures: amd64" in sources
    assert "Signed-By: /etc/apt/keyrings/docker.asc" in sources

    install = _install_line(docker_plan)
    assert [pkg for pkg in install if pkg in DOCKER_CE_PACKAGES] == DOCKER_CE_PACKAGES
    assert "docker.io" not in install
    # the repository is refreshed after it is added and before the packages are installed
    order = docker_plan.commands
    key_at = order.index(key_download)
    update_at = max(i for i, c in enumerate(order) if c == "apt-get update")
    install_at = next(i for i, c in enumerate(order) if "install docker-ce" in c)
    assert key_at < update_at < install_at


def test_daemon_json_is_written_before_the_engine_is_installed():
    docker_plan = plan(install_docker, os_release("debian", "12", "bookworm"))
    daemon = json.loads(docker_plan.uploads["/etc/docker/daemon.json"])
    assert daemon["log-opts"] == {"max-size": "10m", "max-file": "3"}
    assert daemon["live-restore"] is True
    chmod_at = docker_plan.commands.index("chmod 644 /etc/docker/daemon.json")
    install_at = next(i for i, c in enumerate(docker_plan.commands) if "install docker-ce" in c)
    assert chmod_at < install_at


def test_prerequisites_are_installed_by_the_deploy():
    docker_plan = plan(install_docker, os_release("debian", "12", "bookworm"))
    first_install = next(c for c in docker_plan.commands if "apt-get" in c and " install " in c)
    assert first_install.split()[-3:] == ["ca-certificates", "curl", "gnupg"]
