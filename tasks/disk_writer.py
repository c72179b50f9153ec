"""Write a big file (a backup arriving over SSH) straight to disk, from a thread of its own.

Through the page cache, writing costs the kernel more CPU than the whole SSH transfer: on our
2-core test machine `dd bs=1M` of 1.4 GB takes 2.3-3.2 s of system time, with O_DIRECT 0.15 s
(docs/benchmarks.md). So the bytes are gathered into page-aligned 4 MiB blocks and written with
O_DIRECT by a writer thread (the GIL is released while it writes) as the next block fills; the
last, partial block goes through the page cache, and the file is fsynced before it is closed.
Where O_DIRECT is refused (tmpfs, some network filesystems) the same writes are buffered.

pyinfra runs deploys under gevent, whose monkey-patching turns ``threading`` threads and
``queue`` queues into greenlets on one OS thread: the writes would then stop everything else
while they last. The writer is a real OS thread (gevent's saved original), and the blocks pass
through the C ``SimpleQueue``, which gevent leaves alone.
"""

from __future__ import annotations

import fcntl
import mmap
import os
from _queue import SimpleQueue
from pathlib import Path
from types import TracebackType

from gevent.monkey import get_original

start_os_thread = get_original("_thread", "start_new_thread")

BLOCK = 4 << 20
BLOCKS = 3  # one filling, one being written, one spare: writing never waits for filling


class DiskWriter:
    def __init__(self, path: Path) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        direct = getattr(os, "O_DIRECT", 0)
        try:
            self._fd = os.open(path, flags | direct, 0o600)
            self.direct = bool(direct)
        except OSError:
            self._fd = os.open(path, flags, 0o600)
            self.direct = False
        self._free: SimpleQueue[mmap.mmap] = SimpleQueue()
        for _ in range(BLOCKS):
            self._free.put(mmap.mmap(-1, BLOCK))  # anonymous maps are page-aligned
        self._full: SimpleQueue[tuple[mmap.mmap, int] | None] = SimpleQueue()
        self._written: SimpleQueue[None] = SimpleQueue()  # once the thread is done
        self._block, self._filled = self._free.get(), 0
        self._error: OSError | None = None
        start_os_thread(self._write_blocks, ())

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data)
        while view:
            count = min(len(view), BLOCK - self._filled)
            self._block[self._filled : self._filled + count] = view[:count]
            self._filled += count
            view = view[count:]
            if self._filled == BLOCK:
                self._hand_over()
        return len(data)

    def close(self) -> None:
        """Write what is left, fsync, close; raises the first write error, if any."""
        if self._fd < 0:
            return
        try:
            self._full.put(None)
            self._written.get()
            self._raise_error()
            if self._filled:
                if self.direct:  # O_DIRECT writes whole blocks only
                    mode = fcntl.fcntl(self._fd, fcntl.F_GETFL)
                    fcntl.fcntl(self._fd, fcntl.F_SETFL, mode & ~os.O_DIRECT)
                _write_all(self._fd, memoryview(self._block)[: self._filled])
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
            self._fd = -1

    def abort(self) -> None:
        """Stop without the rest: the caller removes the file."""
        if self._fd >= 0:
            self._full.put(None)
            self._written.get()
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> DiskWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def _hand_over(self) -> None:
        self._raise_error()
        self._full.put((self._block, self._filled))
        self._block, self._filled = self._free.get(), 0

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _write_blocks(self) -> None:
        while (item := self._full.get()) is not None:
            block, size = item
            if self._error is None:
                try:
                    _write_all(self._fd, memoryview(block)[:size])
                except OSError as error:
                    self._error = error
            self._free.put(block)
        self._written.put(None)


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]
