"""Bring a Compose project up only when it differs from what runs, gated on health."""

from __future__ import annotations

import shlex
from collections.abc import Generator, Sequence

from pyinfra import host
from pyinfra.api import operation
from pyinfra.api.operation import OperationMeta

from tasks.changes import changes
from tasks.facts import ComposeProject


def out_of_date(directory: str, project: str) -> list[str]:
    """Services whose container is missing, stale, stopped or not healthy."""
    found = host.get_fact(ComposeProject, directory=directory, project=project)
    if not found or not found["want"]:
        return ["(not deployed)"]
    stale = []
    for service, wanted in found["want"].items():
        running = found["have"].get(service)
        if (
            not running
            or running["hash"] != wanted["hash"]
            or running["state"] != "running"
            or "(healthy)" not in running["status"]
        ):
            stale.append(service)
    return stale


@operation()
def compose_up(
    directory: str,
    project: str,
    inputs: Sequence[OperationMeta] = (),
    wait_timeout: int = 600,
) -> Generator[str, None, None]:
    """
    ``docker compose up -d --wait`` when a service differs from compose.yaml, is not running
    or not healthy, or when one of ``inputs`` (the operations writing its files) changes.
    """
    stale = out_of_date(directory, project)
    if not stale and not any(changes(op) for op in inputs):
        host.noop(f"{project}: every service is up to date and healthy")
        return
    yield (
        f"cd {shlex.quote(directory)} && docker compose -p {shlex.quote(project)} up -d "
        f"--wait --wait-timeout {wait_timeout} --remove-orphans"
    )
