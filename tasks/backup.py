"""Back up the DFR stack: database and Odoo filestore together, streamed to this machine.

    pyinfra inventories/prod.py tasks/backup.py                        # into backups/prod/
    pyinfra inventories/prod.py tasks/backup.py --data format=odoo-zip # Odoo's zip format
    pyinfra inventories/prod.py tasks/backup.py --data backup_dir=/srv/dfr-backups
    pyinfra inventories/prod.py tasks/backup.py --data fetch=latest     # copy the host's newest
    pyinfra inventories/prod.py tasks/backup.py --data fetch=NAME       # ... or a named one
    pyinfra inventories/prod.py tasks/backup.py --data offsite=true     # made on the host, sent
                                                                        # off-host (as the timer)

On the host, pg_dump runs inside the postgres container (its version always matches the
server): directory format, parallel jobs, zstd; meanwhile the filestore is tarred, and
manifest.json lists versions, modules and the size and sha256 of every part. The backup streams
over the SSH connection while it is made (the filestore's tar as it is made, then the dump, the
manifest last) into NAME.partial, written around the page cache, every part checked against
the manifest as it arrives, and is renamed only once verified and fsynced. One backup or fetch
writes into a backup directory at a time; it first removes the NAME.partial files that runs
killed outright (kill -9, a crash of this machine) left there.

``fetch`` makes no backup: it downloads one the host keeps (the scheduled nightly one, say) the
same way, checked as it arrives, under the name it has on the host.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shlex
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.operations import python

from tasks.archive import tar_to_odoo_zip, verify, verify_tar_stream
from tasks.backup_settings import BackupSettings, backup_settings
from tasks.backup_tools import install_backup_tools
from tasks.disk_writer import DiskWriter
from tasks.errors import SettingsError, StepFailed, failing_in_one_line
from tasks.facts import BackupSizeEstimate
from tasks.host_commands import run_on_host
from tasks.offsite import offsite_client
from tasks.offsite_settings import OffsiteSettings, is_backup_host, required_offsite_settings
from tasks.settings import Settings
from tasks.transfer import TransferError, download

FORMATS = ("dfr", "odoo-zip")


class BackupError(StepFailed):
    pass


@deploy("Backup")
def backup(settings: Settings, backup: BackupSettings, archive_format: str = "dfr") -> None:
    if archive_format not in FORMATS:
        raise SettingsError(f"format {archive_format!r} is unknown: use {' or '.join(FORMATS)}")
    install_backup_tools(settings, backup, with_timer=False)
    python.call(
        name=f"Back up {settings.project} ({archive_format}) to {backup.local_dir}/",
        function=_back_up,
        settings=settings,
        backup=backup,
        archive_format=archive_format,
    )


@deploy("Off-host backup")
def offsite_backup(settings: Settings, backup: BackupSettings, offsite: OffsiteSettings) -> None:
    """What the timer does: a backup made and kept on the host, sent to the off-host
    repository, then the host's retention."""
    install_backup_tools(settings, backup, with_timer=False)
    offsite_client(settings, offsite, with_timers=False)
    python.call(
        name=f"Back up {settings.project} on the host and send it to {offsite.backup_host}",
        function=_back_up_offsite,
        settings=settings,
        backup=backup,
    )


@failing_in_one_line
def _back_up_offsite(settings: Settings, backup: BackupSettings) -> None:
    bin_dir = f"{settings.stack_dir}/bin"
    name = _run(f"{bin_dir}/dfr-backup create", show_log=True)[-1].split()[0]
    logger.info(f"{host.name}: backup {name} made on the host")
    _run(f"{bin_dir}/dfr-offsite push {shlex.quote(name)}")
    logger.info(f"{host.name}: backup {name} is off-host")
    if backup.keep_on_host:
        for line in _run(f"{bin_dir}/dfr-backup retention"):
            logger.info(f"{host.name}: {line}")
    else:
        _run(f"{bin_dir}/dfr-backup remove {shlex.quote(name)}")


