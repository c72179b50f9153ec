"""The bed of the fault tests: one production host per test module with a deployed stack and
data, a good backup of it, and the live state a test must leave unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.hosts import HostPool, TargetHost
from tests.harness.images import docker_ready_image
from tests.harness.pyinfra_run import pyinfra
from tests.integration.backups import backups_in, seed
from tests.integration.faults.bed import live_state
from tests.integration.stack import psql, stack_inventory

# Enough data that a dump and a transfer take a few seconds: room to pull the plug mid-way.
BIG_TABLE = """
CREATE TABLE bulk (id serial PRIMARY KEY, payload text);
INSERT INTO bulk (payload)
SELECT string_agg(md5(i::text || '-' || j::text), '') FROM generate_series(1, 60000) AS i,
       generate_series(1, 128) AS j GROUP BY i;
"""


@pytest.fixture(scope="module")
def prod(start_hosts, pool: HostPool, base_images, distro_docker_data) -> tuple[TargetHost, Path]:
    (host,) = start_hosts(docker_ready_image(), prefix="fault")
    inventory = stack_inventory(pool, [host], "prod", base_images, distro_docker_data)
    run = pyinfra(inventory, "deploy.py")
    assert run.returncode == 0, run.stderr[-3000:]
    seed(host, f"{host.name}.prod.dfr.test")
    psql(host, BIG_TABLE, user="dfr")
    return host, inventory


@pytest.fixture(scope="module")
def good_backup(prod, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("good")
    run = pyinfra(prod[1], "tasks/backup.py", data={"backup_dir": directory})
    assert run.returncode == 0, run.stderr[-3000:]
    (archive,) = backups_in(directory)
    return archive


@pytest.fixture
def state(prod):
    """The live state before a test; the test asserts it is unchanged afterwards."""
    host = prod[0]
    before = live_state(host)
    yield before
    assert live_state(host) == before
