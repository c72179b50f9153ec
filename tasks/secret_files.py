"""Secret-bearing files: uploaded 0600, never shown by --diff, never staged world-readable."""

from __future__ import annotations

from collections.abc import Generator
from io import StringIO

from pyinfra import host, state
from pyinfra.api import operation
from pyinfra.facts.server import Home
from pyinfra.operations import files


@operation()
def secret_file(dest: str, content: str, mode: str = "0600") -> Generator:
    """Like files.put, but the content never reaches --diff output (only "content hidden")."""
    show_diff = state.config.DIFF
    state.config.DIFF = False
    try:
        yield from files.put._inner(
            src=StringIO(content),
            dest=dest,
            user="root",
            group="root",
            mode=mode,
            create_remote_dir=False,
        )
    finally:
        state.config.DIFF = show_diff


def private_upload_dir() -> str | None:
    """With sudo, pyinfra stages uploads in a temp dir first: make it one only we can read."""
    if not host.data.get("_sudo"):
        return None
    home = host.get_fact(Home, _sudo=False) or "/tmp"
    path = f"{home}/.dfr-upload"
    files.directory(
        name="Private staging directory for uploads", path=path, mode="0700", _sudo=False
    )
    return path
