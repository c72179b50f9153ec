"""A backup is checked as it arrives: the tar stream read once, in a second thread."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading

import pytest

from tasks.archive import ArchiveError, manifest_bytes, verify_tar_stream
from tasks.transfer import ChunkPipe

PARTS = {"database/toc.dat": b"toc" * 1000, "filestore.tar.zst": bytes(range(256)) * 5000}


def _backup(parts: dict[str, bytes], manifest_last: bool = True) -> bytes:
    files = {n: {"size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d in PARTS.items()}
    manifest = {"format": "dfr-backup/1", "major_version": "18.0", "files": files}
    members = [*parts.items()]
    members.insert(
        len(members) if manifest_last else 0, ("manifest.json", manifest_bytes(manifest))
    )
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _checked_through_a_pipe(data: bytes, chunk: int = 32768) -> dict:
    """Feed ``data`` in SSH-sized chunks from this thread, check it in another."""
    pipe, result = ChunkPipe(depth=4), {}

    def read() -> None:
        try:
            result["manifest"] = verify_tar_stream(pipe, "the stream")
        except ArchiveError as error:
            result["error"] = str(error)
        finally:
            pipe.reader_done = True

    reader = threading.Thread(target=read)
    reader.start()
    for start in range(0, len(data), chunk):
        pipe.put(data[start : start + chunk])
    pipe.end()
    reader.join(timeout=30)
    assert not reader.is_alive(), "the writer or the reader blocked"
    return result


@pytest.mark.parametrize("manifest_last", [True, False])
def test_a_good_stream_verifies_wherever_its_manifest_is(manifest_last):
    result = _checked_through_a_pipe(_backup(PARTS, manifest_last))
    assert set(result["manifest"]["files"]) == set(PARTS)


def test_a_flipped_byte_is_named():
    bad = dict(PARTS, **{"filestore.tar.zst": b"\x01" + PARTS["filestore.tar.zst"][1:]})
    result = _checked_through_a_pipe(_backup(bad))
    assert result["error"] == (
        "the stream: filestore.tar.zst does not match its sha256 in the manifest"
    )


def test_a_cut_stream_is_truncated():
    data = _backup(PARTS)
    result = _checked_through_a_pipe(data[: len(data) // 2])
    assert "the stream is truncated" in result["error"]


def test_junk_stops_the_reader_without_blocking_the_writer():
    result = _checked_through_a_pipe(b"not a tar at all\n" * 200_000)
    assert "the stream is not a backup" in result["error"]
