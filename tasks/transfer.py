"""Big transfers between this machine and a host over the deploy's own SSH connection.

Bytes stream through one SSH channel (or a local process for ``@local``) in 1 MiB chunks, with
progress lines (bytes, rate, ETA), a sha256 of what passed, and the remote exit status checked.
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from pyinfra import host, logger
from pyinfra.connectors.ssh import SSHConnector

CHUNK = 1 << 20


class TransferError(RuntimeError):
    pass


class Progress:
    """Logs bytes, rate and ETA at most every ``every`` seconds, and once at the end."""

    def __init__(self, label: str, total: int | None, every: float = 2.0) -> None:
        self.label, self.total, self.every = label, total, every
        self.done = 0
        self.started = self.last = time.monotonic()

    def add(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            logger.info(self.line(now))

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self.started, 1e-6)
        rate = self.done / elapsed
        text = f"{self.label}: {self.done / 1e6:,.1f} MB at {rate / 1e6:,.1f} MB/s"
        if self.total:
            left = max(self.total - self.done, 0) / rate if rate else 0
            text += f", {min(100, 100 * self.done // self.total)} %, ETA {left:.0f} s"
        return text

    def finish(self) -> float:
        seconds = time.monotonic() - self.started
        logger.info(self.line() + f", {seconds:.1f} s")
        return seconds


def _remote(command: str) -> str:
    return f"sudo -n sh -c {shlex.quote(command)}" if host.data.get("_sudo") else command


def download(command: str, dest: BinaryIO, label: str, total: int | None = None) -> str:
    """Write the stdout of ``command`` (run on the host) into ``dest``; return its sha256."""
    digest = hashlib.sha256()
    progress = Progress(label, total)
    for chunk in _run_reading(_remote(command)):
        dest.write(chunk)
        digest.update(chunk)
        progress.add(len(chunk))
    progress.finish()
    return digest.hexdigest()


def upload(src: Path, remote_path: str, label: str) -> None:
    """Copy ``src`` to ``remote_path`` via ``remote_path.partial``, renamed once complete."""
    partial = shlex.quote(remote_path + ".partial")
    command = f"umask 077 && cat > {partial} && mv {partial} {shlex.quote(remote_path)}"
    progress = Progress(label, src.stat().st_size)
    with src.open("rb") as handle:
        _run_writing(_remote(command), iter(lambda: handle.read(CHUNK), b""), progress.add)
    progress.finish()


def _run_reading(command: str) -> Iterator[bytes]:
    if isinstance(host.connector, SSHConnector):
        channel = host.connector.client.get_transport().open_session()
        channel.exec_command(command)
        while chunk := channel.recv(CHUNK):
            yield chunk
        status = channel.recv_exit_status()
        error = channel.recv_stderr(65536).decode(errors="replace").strip()
    else:
        proc = subprocess.Popen(
            ["sh", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert proc.stdout is not None
        while chunk := proc.stdout.read(CHUNK):
            yield chunk
        status = proc.wait()
        error = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
    if status != 0:
        raise TransferError(f"{command!r} on {host.name} failed ({status}): {error[-500:]}")


def _run_writing(command: str, chunks: Iterator[bytes], sent: Callable[[int], None]) -> None:
    if isinstance(host.connector, SSHConnector):
        channel = host.connector.client.get_transport().open_session()
        channel.exec_command(command)
        for chunk in chunks:
            channel.sendall(chunk)
            sent(len(chunk))
        channel.shutdown_write()
        status = channel.recv_exit_status()
        error = channel.recv_stderr(65536).decode(errors="replace").strip()
    else:
        proc = subprocess.Popen(
            ["sh", "-c", command], stdin=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert proc.stdin is not None
        for chunk in chunks:
            proc.stdin.write(chunk)
            sent(len(chunk))
        proc.stdin.close()
        status = proc.wait()
        error = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
    if status != 0:
        raise TransferError(f"upload to {host.name} failed ({status}): {error[-500:]}")
