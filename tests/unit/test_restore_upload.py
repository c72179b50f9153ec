"""An uploaded backup goes up as byte ranges of its file: a tar of every part but the
filestore, which dfr-restore unpacks first (dfr-common's receive_tar), then the filestore."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from tasks.restore_upload import END_OF_ARCHIVE, plan_upload

DFR_COMMON = Path(__file__).parents[2] / "files" / "backup" / "dfr-common.sh"

FILESTORE = bytes(range(256)) * 4001  # not a multiple of 512: the member is padded
PARTS = {
    "database/toc.dat": b"toc" * 700,
    "database/3001.dat.zst": b"\x28\xb5\x2f\xfd" + bytes(5000),
    # A name longer than 100 bytes and not ASCII: extended (PAX) headers ahead of the member.
    "database/" + "é" * 60 + ".dat": b"long name",
    "database/empty.dat": b"",
}


def _archive(path: Path, filestore_at: int | None) -> Path:
    members = list(PARTS.items())
    if filestore_at is not None:
        members.insert(filestore_at, ("filestore.tar", FILESTORE))
    members.append(("manifest.json", b'{"format": "dfr-backup/1"}'))
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        directory = tarfile.TarInfo("./database")
        directory.type = tarfile.DIRTYPE
        tar.addfile(directory)
        for name, data in members:
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _sent(archive: Path) -> tuple[bytes, bytes]:
    """What goes up: the head tar, then the filestore's contents."""
    plan = plan_upload(archive)
    data = archive.read_bytes()
    head = b"".join(data[offset : offset + count] for offset, count in plan.head)
    assert plan.streamed is not None
    offset, count = plan.streamed
    return head + END_OF_ARCHIVE, data[offset : offset + count]


@pytest.mark.parametrize("filestore_at", [0, 2, len(PARTS)])
def test_the_head_is_a_tar_of_every_part_but_the_filestore(tmp_path, filestore_at):
    head, filestore = _sent(_archive(tmp_path / "b.dfrbak", filestore_at))
    with tarfile.open(fileobj=io.BytesIO(head)) as tar:
        files = {m.name.removeprefix("./"): tar.extractfile(m).read() for m in tar if m.isfile()}
    assert files == {**PARTS, "manifest.json": b'{"format": "dfr-backup/1"}'}
    assert filestore == FILESTORE
    assert len(head) == plan_upload(tmp_path / "b.dfrbak").head_size


def _receive_tar(tmp_path: Path, size: int) -> str:
    """The host's receive_tar into incoming/b, run here (dfr-common reads $here/backup.env)."""
    (tmp_path / "backup.env").touch()
    (tmp_path / "incoming").mkdir()
    return f"here={tmp_path}; . {DFR_COMMON}; receive_tar {tmp_path}/incoming/b {size}"


def test_the_host_unpacks_the_head_and_leaves_the_filestore_to_the_restore(tmp_path):
    """dd takes exactly the head; what follows is left on stdin, to the next command."""
    head, filestore = _sent(_archive(tmp_path / "b.dfrbak", 0))
    receive = _receive_tar(tmp_path, len(head))
    subprocess.run(
        ["bash", "-c", f"{receive} && cat > {tmp_path}/rest"], input=head + filestore, check=True
    )
    unpacked = tmp_path / "incoming" / "b"
    assert {str(p.relative_to(unpacked)) for p in unpacked.rglob("*") if p.is_file()} == {
        *PARTS,
        "manifest.json",
    }
    for name, data in PARTS.items():
        assert (unpacked / name).read_bytes() == data
    assert (tmp_path / "rest").read_bytes() == filestore


def test_a_cut_head_leaves_only_a_partial_directory(tmp_path):
    head, _ = _sent(_archive(tmp_path / "b.dfrbak", 0))
    receive = _receive_tar(tmp_path, len(head))
    run = subprocess.run(["bash", "-c", receive], input=head[: len(head) // 2], capture_output=True)
    assert run.returncode != 0
    assert [p.name for p in (tmp_path / "incoming").iterdir()] == ["b.partial"]


def test_an_archive_without_a_filestore_goes_up_whole(tmp_path):
    archive = _archive(tmp_path / "old.tar", None)
    plan = plan_upload(archive)
    assert plan.streamed is None
    assert plan.head == [(0, archive.stat().st_size)]
    assert plan.head_size == plan.size == archive.stat().st_size
