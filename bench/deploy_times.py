"""Deploy timings on one SSH target host: cold, no-op re-run, config-change re-run.

    .venv/bin/python -m bench.deploy_times

Uses the test harness (a docker-ready Debian 12 target, stand-in base images uploaded).
Prints a Markdown table; the numbers go into docs/benchmarks.md by hand.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tasks.docker_settings import file_sha256
from tests.harness.hosts import HostPool, remove_leftovers
from tests.harness.images import (
    COMPOSE_BINARY,
    docker_ready_image,
    nginx_image,
    odoo_double_image,
    postgres_image,
)
from tests.harness.pyinfra_run import pyinfra
from tests.integration.conftest import group_data_file
from tests.integration.stack import stack_inventory


def main() -> None:
    remove_leftovers()
    bases = {"odoo": odoo_double_image(), "postgres": postgres_image(), "nginx": nginx_image()}
    docker_data = {
        "docker_install_mode": "distro",
        "docker_compose_plugin_src": str(COMPOSE_BINARY),
        "docker_compose_plugin_sha256": file_sha256(COMPOSE_BINARY),
    }
    with tempfile.TemporaryDirectory() as tmp:
        pool = HostPool(Path(tmp))
        try:
            (host,) = pool.start(docker_ready_image(), prefix="bench")
            inventory = stack_inventory(pool, [host], "prod", bases, docker_data)
            rows = []
            for label in ("cold deploy (base images uploaded, images built)", "no-op re-run"):
                run = pyinfra(inventory, "deploy.py")
                assert run.returncode == 0, run.stderr[-2000:]
                rows.append((label, run.seconds, len(run.changed())))
            group_data_file(inventory, "odoo_workers = 3\n")
            run = pyinfra(inventory, "deploy.py")
            assert run.returncode == 0, run.stderr[-2000:]
            rows.append(("config change (workers) re-run", run.seconds, len(run.changed())))
        finally:
            pool.close()
    print("| run | seconds | operations changed |")
    print("|---|---|---|")
    for label, seconds, changed in rows:
        print(f"| {label} | {seconds:.1f} | {changed} |")


if __name__ == "__main__":
    main()
