"""A backup uploaded and restored at once, in one SSH session: the host restores the
database while the filestore is still arriving.

The archive (a tar on this machine) goes up as byte ranges of its file, all on the stdin of
``dfr-restore --upload=BYTES``. First every member but ``filestore.tar``, as a tar of their own
(BYTES long), which it unpacks into ``incoming/NAME`` once it holds the restore lock; then the
contents of ``filestore.tar``, which it checks and unpacks into the new filestore as they come
while pg_restore runs. Nothing of the filestore is written twice on the host, and the upload's
second, larger half costs the restore no time of its own. An archive without a
``filestore.tar`` (an Odoo zip, a 0.1.0 backup) goes up whole first.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tasks.errors import StepFailed, failing_in_one_line
from tasks.transfer import CHUNK, Progress, RemoteStdin, TransferError

STREAMED = "filestore.tar"
END_OF_ARCHIVE = bytes(1024)


@dataclass(frozen=True)
class UploadPlan:
    """Byte ranges (offset, count) of the archive: ``head`` is every member but the streamed
    one (its tar is these ranges and END_OF_ARCHIVE), ``streamed`` that member's contents."""

    head: list[tuple[int, int]]
    streamed: tuple[int, int] | None

    @property
    def head_size(self) -> int:
        return sum(count for _, count in self.head) + (len(END_OF_ARCHIVE) if self.streamed else 0)

    @property
    def size(self) -> int:
        """What goes up in all."""
        return self.head_size + (self.streamed[1] if self.streamed else 0)


def plan_upload(archive: Path) -> UploadPlan:
    """How ``archive`` goes up: whole, or split around its ``filestore.tar``."""
    with tarfile.open(archive, "r:") as tar:
        members = tar.getmembers()
        end = tar.offset  # where the end-of-archive marker begins
    streamed = next((m for m in members if _name(m) == STREAMED and m.isfile()), None)
    if streamed is None:
        return UploadPlan([(0, archive.stat().st_size)], None)
    # A member is the bytes from its first header (extended ones included) to the next's.
    starts = [m.offset for m in members] + [end]
    head: list[tuple[int, int]] = []
    for member, start, following in zip(members, starts, starts[1:], strict=False):
        if member is streamed:
            continue
        if head and sum(head[-1]) == start:  # adjacent to the previous range: one range
            head[-1] = (head[-1][0], following - head[-1][0])
        else:
            head.append((start, following - start))
    return UploadPlan(head, (streamed.offset_data, streamed.size))


@failing_in_one_line
def upload_and_restore(archive: Path, restore_command: str, label: str) -> None:
    """Run ``restore_command`` (dfr-restore incoming/NAME ...) fed the tar ``archive``: all of
    it but its filestore.tar, then that filestore.tar's contents, if there is one."""
    try:
        _upload_and_restore(archive, restore_command, label)
    except (OSError, tarfile.TarError, TransferError) as error:
        raise StepFailed(f"restore of {archive.name} failed: {error}") from None


def _upload_and_restore(archive: Path, restore_command: str, label: str) -> None:
    plan = plan_upload(archive)
    command = f"{restore_command} --upload={plan.head_size}"
    if plan.streamed is not None:
        command += " --filestore-on-stdin"
    progress = Progress(label, plan.size)
    with archive.open("rb") as source, RemoteStdin(command, progress) as remote:
        for offset, count in plan.head:
            _send(source, offset, count, remote)
        if plan.streamed is not None:
            remote.write(END_OF_ARCHIVE)
            _send(source, *plan.streamed, remote)
        remote.flush()
        progress.finish()  # the restore goes on: closing waits for its end


def _send(source: BinaryIO, offset: int, count: int, remote: RemoteStdin) -> None:
    source.seek(offset)
    while count > 0:
        data = source.read(min(CHUNK, count))
        if not data:
            raise TransferError(f"{source.name} ended early")
        remote.write(data)
        count -= len(data)


def _name(member: tarfile.TarInfo) -> str:
    return member.name.removeprefix("./")
