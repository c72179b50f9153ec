"""Backups arriving over SSH are written around the page cache, in whole blocks, then fsynced."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tasks.disk_writer import BLOCK, DiskWriter


def _pieces(total: int, size: int) -> list[bytes]:
    data = os.urandom(total)
    return [data[start : start + size] for start in range(0, total, size)]


@pytest.mark.parametrize("total", [0, 1, BLOCK, 3 * BLOCK + 12_345])
def test_what_was_written_is_the_file_whatever_its_size(tmp_path: Path, total: int):
    pieces = _pieces(total, 32_768)
    target = tmp_path / "backup.partial"
    with DiskWriter(target) as writer:
        for piece in pieces:
            writer.write(piece)
    assert target.read_bytes() == b"".join(pieces)
    assert target.stat().st_mode & 0o777 == 0o600


def test_a_filesystem_that_refuses_o_direct_gets_the_same_bytes(tmp_path: Path, monkeypatch):
    real_open = os.open

    def refusing_open(path, flags, mode=0o777):
        if flags & os.O_DIRECT:  # as some network filesystems do
            raise OSError(22, "Invalid argument")
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", refusing_open)
    target = tmp_path / "backup.partial"
    pieces = _pieces(BLOCK + 5, 1 << 20)
    with DiskWriter(target) as writer:
        assert not writer.direct
        for piece in pieces:
            writer.write(piece)
    assert target.read_bytes() == b"".join(pieces)


def test_a_write_error_is_raised_to_the_writer(tmp_path: Path):
    target = tmp_path / "backup.partial"
    writer = DiskWriter(target)
    os.close(writer._fd)  # the disk goes away under it
    writer._fd = os.open(os.devnull, os.O_RDONLY)
    with pytest.raises(OSError):
        for _ in range(4):
            writer.write(b"x" * BLOCK)
        writer.close()
