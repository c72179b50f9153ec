"""Deploy timings on one SSH target host: cold, no-op re-run, config-change re-run.

    .venv/bin/python -m bench.deploy_times

Uses the test harness (a docker-ready Debian 12 target, stand-in base images uploaded).
Prints a Markdown table; the numbers go into docs/benchmarks.md by hand.
"""

from __future__ import annotations

from bench.target import prod_target
from tests.harness.pyinfra_run import pyinfra
from tests.integration.conftest import group_data_file


def main() -> None:
    with prod_target() as (_, inventory, _):
        rows = []
        for label in ("cold deploy (base images uploaded, images built)", "no-op re-run"):
            run = pyinfra(inventory, "deploy.py")
            assert run.returncode == 0, run.stderr[-2000:]
            rows.append((label, run.seconds, len(run.changed())))
        group_data_file(inventory, "odoo_workers = 3\n")
        run = pyinfra(inventory, "deploy.py")
        assert run.returncode == 0, run.stderr[-2000:]
        rows.append(("config change (workers) re-run", run.seconds, len(run.changed())))
    print("| run | seconds | operations changed |")
    print("|---|---|---|")
    for label, seconds, changed in rows:
        print(f"| {label} | {seconds:.1f} | {changed} |")


if __name__ == "__main__":
    main()
