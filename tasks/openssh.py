"""OpenSSH's ``ssh`` for big transfers, alongside pyinfra's paramiko connection.

paramiko does its per-packet work in Python, one thread for the whole connection, so a
transfer through it is bounded by one core of the controller (about 370 MB/s on our 2-core
test VM, and the CPU it takes is taken from whatever else runs there); OpenSSH moves the same
bytes in C at a fraction of the CPU. ``ssh_command`` builds the ``ssh`` command line that
reaches the very host paramiko is connected to: the address and user of that connection, its
key file or the user's agent and default keys, and a known_hosts file holding only the host key
paramiko verified (so ``ssh`` trusts exactly that host, whatever the user's own files say). It
returns None, and transfers stay on paramiko, wherever ``ssh`` cannot stand in without asking:
no ``ssh`` program, a password or an encrypted key, a proxied connection, host data
``openssh_transfers=False``, or a first ``ssh … true`` that fails.
"""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from paramiko import PKey
from pyinfra import host, logger
from pyinfra.connectors.ssh import SSHConnector

# AES-GCM first: with AES instructions it is cheaper than chacha20-poly1305 (OpenSSH's first).
CIPHERS = "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com"
ALIAS = "dfr-deploy-target"

_checked: dict[str, list[str] | None] = {}


def ssh_command(remote_command: str) -> list[str] | None:
    """The argv that runs ``remote_command`` on the current host through OpenSSH, or None."""
    if host.name not in _checked:
        _checked[host.name] = _working_options()
    options = _checked[host.name]
    return None if options is None else [*options, remote_command]


def _working_options() -> list[str] | None:
    options = _options()
    if options is None:
        return None
    try:
        probe = subprocess.run(
            [*options, "true"], stdin=subprocess.DEVNULL, capture_output=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        logger.info(f"{host.name}: transfers go through paramiko (ssh: {error})")
        return None
    if probe.returncode != 0:
        said = probe.stderr.decode(errors="replace").strip().splitlines() or ["no output"]
        logger.info(f"{host.name}: transfers go through paramiko (ssh: {said[-1]})")
        return None
    logger.info(f"{host.name}: transfers go through OpenSSH ({options[0]})")
    return options


def _options() -> list[str] | None:
    data = host.data
    program = shutil.which("ssh")
    if not isinstance(host.connector, SSHConnector) or program is None:
        return None
    if data.get("openssh_transfers") is False or data.get("ssh_password"):
        return None
    if data.get("ssh_key_password"):
        return None
    transport = host.connector.client.get_transport()
    if transport is None or not isinstance(transport.sock, socket.socket):
        return None  # a proxy command or jump host: only paramiko knows the way
    address, port = transport.getpeername()[:2]
    identity: list[str] = []
    if data.get("ssh_key"):
        key = _key_file(str(data.get("ssh_key")))
        if key is None:
            return None
        identity = ["-i", str(key), "-o", "IdentitiesOnly=yes"]
    return [
        program,
        "-F", "/dev/null",  # the settings below, not the user's ssh_config
        "-o", "BatchMode=yes",
        "-o", f"HostKeyAlias={ALIAS}",
        "-o", f"UserKnownHostsFile={_pinned_host_key(transport.get_remote_server_key())}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"Ciphers={CIPHERS}",
        "-o", "ServerAliveInterval=15",
        "-o", "LogLevel=ERROR",
        *identity,
        "-p", str(port),
        "-l", transport.get_username(),
        address,
        "--",
    ]  # fmt: skip


def _key_file(name: str) -> Path | None:
    """The key file as pyinfra finds it: as given (``~`` expanded), else next to the deploy."""
    given = Path(name).expanduser()
    for candidate in (given, Path(host.state.cwd or ".") / given):
        if candidate.is_file():
            return candidate.resolve()
    return None


def _pinned_host_key(key: PKey) -> str:
    """A known_hosts file that trusts only ``key``, under ``ALIAS``."""
    directory = tempfile.mkdtemp(prefix="dfr-known-host-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    path = Path(directory) / "known_hosts"
    path.write_text(f"{ALIAS} {key.get_name()} {key.get_base64()}\n")
    return str(path)
