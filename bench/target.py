"""One production-like target for a benchmark: the test harness's docker-ready Debian 12 host,
the stand-in base images uploaded from this machine, the prod inventory written for it."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tasks.docker_settings import file_sha256
from tests.harness.hosts import HostPool, TargetHost, remove_leftovers
from tests.harness.images import (
    COMPOSE_BINARY,
    docker_ready_image,
    nginx_image,
    odoo_double_image,
    postgres_image,
)
from tests.integration.stack import stack_inventory


def stand_ins() -> tuple[dict[str, str], dict[str, str]]:
    """The base images a benchmark host gets (the harness stand-ins, uploaded) and the host data
    that installs Docker from the distribution with the harness's Compose plugin."""
    bases = {"odoo": odoo_double_image(), "postgres": postgres_image(), "nginx": nginx_image()}
    docker_data = {
        "docker_install_mode": "distro",
        "docker_compose_plugin_src": str(COMPOSE_BINARY),
        "docker_compose_plugin_sha256": file_sha256(COMPOSE_BINARY),
    }
    return bases, docker_data


@contextlib.contextmanager
def prod_target() -> Iterator[tuple[TargetHost, Path, Path]]:
    """The host, its prod inventory and a scratch directory; all removed afterwards."""
    remove_leftovers()
    bases, docker_data = stand_ins()
    with tempfile.TemporaryDirectory() as tmp:
        pool = HostPool(Path(tmp))
        try:
            (host,) = pool.start(docker_ready_image(), prefix="bench")
            yield host, stack_inventory(pool, [host], "prod", bases, docker_data), Path(tmp)
        finally:
            pool.close()
