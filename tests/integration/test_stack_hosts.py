"""deploy.py across hosts: two staging hosts in one run, and a host whose ports are taken."""

from __future__ import annotations

import pytest

from tests.harness.hosts import HostPool
from tests.harness.images import base_image, docker_ready_image
from tests.harness.pyinfra_run import pyinfra
from tests.integration.stack import curl, stack_inventory


@pytest.fixture(scope="module")
def two_hosts(start_hosts, pool: HostPool):
    return start_hosts(docker_ready_image(), count=2, prefix="staging")


def test_two_hosts_deploy_in_one_run_each_with_its_own_domain_and_certificate(
    pool, two_hosts, base_images, distro_docker_data
):
    inventory = stack_inventory(pool, two_hosts, "staging", base_images, distro_docker_data)
    run = pyinfra(inventory, "deploy.py")
    assert run.returncode == 0, run.stderr[-4000:]
    for host in two_hosts:
        domain = f"{host.name}.staging.dfr.test"
        reply = curl(host, domain, f"https://{domain}/web/health", "-v")
        assert reply.returncode == 0, reply.stderr[-2000:]
        assert f"subject: CN={domain}" in reply.stderr
        assert f"server_name {domain};" in host.exec("cat /opt/dfr/staging/config/nginx/dfr.conf")
    # in parallel: every operation ran on both hosts within the same run
    names = sorted(host.name for host in two_hosts)
    assert all(sorted(op.changed + op.no_change) == names for op in run.ops)


def test_ports_taken_by_another_program_stop_the_run_before_any_change(
    pool, base_images, distro_docker_data, docker_image_on
):
    (host,) = pool.start(docker_ready_image(), prefix="busy")
    docker_image_on(host, base_image())
    host.exec(f"docker run -d --name squatter -p 443:4443 {base_image()} sleep 600")
    inventory = stack_inventory(pool, [host], "staging", base_images, distro_docker_data)
    run = pyinfra(inventory, "deploy.py")
    assert run.returncode != 0
    assert "port 443 is already in use by another program" in run.last_error_line()
    assert host.exec("test -e /opt/dfr && echo present || echo absent") == "absent"
    pool.remove(host)
