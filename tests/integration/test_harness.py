"""The harness itself: hosts answer over SSH as a sudo user, and teardown leaves nothing."""

from __future__ import annotations

from pathlib import Path

from tests.harness.docker_cli import LABEL, docker
from tests.harness.hosts import HostPool, container_cgroup_dirs, leftovers, remove_leftovers
from tests.harness.images import base_image, docker_ready_image
from tests.integration.conftest import ssh_host


def test_teardown_leaves_no_container_volume_network_or_cgroup(tmp_path, docker_image_on):
    pool = HostPool(tmp_path)
    (host,) = pool.start(docker_ready_image(), prefix="teardown")
    infra = ssh_host(host)
    assert infra.check_output("id -un") == "root"  # sudo works for the SSH user
    docker_image_on(host, base_image())
    nested = infra.check_output("docker run -d --name nested %s sleep 300", base_image())
    # Only this pool's cgroups count: other test workers start and stop hosts meanwhile.
    ours = {docker("inspect", "-f", "{{.Id}}", host.container), nested}
    assert ours <= cgroup_owners()  # the host and its nested container

    pool.close()

    assert leftovers(pool.run_id) == {"containers": [], "volumes": [], "networks": []}
    assert ours & cgroup_owners() == set()


def cgroup_owners() -> set[str]:
    """Container IDs that have a cgroup directory on this machine."""
    return {Path(directory).name for directory in container_cgroup_dirs()}


def test_leftovers_of_an_interrupted_run_are_removed_by_label(pool: HostPool):
    docker("volume", "create", "--label", LABEL, "--label", f"{LABEL}.run=crashed", "crashed-vol")
    docker("network", "create", "--label", LABEL, "--label", f"{LABEL}.run=crashed", "crashed-net")
    docker("run", "-d", "--name", "crashed-host", "--label", LABEL,
           "--label", f"{LABEL}.run=crashed", base_image(), "sleep", "300")  # fmt: skip
    remove_leftovers(keep=pool.run_id)
    assert leftovers("crashed") == {"containers": [], "volumes": [], "networks": []}
