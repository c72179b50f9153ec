"""``make dev`` in a clean clone brings the dev stack up on this machine, and the URL answers.

No registry is reachable here, so the harness stand-ins play odoo:18.0, postgres:17 and
nginx:stable (tagged under those names only while this test runs, if they are absent).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.docker_cli import docker, image_exists

PROJECT = Path(__file__).resolve().parents[2]
OFFICIAL = {"odoo": "odoo:18.0", "postgres": "postgres:17", "nginx": "nginx:stable"}


@pytest.fixture
def official_images(base_images: dict[str, str]) -> Iterator[None]:
    added = []
    for service, name in OFFICIAL.items():
        if not image_exists(name):
            docker("tag", base_images[service], name)
            added.append(name)
    yield
    for name in added:
        docker("rmi", name, check=False)


@pytest.fixture
def clean_clone(tmp_path: Path) -> Iterator[Path]:
    clone = tmp_path / "dfr-deploy"
    subprocess.run(["git", "clone", "-q", str(PROJECT), str(clone)], check=True)
    images_before = set(docker("images", "-q", "dfr/*").split())
    yield clone
    subprocess.run(
        "docker compose -p dfr-dev down -v --remove-orphans; rm -rf /opt/dfr/dev",
        shell=True, cwd="/", capture_output=True, check=False,
    )  # fmt: skip
    for image in set(docker("images", "-q", "dfr/*").split()) - images_before:
        docker("rmi", "-f", image, check=False)


def test_make_dev_deploys_the_stack_and_prints_a_url_that_answers(official_images, clean_clone):
    # The clone shares this checkout's venv (same pinned requirements) to save the install.
    venv = Path(sys.prefix)
    run = subprocess.run(
        ["make", "dev", f"VENV={venv}"], cwd=clean_clone, capture_output=True, text=True,
        timeout=1800, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    assert "is served at https://localhost/" in run.stderr + run.stdout
    assert (clean_clone / "secrets" / "dev.env").stat().st_mode & 0o777 == 0o600

    health = subprocess.run(
        ["curl", "-fsS", "-k", "--max-time", "10", "https://localhost/web/health"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert health.stdout.strip() == '{"status": "pass"}', health.stderr
    login = subprocess.run(
        ["curl", "-sS", "-k", "-o", "/dev/null", "-w", "%{http_code}",
         "https://localhost/web/login"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert login.stdout == "200"
