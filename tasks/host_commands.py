"""A shell command run on the current host from a python callback, as its operations run."""

from __future__ import annotations

from pyinfra import host
from pyinfra.connectors.util import CommandOutput


def run_on_host(command: str) -> tuple[bool, CommandOutput]:
    """``command`` with the host's own sudo setting (a callback gets no global arguments)."""
    return host.run_shell_command(command, _sudo=bool(host.data.get("_sudo")))
