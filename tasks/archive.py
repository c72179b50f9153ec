"""Backup archives on this machine: verify them against their manifest, convert Odoo zips.

A dfr backup is a tar of ``manifest.json``, ``database/`` (pg_dump directory format, zstd) and
``filestore.tar`` (``filestore.tar.zst`` before 0.2.0); an ``odoo-zip`` export holds
``dump.sql``, ``filestore/`` and the manifest, like Odoo's database manager writes them.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from tasks.errors import SettingsError

ODOO_MAJOR = "18.0"


class ArchiveError(SettingsError):
    """The file is not a usable backup; the message says why in one line."""


def verify(path: Path, unhashed: Collection[str] = ()) -> dict[str, Any]:
    """Check every part of a backup (tar or Odoo zip) against its manifest; return the manifest.
    Parts named in ``unhashed`` are checked for their size only (hashed where they are sent)."""
    if not path.is_file():
        raise ArchiveError(
            f"backup_file {path} not found: give the path of a backup on this machine"
        )
    if zipfile.is_zipfile(path):
        return _verify_zip(path)
    with path.open("rb") as handle:
        return verify_tar_stream(handle, f"backup_file {path}", unhashed)


def verify_tar_stream(
    stream: BinaryIO, what: str, unhashed: Collection[str] = ()
) -> dict[str, Any]:
    """Read a dfr tar once, front to back, checking every part against its manifest (which may
    come anywhere in the tar); return the manifest. ``what`` names the archive in errors; parts
    named in ``unhashed`` are passed over (sought past in a file), their size checked."""
    sums, manifest = {}, None
    try:
        for name, size, content in _tar_files(stream):
            if name == "manifest.json":
                manifest = json.loads(content.read_all())
            else:
                sums[name] = (size, None if name in unhashed else content.sha256())
    except _Truncated as error:
        raise ArchiveError(f"{what} is truncated ({error})") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ArchiveError(f"{what} has an unreadable manifest.json") from None
    except (tarfile.HeaderError, ValueError) as error:  # ValueError: a malformed pax header
        raise ArchiveError(f"{what} is not a backup ({error})") from None
    if manifest is None or "files" not in manifest:
        raise ArchiveError(f"{what} is not a backup: it has no dfr manifest.json")
    for name, expected in manifest["files"].items():
        found = sums.get(name)
        if found is None:
            raise ArchiveError(f"{what} is truncated: {name} is missing")
        if found[0] != expected["size"] or found[1] not in (None, expected["sha256"]):
            raise ArchiveError(f"{what}: {name} does not match its sha256 in the manifest")
    _check_major(what, manifest)
    return manifest


class _Truncated(Exception):
    pass


class _Content:
    """One member's bytes, read from the stream as they come (hashed without copies)."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self._stream, self._left = stream, size

    def chunks(self) -> Iterator[bytes]:
        while self._left:
            piece = self._stream.read(min(self._left, 1 << 20))
            if not piece:
                raise _Truncated(f"{self._left} bytes missing")
            self._left -= len(piece)
            yield piece

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for piece in self.chunks():
            digest.update(piece)
        return digest.hexdigest()

    def read_all(self) -> bytes:
        return b"".join(bytes(piece) for piece in self.chunks())

    def skip(self) -> None:
        """Passes over what was not read: sought past in a file, read from a stream."""
        if self._left and self._stream.seekable():
            at, end = self._stream.tell(), self._stream.seek(0, io.SEEK_END)
            if at + self._left > end:
                raise _Truncated(f"{at + self._left - end} bytes missing")
            self._stream.seek(at + self._left)
            self._left = 0
        for _ in self.chunks():
            pass


def _tar_files(stream: BinaryIO) -> Iterator[tuple[str, int, _Content]]:
    """(name without ./, size, content) of every regular file of a tar stream, read once. The
    stream may end without tar's end-of-archive blocks (a backup being streamed has none)."""
    extended: dict[str, str] = {}  # from a GNU long name or a pax header, for the next member
    while True:
        header = _read_exact(stream, tarfile.BLOCKSIZE)
        if not header or header == tarfile.NUL * tarfile.BLOCKSIZE:
            return
        if len(header) < tarfile.BLOCKSIZE:
            raise _Truncated("in a header")
        info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
        size = int(extended.get("size", info.size)) if info.type != tarfile.XHDTYPE else info.size
        content = _Content(stream, size)
        if info.type == tarfile.GNUTYPE_LONGNAME:
            extended = {"path": _text(content.read_all().rstrip(b"\0"))}
        elif info.type == tarfile.XHDTYPE:
            extended = _pax_records(content.read_all())
        else:
            if info.isreg():
                yield extended.get("path", info.name).removeprefix("./"), size, content
            extended = {}
        content.skip()  # whatever was not read
        padding = -size % tarfile.BLOCKSIZE
        if padding and len(_read_exact(stream, padding)) < padding:
            raise _Truncated("in padding")


