"""Plan a @deploy against @fake hosts and return the commands it would run (no SSH, no Docker)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from pyinfra.api import Config, Inventory, State
from pyinfra.api.connect import connect_all
from pyinfra.api.deploy import add_deploy
from pyinfra.api.operations import run_ops
from pyinfra.connectors.fake import FakeConnector


def os_release(os_id: str, version: str, codename: str) -> str:
    return "\n".join(
        [
            f"os_id={os_id}",
            f"os_version={version}",
            f"os_codename={codename}",
            "arch=amd64",
            "init=systemd",
            "engine_packages=",
            "dockerd=",
            "engine_version=",
            "compose_version=",
        ]
    )


@dataclass
class Plan:
    commands: list[str]
    uploads: dict[str, str] = field(default_factory=dict)  # remote path -> content

    @property
    def text(self) -> str:
        return "\n".join(self.commands)


def plan(deploy: Callable[..., Any], survey: str, data: dict[str, Any] | None = None) -> Plan:
    """Run ``deploy`` on one fake host whose Docker survey answers ``survey``."""
    host_data = {
        "fake_delay": 0,
        "fake_delay_jitter": 0,
        "fake_responses": {"os_id=${ID:-}": survey},
        **(data or {}),
    }
    uploads: dict[str, str] = {}

    def record_upload(self, filename_or_io, remote_filename, *args, **kwargs) -> bool:
        if isinstance(filename_or_io, str | Path):
            content = Path(filename_or_io).read_bytes()
        else:
            content = filename_or_io.read()
        uploads[remote_filename] = content.decode() if isinstance(content, bytes) else content
        return True

    inventory = Inventory(([("@fake/target", host_data)], {}))
    state = State(inventory, Config())
    with mock.patch.object(FakeConnector, "put_file", record_upload):
        connect_all(state)
        add_deploy(state, deploy)
        run_ops(state)
    (host,) = list(inventory)
    return Plan([str(command) for command in host.connector.executed_commands], uploads)
