"""Big transfers between this machine and a host over the deploy's own SSH connection.

Bytes stream through one SSH channel (or a local process for ``@local``) in 1 MiB chunks, with
progress lines (bytes, rate, ETA) and the remote exit status checked. A download can be read a
second time as it arrives, by a checker in its own thread (hashing releases the GIL), so a
backup is verified without a second pass over the file.
"""

from __future__ import annotations

import io
import queue
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, TypeVar

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


class ChunkPipe(io.RawIOBase):
    """Chunks put by one thread, read as a byte stream by another. Once the reader is done
    (it may stop before the end), further chunks are dropped instead of blocking the writer."""

    def __init__(self, depth: int = 64) -> None:
        super().__init__()
        self._chunks: queue.Queue[bytes] = queue.Queue(maxsize=depth)
        self._pending = memoryview(b"")
        self._ended = False
        self.reader_done = False

    def readable(self) -> bool:
        return True

    def put(self, chunk: bytes) -> None:
        while not self.reader_done:
            try:
                self._chunks.put(chunk, timeout=0.2)
                return
            except queue.Full:
                continue

    def end(self) -> None:
        self.put(b"")

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if not self._pending:
            if self._ended:
                return 0
            chunk = self._chunks.get()
            if not chunk:
                self._ended = True
                return 0
            self._pending = memoryview(chunk)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


def download(
    command: str,
    dest: BinaryIO,
    label: str,
    total: int | None = None,
    check: Callable[[BinaryIO], T] | None = None,
) -> T | None:
    """Write the stdout of ``command`` (run on the host) into ``dest``. ``check``, if given,
    reads the same bytes as they arrive, in a second thread; its result is returned."""
    progress = Progress(label, total)
    pipe = ChunkPipe()

    def read_all() -> T:
        try:
            return check(pipe)  # type: ignore[misc]
        finally:
            pipe.reader_done = True

    with ThreadPoolExecutor(max_workers=1) as pool:
        checked = pool.submit(read_all) if check else None
        batch: list[bytes] = []  # written and checked in MiB batches: SSH gives 32 KiB
        batched = 0

        def flush() -> None:
            nonlocal batch, batched
            if not batch:
                return
            data = b"".join(batch)
            dest.write(data)
            if checked:
                pipe.put(data)
            batch, batched = [], 0

        try:
            for chunk in _run_reading(_remote(command)):
                batch.append(chunk)
                batched += len(chunk)
                progress.add(len(chunk))
                if batched >= CHUNK:
                    flush()
            flush()
        finally:
            pipe.end()
        progress.finish()
        return checked.result() if checked else None


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
