"""install_docker on a bare Debian host over real SSH, offline (distro) mode."""

from __future__ import annotations

import json
import re

import pytest

from tests.harness.hosts import HostPool, TargetHost
from tests.harness.images import base_image, target_image
from tests.harness.pyinfra_run import PyinfraRun, pyinfra
from tests.integration.conftest import group_data_file, ssh_host

DEPLOY = "tests/integration/deploys/install_docker.py"


@pytest.fixture(scope="module")
def target(start_hosts, pool: HostPool) -> TargetHost:
    (host,) = start_hosts(target_image(), prefix="docker")
    return host


@pytest.fixture(scope="module")
def inventory(pool: HostPool, target: TargetHost, distro_docker_data):
    return pool.inventory([target], extra=distro_docker_data)


@pytest.fixture(scope="module")
def first_run(inventory) -> PyinfraRun:
    run = pyinfra(inventory, DEPLOY)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


@pytest.mark.smoke
def test_first_run_installs_without_errors(first_run: PyinfraRun, target: TargetHost):
    assert first_run.errors() == []
    assert any("docker.io" in name for name in first_run.changed(target.name))


def test_docker_service_is_active_and_enabled(first_run, target):
    docker = ssh_host(target).service("docker")
    assert docker.is_running
    assert docker.is_enabled


def test_compose_is_v2(first_run, target):
    version = ssh_host(target).check_output("docker compose version --short")
    assert re.match(r"^v?2\.\d+\.\d+", version), version


def test_daemon_json_rotates_logs_and_keeps_containers_on_restart(first_run, target):
    config = json.loads(ssh_host(target).file("/etc/docker/daemon.json").content_string)
    assert config["log-driver"] == "json-file"
    assert config["log-opts"] == {"max-size": "10m", "max-file": "3"}
    assert config["live-restore"] is True


def test_docker_runs_a_local_image_inside_the_host(first_run, target, docker_image_on):
    image = base_image()
    docker_image_on(target, image)
    out = ssh_host(target).check_output(f"docker run --rm {image} cat /etc/debian_version")
    assert out.startswith("12.")


@pytest.mark.smoke
def test_second_run_changes_nothing(first_run, inventory, target):
    again = pyinfra(inventory, DEPLOY)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.ops, "the run reported no operations"
    assert again.changed() == [] and again.errors() == []
    assert all(op.no_change == [target.name] for op in again.ops)


def test_daemon_setting_change_is_previewed_then_applied_with_one_restart(
    first_run, inventory, target
):
    infra = ssh_host(target)
    before_pid = infra.check_output("systemctl show -p MainPID --value docker")
    before_starts = _docker_starts(infra)
    group_data_file(inventory, 'docker_log_max_size = "25m"\n')
    try:
        preview = pyinfra(inventory, DEPLOY, "--dry", "--diff", execute=False, json_output=False)
        assert preview.returncode == 0, preview.stderr[-3000:]
        assert re.search(r'-\s+"max-size": "10m"', preview.output)
        assert re.search(r'\+\s+"max-size": "25m"', preview.output)
        assert '"max-size": "10m"' in infra.file("/etc/docker/daemon.json").content_string
        assert infra.check_output("systemctl show -p MainPID --value docker") == before_pid

        applied = pyinfra(inventory, DEPLOY)
        assert applied.returncode == 0, applied.stderr[-3000:]
        assert sorted(applied.changed(target.name)) == [
            "Install Docker | Check the engine and Compose v2 answer",
            "Install Docker | Configure the Docker daemon (/etc/docker/daemon.json)",
            "Install Docker | Restart Docker for the new daemon.json",
        ]
        assert _docker_starts(infra) == before_starts + 1
        assert infra.check_output("systemctl show -p MainPID --value docker") != before_pid
        log_config = infra.check_output(
            "docker run -d %s sleep 30 | xargs docker inspect -f '{{json .HostConfig.LogConfig}}'",
            base_image(),
        )
        assert json.loads(log_config)["Config"]["max-size"] == "25m"
    finally:
        (inventory.parent / "group_data" / f"{inventory.stem}.py").unlink()


def _docker_starts(infra) -> int:
    """How many times systemd has started dockerd since the host booted."""
    out = infra.run("journalctl -b -u docker -o cat --no-pager | grep -c 'Starting docker.service'")
    return int(out.stdout.strip() or 0)
