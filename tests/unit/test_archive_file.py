"""A backup file checked before its upload: the parts the host hashes as they arrive are passed
over here, but a file cut short or a part of the wrong size is still refused."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from pathlib import Path

import pytest

from tasks.archive import ArchiveError, manifest_bytes, verify

FILESTORE = bytes(range(256)) * 8000
PARTS = {"filestore.tar": FILESTORE, "database/toc.dat": b"toc" * 1000}


def _write(path: Path, parts: dict[str, bytes], listed: dict[str, bytes] = PARTS) -> Path:
    """A backup of ``parts`` (filestore first, manifest last, as dfr-backup streams it) whose
    manifest describes ``listed``."""
    files = {
        n: {"size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d in listed.items()
    }
    manifest = {"format": "dfr-backup/1", "major_version": "18.0", "files": files}
    with tarfile.open(path, mode="w") as tar:
        for name, data in [*parts.items(), ("manifest.json", manifest_bytes(manifest))]:
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_flipped_byte_in_a_part_hashed_on_the_host_passes_here_and_no_other(tmp_path):
    flipped = dict(PARTS, **{"filestore.tar": b"\1" + FILESTORE[1:]})
    backup = _write(tmp_path / "b.dfrbak", flipped)
    assert set(verify(backup, unhashed=("filestore.tar",))["files"]) == set(PARTS)
    with pytest.raises(ArchiveError, match=re.escape("filestore.tar does not match its sha256")):
        verify(backup)

    toc_flipped = dict(PARTS, **{"database/toc.dat": b"x" + PARTS["database/toc.dat"][1:]})
    backup = _write(tmp_path / "c.dfrbak", toc_flipped)
    with pytest.raises(ArchiveError, match=re.escape("database/toc.dat does not match its sha256")):
        verify(backup, unhashed=("filestore.tar",))


def test_a_file_cut_inside_a_part_that_is_not_hashed_here_is_truncated(tmp_path):
    backup = _write(tmp_path / "b.dfrbak", PARTS)
    data = backup.read_bytes()
    backup.write_bytes(data[: len(FILESTORE) // 2])
    with pytest.raises(ArchiveError, match=re.escape("is truncated")):
        verify(backup, unhashed=("filestore.tar",))


def test_a_part_not_hashed_here_must_still_have_its_size(tmp_path):
    shorter = dict(PARTS, **{"filestore.tar": FILESTORE[:-512]})
    backup = _write(tmp_path / "b.dfrbak", shorter, listed=PARTS)
    with pytest.raises(ArchiveError, match=re.escape("filestore.tar does not match")):
        verify(backup, unhashed=("filestore.tar",))
