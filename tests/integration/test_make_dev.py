"""The README's quick start on a newcomer's fresh machine: ``make dev`` in a clean clone brings
the dev stack up, and the URL it prints answers.

The machine is a throw-away target host (``dev-machine``: Debian 12 with the README's
prerequisites and a Docker engine, no Compose plugin, no image), so this machine is left as
found. No registry answers here: the harness stand-ins are loaded into that host's engine as
odoo:18.0, postgres:17 and nginx:stable, and pip installs from wheels of the pinned
requirements built on this machine instead of the package index.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.harness.hosts import TargetHost
from tests.harness.images import dev_machine_image, wheelhouse

PROJECT = Path(__file__).resolve().parents[2]
OFFICIAL = {"odoo": "odoo:18.0", "postgres": "postgres:17", "nginx": "nginx:stable"}
WHEELS = "/srv/wheelhouse"


def newcomer_machine(start_hosts, base_images: dict[str, str], prefix: str) -> TargetHost:
    """A dev-machine host with the stand-ins under the official images' names and the pinned
    requirements' wheels in WHEELS: what make dev needs there, no registry or index."""
    (host,) = start_hosts(dev_machine_image(), prefix=prefix)
    for service, official in OFFICIAL.items():
        host.load_image(base_images[service], official)
    host.exec(
        f"mkdir -p {WHEELS} && tar -C {WHEELS} -x && chmod -R a+rX {WHEELS}",
        input=_tar(wheelhouse()),
    )
    return host


@pytest.fixture(scope="module")
def machine(start_hosts, base_images: dict[str, str], tmp_path_factory) -> TargetHost:
    host = newcomer_machine(start_hosts, base_images, "newcomer")
    clone = tmp_path_factory.mktemp("clone") / "dfr-deploy"
    subprocess.run(["git", "clone", "-q", str(PROJECT), str(clone)], check=True)
    host.exec("tar -C ~dfr -x && chown -R dfr: ~dfr/dfr-deploy", input=_tar(clone, "dfr-deploy"))
    return host


@pytest.fixture(scope="module")
def make_dev(machine: TargetHost) -> subprocess.CompletedProcess[str]:
    """``make dev`` as the newcomer, a sudo user, in the clone (as the README says)."""
    return subprocess.run(
        ["docker", "exec", "-u", "dfr", "-e", "PIP_NO_INDEX=1", "-e", f"PIP_FIND_LINKS={WHEELS}",
         machine.container, "sh", "-c", "cd ~/dfr-deploy && make dev"],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip


def test_make_dev_deploys_the_stack_and_prints_a_url_that_answers(make_dev, machine):
    assert make_dev.returncode == 0, (make_dev.stdout + make_dev.stderr)[-4000:]
    assert "is served at https://localhost/" in make_dev.stderr + make_dev.stdout
    mode = machine.exec("stat -c %a:%U ~dfr/dfr-deploy/secrets/dev.env")
    assert mode == "600:dfr"

    health = machine.exec("curl -fsS -k --max-time 10 https://localhost/web/health")
    assert health == '{"status": "pass"}'
    login = machine.exec(
        "curl -sS -k -o /dev/null -w '%{http_code}' --max-time 10 https://localhost/web/login"
    )
    assert login == "200"


def test_make_dev_builds_the_project_images_on_the_official_ones(make_dev, machine):
    assert make_dev.returncode == 0
    running = dict(
        line.split(" ", 1)
        for line in machine.exec(
            "docker ps --format '{{.Label \"com.docker.compose.service\"}} {{.Image}}'"
        ).splitlines()
    )
    assert sorted(running) == ["nginx", "odoo", "postgres"]
    for service, official in OFFICIAL.items():
        assert running[service].startswith(f"dfr/{service}:")
        layers = "docker image inspect -f '{{.RootFS.Layers}}' "
        built_on, base = machine.exec(layers + running[service]), machine.exec(layers + official)
        assert built_on.startswith(base.rstrip("]")), f"{running[service]} is not on {official}"


def _tar(directory: Path, name: str = ".") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(directory, arcname=name)
    return buffer.getvalue()
