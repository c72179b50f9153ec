"""A backup is checked as it arrives: read once as a tar stream while it is written to disk."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest

from tasks.archive import ArchiveError, manifest_bytes, verify_tar_stream
from tasks.transfer import Progress, read_through

PARTS = {"database/toc.dat": b"toc" * 1000, "filestore.tar": bytes(range(256)) * 5000}


def _backup(parts: dict[str, bytes], manifest_last: bool = True) -> bytes:
    files = {n: {"size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d in PARTS.items()}
    manifest = {"format": "dfr-backup/1", "major_version": "18.0", "files": files}
    members = [*parts.items()]
    at = len(members) if manifest_last else 0
    members.insert(at, ("manifest.json", manifest_bytes(manifest)))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _received(data: bytes, chunk: int = 32768) -> tuple[bytes, dict | str]:
    """``data`` arriving in SSH-sized chunks: what was written, and the manifest or the error."""
    written = io.BytesIO()
    chunks = (data[start : start + chunk] for start in range(0, len(data), chunk))
    try:
        manifest = read_through(
            chunks, written, Progress("test", len(data)), lambda s: verify_tar_stream(s, "it")
        )
    except ArchiveError as error:
        return written.getvalue(), str(error)
    return written.getvalue(), manifest


@pytest.mark.parametrize("manifest_last", [True, False])
def test_a_good_stream_verifies_wherever_its_manifest_is(manifest_last):
    data = _backup(PARTS, manifest_last)
    written, manifest = _received(data)
    assert written == data
    assert set(manifest["files"]) == set(PARTS)


def test_a_flipped_byte_is_named_once_everything_has_arrived():
    data = _backup(dict(PARTS, **{"filestore.tar": b"\1" + PARTS["filestore.tar"][1:]}))
    written, error = _received(data)
    assert error == "it: filestore.tar does not match its sha256 in the manifest"
    assert written == data  # read to the end: the sender was not left blocked


def test_a_cut_stream_is_truncated():
    data = _backup(PARTS)
    _, error = _received(data[: len(data) // 2])
    assert "it is truncated" in error


def test_junk_is_not_a_backup_and_is_still_read_to_its_end():
    junk = b"not a tar at all\n" * 200_000
    written, error = _received(junk)
    assert "it is not a backup" in error
    assert written == junk


@pytest.mark.parametrize("tar_format", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_and_unicode_part_names_are_read_as_gnu_and_pax_tar_write_them(tar_format):
    parts = {"filestore/" + "é" * 80 + "/deep" * 20 + "/ü.bin": b"\0\1" * 999, "dump.sql": b""}
    files = {n: {"size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d in parts.items()}
    manifest = {"format": "odoo-zip", "major_version": "18.0", "files": files}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tar_format) as tar:
        for name, data in [*parts.items(), ("manifest.json", manifest_bytes(manifest))]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    _, found = _received(out.getvalue(), chunk=1000)
    assert found == manifest


def test_an_unreadable_manifest_and_a_malformed_pax_header_are_named():
    files = {n: {"size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d in PARTS.items()}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in [*PARTS.items(), ("manifest.json", b'{"files": ' + str(files).encode())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert _received(out.getvalue())[1] == "it has an unreadable manifest.json"

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("é" * 200)  # needs a pax header
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    data = bytearray(out.getvalue())
    data[512:514] = b"zz"  # the length of its first record
    assert "it is not a backup" in _received(bytes(data))[1]
