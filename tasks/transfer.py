"""Big transfers between this machine and a host, over SSH.

Bytes stream through OpenSSH's ``ssh`` where it can log in as pyinfra did (tasks/openssh.py),
else through one channel of pyinfra's own paramiko connection (a local process for ``@local``),
in MiB chunks, with progress lines (bytes, rate, ETA) and the remote exit status checked. A
download can be checked as it arrives (a backup's sha256s, read as a tar stream) while it is
written, in one pass.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import shlex
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, BinaryIO, Protocol, TypeVar

import gevent
from pyinfra import host, logger
from pyinfra.connectors.ssh import SSHConnector

from tasks.openssh import ssh_command

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


class RemoteStdin(io.RawIOBase):
    """``command`` run on the host and fed what is written here, in MiB chunks counted by
    ``progress``; what it prints is logged line by line as it comes. Closing waits for it to
    end; a command that fails, or stops reading, raises TransferError with its last error."""

    def __init__(self, command: str, progress: Progress) -> None:
        super().__init__()
        self._command, self._progress = command, progress
        self._host = host.name  # pyinfra's host is unset in the thread that logs its output
        self._pending = bytearray()
        self._output, self._logged = b"", 0  # all it printed; how much of that was logged
        self._channel = self._proc = None
        remote = _remote(command)
        argv = _process_argv(remote)
        if argv is None:
            self._channel = host.connector.client.get_transport().open_session()
            self._channel.exec_command(remote)
        else:
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            assert self._proc.stdin is not None
            self._stdin = _blocking(self._proc.stdin, "wb")
            self._printing = threading.Thread(target=self._log_printed, daemon=True)
            self._printing.start()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._pending += data
        if len(self._pending) >= CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if not self._pending or self.closed:
            return
        try:
            if self._channel is not None:
                # A memoryview: sendall slices off what each 32 KiB packet took, which copies
                # the rest of a bytes object every time (16 MiB copied for each MiB sent).
                self._channel.sendall(memoryview(bytes(self._pending)))
                self._log_output(wait=False)
            else:
                _in_os_thread(_write_all, self._stdin, self._pending)
        except (OSError, EOFError):  # it stopped reading: its exit status says why
            self._pending.clear()
            self.close()
            raise TransferError(f"{self._command!r} on {host.name} stopped reading") from None
        self._progress.add(len(self._pending))
        self._pending.clear()

    def close(self) -> None:
        if self.closed:
            return
        status = self._finish()
        super().close()
        if status != 0:
            raise TransferError(
                f"{self._command!r} on {host.name} failed ({status}): "
                + _last_error(self._output.decode(errors="replace"))
            )

    def _finish(self) -> int:
        """Sends what is left (unless it stopped reading), closes its stdin, waits for its end."""
        with contextlib.suppress(TransferError):
            self.flush()
        if self._channel is not None:
            self._channel.shutdown_write()
            self._log_output(wait=True)
            return self._channel.recv_exit_status()
        assert self._proc is not None and self._proc.stdin is not None
        with contextlib.suppress(OSError):
            self._proc.stdin.close()
        status = self._proc.wait()
        self._printing.join()
        self._lines(b"", final=True)
        return status

    def _log_printed(self) -> None:
        """Logs the process's output as it comes (a thread of its own)."""
        assert self._proc is not None and self._proc.stdout is not None
        while data := self._proc.stdout.read1(65536):
            self._lines(data)

    def _log_output(self, wait: bool) -> None:
        """Logs the lines it printed so far (until it ends, with ``wait``): stdout and stderr
        are read as they come, so its output never fills the channel's window."""
        channel = self._channel
        assert channel is not None
        while True:
            if channel.recv_stderr_ready():
                self._lines(channel.recv_stderr(65536))
            elif channel.recv_ready():
                self._lines(channel.recv(65536))
            elif not wait or channel.exit_status_ready():
                break
            else:
                time.sleep(0.05)
        if wait:
            self._lines(b"", final=True)

    def _lines(self, data: bytes, final: bool = False) -> None:
        self._output += data
        lines = (self._output[self._logged :] + (b"\n" if final else b"")).split(b"\n")[:-1]
        for line in lines:
            self._logged += len(line) + 1
            _log_host_line(self._host, line.decode(errors="replace"))


def _run_reading(command: str) -> Iterator[bytes]:
    argv = _process_argv(command)
    if argv is None:
        channel = host.connector.client.get_transport().open_session()
        channel.exec_command(command)
        while chunk := channel.recv(RECEIVE):
            yield chunk
        status = channel.recv_exit_status()
        said = channel.recv_stderr(65536).decode(errors="replace").strip()
    else:
        with tempfile.TemporaryFile() as stderr:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr
            )
            assert proc.stdout is not None
            pipe = _blocking(proc.stdout, "rb")
            try:
                while chunk := _in_os_thread(pipe.read, CHUNK):
                    yield chunk
                status = proc.wait()
            finally:
                if proc.poll() is None:  # the reader gave up: nothing is left waiting for it
                    proc.kill()
                    proc.wait()
            stderr.seek(0)
            said = stderr.read().decode(errors="replace").strip()
    if status != 0:
        raise TransferError(f"{command!r} on {host.name} failed ({status}): {_last_error(said)}")
    for line in said.splitlines():  # what the host command logged, e.g. a sweep of old files
        _log_host_line(host.name, line)


def _log_host_line(host_name: str, line: str) -> None:
    """A line a host command printed, as pyinfra shows a host's output; blank ones skipped."""
    if line.strip():
        logger.info(f"[{host_name}] {line.rstrip()}")


def _blocking(pipe: IO[bytes], mode: str) -> BinaryIO:
    """A plain, blocking file of the pipe ``pipe``, enlarged to a chunk. pyinfra runs under
    gevent, which makes subprocess pipes non-blocking and moves their bytes through its event
    loop, 64 KiB per wake-up: that doubled a download's CPU (measured, docs/benchmarks.md)."""
    fd = pipe.fileno()
    os.set_blocking(fd, True)
    with contextlib.suppress(OSError):  # above the system's pipe-max-size: keep the default
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, CHUNK)
    return open(fd, mode, closefd=False)  # the fd stays the pipe's, closed with it


def _in_os_thread(function: Callable[..., T], *args: object) -> T:
    """``function(*args)`` run by an OS thread of gevent's pool (it may block) while this
    greenlet, and the other hosts' greenlets, go on."""
    return gevent.get_hub().threadpool.apply(function, args)


def _write_all(pipe: BinaryIO, data: bytes | bytearray) -> None:
    pipe.write(data)
    pipe.flush()


def _process_argv(command: str) -> list[str] | None:
    """The local process that runs ``command`` on the host: ``ssh`` for an SSH host (None
    where it cannot stand in for paramiko's connection, see tasks/openssh.py), ``sh -c`` for
    ``@local``."""
    if isinstance(host.connector, SSHConnector):
        return ssh_command(command)
    return ["sh", "-c", command]


def _last_error(stderr: str) -> str:
    """The line that says what went wrong: the last ERROR line of our scripts, else the last."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line]
    return (errors or lines or ["no error output"])[-1][-500:]
