"""``make dev`` with an addons repository, in a clean clone on a fresh machine: the repository's
modules come with the image, the project's own addons stay bind-mounted for live editing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.harness.hosts import TargetHost
from tests.integration.test_make_dev import WHEELS, _tar, newcomer_machine
from tests.unit.addon_repos import Upstream

PROJECT = Path(__file__).resolve().parents[2]
SETTINGS = """
odoo_modules = ["dfr_base", "oca_reports"]
odoo_addons_repositories = [
    # beside the clone: a path relative to the project, kept as written in addons.lock
    {"name": "oca", "url": "../upstreams/oca.git", "ref": "18.0"},
]
"""


@pytest.fixture(scope="module")
def machine(start_hosts, base_images: dict[str, str], tmp_path_factory) -> TargetHost:
    host = newcomer_machine(start_hosts, base_images, "devaddons")
    work = tmp_path_factory.mktemp("dev-addons")
    upstream = Upstream(work, "oca")
    upstream.module("oca_base_tools")
    upstream.module("oca_reports", depends=("oca_base_tools", "web"))
    upstream.commit("two modules")
    host.exec(
        "mkdir -p ~dfr/upstreams && tar -C ~dfr/upstreams -x && chown -R dfr: ~dfr/upstreams",
        input=_tar(upstream.bare, "oca.git"),
    )
    clone = work / "dfr-deploy"
    subprocess.run(["git", "clone", "-q", str(PROJECT), str(clone)], check=True)
    with (clone / "group_data" / "dev.py").open("a") as dev:
        dev.write(SETTINGS)
    host.exec("tar -C ~dfr -x && chown -R dfr: ~dfr/dfr-deploy", input=_tar(clone, "dfr-deploy"))
    return host


def _as_newcomer(machine: TargetHost, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "exec", "-u", "dfr", "-e", "PIP_NO_INDEX=1", "-e", f"PIP_FIND_LINKS={WHEELS}",
         machine.container, "sh", "-c", f"cd ~/dfr-deploy && {command}"],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def make_dev(machine: TargetHost) -> subprocess.CompletedProcess[str]:
    refused = _as_newcomer(machine, "make dev")
    assert refused.returncode != 0
    assert "oca: it is not in addons.lock: run make addons_update" in refused.stderr
    updated = _as_newcomer(machine, "make addons_update")
    assert updated.returncode == 0, (updated.stdout + updated.stderr)[-3000:]
    assert "oca (../upstreams/oca.git 18.0): new, at " in updated.stdout
    return _as_newcomer(machine, "make dev")


def _in_odoo(machine: TargetHost, command: str) -> str:
    return machine.exec(
        f"docker exec $(docker ps -q --filter label=com.docker.compose.service=odoo) {command}"
    )


def test_make_dev_installs_the_repositorys_modules_from_the_image(make_dev, machine):
    assert make_dev.returncode == 0, (make_dev.stdout + make_dev.stderr)[-4000:]
    rows = machine.exec(
        "docker exec $(docker ps -q --filter label=com.docker.compose.service=postgres) "
        'psql -X -U postgres -d dfr -tA -c "SELECT name, state FROM ir_module_module '
        "WHERE name LIKE 'oca%' ORDER BY name\""
    )
    assert rows.split() == ["oca_base_tools|installed", "oca_reports|installed"]
    assert _in_odoo(machine, "ls /opt/dfr-addons/oca").split() == [
        "oca_base_tools", "oca_reports"
    ]  # fmt: skip


def test_make_dev_keeps_the_own_addons_bind_mounted_for_live_editing(make_dev, machine):
    assert make_dev.returncode == 0
    machine.exec("echo edited >~dfr/dfr-deploy/files/addons/dfr_base/live.txt")
    assert _in_odoo(machine, "cat /opt/dfr-own-addons/dfr_base/live.txt") == "edited"