@deploy("Fetch a backup")
def fetch_backup(settings: Settings, backup: BackupSettings, backup_name: str = "latest") -> None:
    install_backup_tools(settings, backup, with_timer=False)
    python.call(
        name=f"Download the host's backup {backup_name} to {backup.local_dir}/",
        function=_fetch,
        settings=settings,
        backup=backup,
        wanted=backup_name,
    )


def _run(command: str, show_log: bool = False) -> list[str]:
    """``command``'s output lines on the host; with ``show_log``, its log lines are shown."""
    ok, output = run_on_host(command)
    if not ok:
        errors = [line for line in output.stderr_lines if "ERROR" in line] or output.stderr_lines
        raise BackupError(errors[-1] if errors else f"{command} failed")
    if show_log:
        for line in output.stderr_lines:
            logger.info(f"{host.name}: {line}")
    return output.stdout_lines


@failing_in_one_line
def _back_up(settings: Settings, backup: BackupSettings, archive_format: str) -> None:
    tool = f"{settings.stack_dir}/bin/dfr-backup"
    suffix = "odoo-zip" if archive_format == "odoo-zip" else "dfrbak"
    name = f"{settings.env}-{settings.db_name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    name = f"{name}.{suffix}"
    final = backup.local_dir / (
        name.removesuffix(".odoo-zip") + ".zip" if archive_format == "odoo-zip" else name
    )
    # Made and streamed at once: each part leaves the host as soon as it is complete, so the
    # total is not known before the end; an estimate gives the ETA.
    estimate = host.get_fact(
        BackupSizeEstimate,
        directory=backup.host_dir,
        suffix=suffix,
        project=settings.project,
        db_name=settings.db_name,
    )
    try:
        with _sole_writer(backup.local_dir), _partial(backup.local_dir / name) as partial:
            _download_checked(f"{tool} create --format {archive_format} --name {name} --stream",
                              partial, name, estimate)  # fmt: skip
            if archive_format == "odoo-zip":
                with _partial(final) as zipped:
                    tar_to_odoo_zip(partial, zipped)
                    verify(zipped)
                    zipped.rename(final)
            else:
                partial.rename(final)
    except (OSError, TransferError, SettingsError) as error:
        raise BackupError(f"backup {name} failed: {error}") from None
    logger.info(f"{host.name}: backup written to {final}")
    if backup.keep_on_host and archive_format == "dfr":
        for line in _run(f"{tool} retention"):
            logger.info(f"{host.name}: {line}")
    else:
        _run(f"{tool} remove {name}")


@failing_in_one_line
def _fetch(settings: Settings, backup: BackupSettings, wanted: str) -> None:
    tool = f"{settings.stack_dir}/bin/dfr-backup"
    answer = _run(f"{tool} kept {shlex.quote(wanted)}")
    name, size = trusted_kept_backup(answer[-1] if answer else "", wanted)
    final = backup.local_dir / name
    try:
        with _sole_writer(backup.local_dir), _partial(final) as partial:
            _download_checked(f"{tool} stream {shlex.quote(name)}", partial, name, size)
            partial.rename(final)
    except (OSError, TransferError, SettingsError) as error:
        raise BackupError(f"fetching backup {name} failed: {error}") from None
    logger.info(f"{host.name}: backup {name} written to {final}")


# A backup's name, as dfr-backup makes them (ENV-DB-YYYYmmddTHHMMSSZ.dfrbak, DB a database
# name) or --name gives them: one file name, no path, not hidden, no "..".
_BACKUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,200}\.dfrbak")
_SIZE = re.compile(r"[0-9]{1,19}")  # ASCII digits only (str.isdigit takes "²")


def is_backup_name(name: str) -> bool:
    return _BACKUP_NAME.fullmatch(name) is not None and ".." not in name


def asked_snapshot(data: Any) -> str:
    """``--data snapshot=``: latest, or the name of an archive of the off-host repository."""
    snapshot = str(data.get("snapshot") or "latest")
    if snapshot != "latest" and not is_backup_name(snapshot):
        raise SettingsError(
            f"snapshot {snapshot!r} is not an archive's name: give latest or a NAME.dfrbak "
            "that tasks/backup_status.py lists"
        )
    return snapshot