def _pax_records(data: bytes) -> dict[str, str]:
    """A pax extended header's "LENGTH key=value\\n" records."""
    records, at = {}, 0
    while at < len(data) and data[at : at + 1] != b"\0":
        length = int(data[at : data.index(b" ", at)])
        key, _, value = data[data.index(b" ", at) + 1 : at + length - 1].partition(b"=")
        records[_text(key)] = _text(value)
        at += length
    return records


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    parts, count = [], 0
    while count < size:
        piece = stream.read(size - count)
        if not piece:
            break
        parts.append(bytes(piece))
        count += len(piece)
    return b"".join(parts)


def stored_manifest(path: Path) -> bytes | None:
    """A dfr tar's manifest.json as stored, read without reading the parts; None for anything
    else. It names every part by its sha256: equal manifests mean equal backups."""
    if not path.is_file() or zipfile.is_zipfile(path):
        return None
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                if member.isfile() and member.name.removeprefix("./") == "manifest.json":
                    handle = tar.extractfile(member)
                    assert handle is not None
                    return handle.read()
    except (tarfile.TarError, EOFError, OSError):
        return None
    return None


def checked_manifest(raw: bytes, what: str) -> dict[str, Any]:
    """A stored manifest whose parts are checked elsewhere (on the host that holds them)."""
    try:
        manifest = json.loads(raw)
    except json.JSONDecodeError:
        raise ArchiveError(f"{what} has an unreadable manifest.json") from None
    _check_major(what, manifest)
    return manifest


def _verify_zip(path: Path) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            if bad:
                raise ArchiveError(f"backup_file {path}: {bad} is corrupt (CRC mismatch)")
            names = set(archive.namelist())
            if "dump.sql" not in names or "manifest.json" not in names:
                raise ArchiveError(
                    f"backup_file {path} is not an Odoo backup: no dump.sql and manifest.json"
                )
            manifest = json.loads(archive.read("manifest.json"))
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise ArchiveError(f"backup_file {path} is truncated or corrupt ({error})") from None
    _check_major(f"backup_file {path}", manifest)
    return manifest


def _check_major(what: str, manifest: dict[str, Any]) -> None:
    major = str(manifest.get("major_version") or "")
    if major != ODOO_MAJOR:
        raise ArchiveError(
            f"{what} was made by Odoo {major or 'of unknown version'}, this stack "
            f"runs Odoo {ODOO_MAJOR}: migrate it with Odoo's upgrade tools first"
        )


def _sha256(handle: BinaryIO) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def zip_to_tar(source: Path, dest: Path) -> None:
    """An Odoo zip as the tar the host's restore reads, with sizes and sha256 in its manifest."""
    with zipfile.ZipFile(source) as archive, tarfile.open(dest, "w") as tar:
        manifest = json.loads(archive.read("manifest.json"))
        files: dict[str, dict[str, Any]] = {}
        for info in archive.infolist():
            name = info.filename
            if info.is_dir() or name == "manifest.json" or ".." in name.split("/"):
                continue
            if name != "dump.sql" and not name.startswith("filestore/"):
                continue
            with archive.open(info) as handle:
                files[name] = {"size": info.file_size, "sha256": _sha256(handle)}
            with archive.open(info) as handle:
                member = tarfile.TarInfo(name)
                member.size = info.file_size
                tar.addfile(member, handle)
        manifest.update(format="odoo-zip", files=files)
        data = manifest_bytes(manifest)
        member = tarfile.TarInfo("manifest.json")
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """JSON with one line per file entry: the host's restore reads those lines with sed."""
    files = manifest.get("files", {})
    head = {k: v for k, v in manifest.items() if k != "files"}
    body = json.dumps(head, indent=2, ensure_ascii=False)[:-2]
    lines = [
        f"    {json.dumps(name, ensure_ascii=False)}: {json.dumps(entry)}"
        for name, entry in files.items()
    ]
    return (body + ',\n  "files": {\n' + ",\n".join(lines) + "\n  }\n}\n").encode()


def tar_to_odoo_zip(source: Path, dest: Path) -> None:
    """An ``odoo-zip`` backup (tar of dump.sql, filestore/, manifest.json) as Odoo's zip."""
    with (
        tarfile.open(source, "r:") as tar,
        zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive,
    ):
        members = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
        order = [
            "dump.sql",
            "manifest.json",
            *sorted(n for n in members if n not in ("dump.sql", "manifest.json")),
        ]
        for name in order:
            handle = tar.extractfile(members[name])
            assert handle is not None
            with archive.open(name, "w", force_zip64=True) as out:
                for block in iter(lambda h=handle: h.read(1 << 20), b""):
                    out.write(block)
