"""A backup uploaded and restored at once: the host restores the database while the
filestore is still arriving.

The database part (with the manifest) goes first, unpacked as it arrives into
``incoming/NAME``; then ``dfr-restore`` starts with the backup's ``filestore.tar`` on its stdin,
which it checks and unpacks into the new filestore as it comes while pg_restore runs. Nothing
of the filestore is written twice on the host, and the upload's second, larger half costs the
restore no time of its own. An archive without a ``filestore.tar`` (an Odoo zip, a 0.1.0
backup) is uploaded whole first.
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

from tasks.errors import StepFailed, failing_in_one_line
from tasks.transfer import CHUNK, Progress, RemoteStdin, TransferError, unpack_into

STREAMED = "filestore.tar"


@failing_in_one_line
def upload_and_restore(archive: Path, remote_dir: str, restore_command: str, label: str) -> None:
    """Upload the tar ``archive`` into ``remote_dir`` (all but its filestore.tar), then run
    ``restore_command`` fed that filestore.tar, if there is one."""
    try:
        _upload_and_restore(archive, remote_dir, restore_command, label)
    except (OSError, tarfile.TarError, TransferError) as error:
        raise StepFailed(f"restore of {archive.name} failed: {error}") from None


def _upload_and_restore(archive: Path, remote_dir: str, restore_command: str, label: str) -> None:
    progress = Progress(label, archive.stat().st_size)
    with tarfile.open(archive, "r:") as tar:
        members = tar.getmembers()
        streamed = next((m for m in members if _name(m) == STREAMED and m.isfile()), None)
        with (
            RemoteStdin(unpack_into(remote_dir), progress) as first,
            tarfile.open(fileobj=first, mode="w|", format=tarfile.PAX_FORMAT) as out,
        ):
            for member in members:
                if member is not streamed:
                    out.addfile(member, tar.extractfile(member) if member.isfile() else None)
        if streamed is None:
            progress.finish()
            with RemoteStdin(restore_command, progress):
                return
        with RemoteStdin(f"{restore_command} --filestore-on-stdin", progress) as restoring:
            source = tar.extractfile(streamed)
            assert source is not None
            shutil.copyfileobj(source, restoring, CHUNK)
            restoring.flush()
            progress.finish()


def _name(member: tarfile.TarInfo) -> str:
    return member.name.removeprefix("./")