def asked_backup(fetch: str) -> str:
    """``--data fetch=``: latest, or the name of a backup the host keeps."""
    if fetch != "latest" and not is_backup_name(fetch):
        raise SettingsError(
            f"fetch {fetch!r} is not a backup's name: give latest or a NAME.dfrbak the host "
            "keeps (dfr-backup's names, no path)"
        )
    return fetch


def trusted_kept_backup(line: str, wanted: str) -> tuple[str, int]:
    """The name and size a host printed for the backup ``wanted`` (a name, or ``latest``),
    refused unless the name is a backup's file name (no path, nothing hidden) and the one
    asked for: this machine writes to backup_dir/<name>, so a host cannot choose where."""
    name, _, size = line.rpartition(" ")
    if not is_backup_name(name) or not _SIZE.fullmatch(size):
        raise BackupError(
            f"the host answered {line[:120]!r} for the backup {wanted}, not a backup's name "
            "and size: nothing was fetched; check the host's dfr-backup"
        )
    if wanted != "latest" and name not in (wanted, f"{wanted}.dfrbak"):
        raise BackupError(
            f"the host answered backup {name} when {wanted} was asked for: nothing was "
            "fetched; check the host's dfr-backup"
        )
    return name, int(size)


@contextlib.contextmanager
def _sole_writer(directory: Path) -> Iterator[None]:
    """Holds ``directory`` for one backup or fetch and removes the NAME.partial files in it:
    with the lock held, no run is writing them. The lock is a flock of the directory itself: it
    goes with the process however that ends, and leaves no lock file behind."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle = os.open(directory, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(
                f"another backup or fetch is writing to {directory}: run this one once it has ended"
            ) from None
        for left in sorted(directory.glob("*.partial")):
            logger.info(f"{host.name}: removing {left.name}, left by a backup or fetch that never"
                        " finished")  # fmt: skip
            left.unlink()
        yield
    finally:
        os.close(handle)


@contextlib.contextmanager
def _partial(path: Path) -> Iterator[Path]:
    """``path`` + ".partial", readable by us only (farmer records and password hashes), removed
    on the way out unless it was renamed meanwhile."""
    partial = path.with_name(path.name + ".partial")
    partial.touch(mode=0o600)
    try:
        yield partial
    finally:
        partial.unlink(missing_ok=True)


def _download_checked(command: str, partial: Path, name: str, total: int | None) -> None:
    """The backup that ``command`` writes as a tar into ``partial``, every part checked against
    the manifest as it arrives (ArchiveError if one does not match)."""
    with DiskWriter(partial) as handle:
        download(
            command,
            handle,
            f"{host.name}: {name}",
            total=total,
            check=lambda stream: verify_tar_stream(stream, f"the backup stream of {name}"),
        )


def backup_entry() -> None:
    from tasks.stack import stack_settings

    if is_backup_host():
        return
    settings = stack_settings()
    settings_of_backups = backup_settings(host.data, settings.env)
    fetch = host.data.get("fetch")
    if str(host.data.get("offsite") or "").lower() not in ("", "0", "false", "no"):
        if fetch or host.data.get("format"):
            raise SettingsError("offsite=true makes a backup and sends it off-host: leave out "
                                "fetch and format")  # fmt: skip
        offsite = required_offsite_settings(host.data, settings.env)
        offsite_backup(settings, settings_of_backups, offsite)
    elif fetch:
        if host.data.get("format"):
            raise SettingsError("fetch downloads a backup the host keeps: leave out format")
        fetch_backup(settings, settings_of_backups, backup_name=asked_backup(str(fetch)))
    else:
        archive_format = str(host.data.get("format") or "dfr")
        backup(settings, settings_of_backups, archive_format=archive_format)


# pyinfra runs this file as a deploy without a module name; importing it only defines backup().
if __name__ == "builtins":
    backup_entry()
