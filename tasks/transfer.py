"""Big transfers between this machine and a host over the deploy's own SSH connection.

Bytes stream through one SSH channel (or a local process for ``@local``) in MiB chunks, with
progress lines (bytes, rate, ETA) and the remote exit status checked. A download can be checked
as it arrives (a backup's sha256s, read as a tar stream) while it is written, in one pass.
"""

from __future__ import annotations

import io
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol, TypeVar

from pyinfra import host, logger
from pyinfra.connectors.ssh import SSHConnector

CHUNK = 1 << 20
# More than paramiko's channel window (2 MiB): each receive takes all that has arrived, as
# taking part of it moves the rest within paramiko's buffer (measured: 235 against 255 MB/s).
RECEIVE = 4 << 20


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
        if self.total and self.done:
            left = max(self.total - self.done, 0) / rate if rate else 0
            text += f", {min(100, 100 * self.done // self.total)} %, ETA {left:.0f} s"
        return text

    def finish(self) -> float:
        seconds = time.monotonic() - self.started
        logger.info(self.line() + f", {seconds:.1f} s")
        return seconds


def _remote(command: str) -> str:
    return f"sudo -n sh -c {shlex.quote(command)}" if host.data.get("_sudo") else command


T = TypeVar("T")


class Sink(Protocol):
    """Where a download goes: a file, or a ``DiskWriter``."""

    def write(self, data: bytes, /) -> object: ...


class TeeReader(io.RawIOBase):
    """The bytes of ``chunks`` as a readable stream; everything that arrives is also written to
    ``dest`` and counted by ``progress``."""

    def __init__(self, chunks: Iterator[bytes], dest: Sink, progress: Progress) -> None:
        super().__init__()
        self._chunks, self._dest, self._progress = chunks, dest, progress
        self._pending, self._offset = b"", 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes of the current chunk (io's default read would allocate a
        ``size`` buffer for every 32 KiB chunk)."""
        if self._offset >= len(self._pending):
            chunk = next(self._chunks, b"")
            if not chunk:
                return b""
            self._arrived(chunk)
            self._pending, self._offset = chunk, 0
        start = self._offset
        end = len(self._pending) if size < 0 else min(len(self._pending), start + size)
        self._offset = end
        if start == 0 and end == len(self._pending):
            return self._pending
        return self._pending[start:end]

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        """What nobody read yet, to ``dest``: the whole stream ends up there."""
        self._pending, self._offset = b"", 0
        for chunk in self._chunks:
            self._arrived(chunk)

    def _arrived(self, chunk: bytes) -> None:
        self._progress.add(len(chunk))
        self._dest.write(chunk)


def read_through(
    chunks: Iterator[bytes],
    dest: Sink,
    progress: Progress,
    check: Callable[[BinaryIO], T] | None = None,
) -> T | None:
    """Write ``chunks`` into ``dest`` while ``check`` reads them as a stream; return what
    ``check`` returns. The stream is written to its end even if ``check`` fails (then its error
    is raised), so the sender is never left blocked."""
    reader = TeeReader(chunks, dest, progress)
    result, failure = None, None
    if check:
        try:
            result = check(reader)
        except Exception as error:  # raised once the rest has arrived
            failure = error
    reader.drain()
    if failure:
        raise failure
    return result


def download(
    command: str,
    dest: Sink,
    label: str,
    total: int | None = None,
    check: Callable[[BinaryIO], T] | None = None,
) -> T | None:
    """Write the stdout of ``command`` (run on the host) into ``dest``; ``check``, if given,
    reads the same bytes as they arrive (see ``read_through``) and its result is returned."""
    progress = Progress(label, total)
    result = read_through(_run_reading(_remote(command)), dest, progress, check)
    progress.finish()
    return result


def upload(src: Path, remote_path: str, label: str, unpack: bool = False) -> None:
    """Copy ``src`` to ``remote_path`` via ``remote_path.partial``, renamed once complete;
    with ``unpack``, ``src`` is a tar unpacked as it arrives into the directory ``remote_path``."""
    partial, final = shlex.quote(remote_path + ".partial"), shlex.quote(remote_path)
    receive = (
        f"mkdir {partial} && tar -x --no-same-owner -C {partial}" if unpack else f"cat > {partial}"
    )
    command = f"umask 077 && rm -rf {partial} {final} && {receive} && mv {partial} {final}"
    progress = Progress(label, src.stat().st_size)
    with src.open("rb") as handle:
        _run_writing(_remote(command), iter(lambda: handle.read(CHUNK), b""), progress.add)
    progress.finish()


def _run_reading(command: str) -> Iterator[bytes]:
    if isinstance(host.connector, SSHConnector):
        channel = host.connector.client.get_transport().open_session()
        channel.exec_command(command)
        while chunk := channel.recv(RECEIVE):
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
        raise TransferError(f"{command!r} on {host.name} failed ({status}): {_last_error(error)}")


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
        raise TransferError(f"upload to {host.name} failed ({status}): {_last_error(error)}")


def _last_error(stderr: str) -> str:
    """The line that says what went wrong: the last ERROR line of our scripts, else the last."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line]
    return (errors or lines or ["no error output"])[-1][-500:]
