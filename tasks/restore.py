"""Restore a backup into the DFR stack, never destroying first.

    pyinfra inventories/staging.py tasks/restore.py --data backup_file=backups/prod/NAME.dfrbak
    pyinfra inventories/prod.py tasks/restore.py --data backup_file=... --data confirm=prod
    ... --data drop_old=true      remove the previous database instead of keeping it (not in prod)
    ... --data confirm_source=ENV  into prod, a backup made in ENV (staging, dev, unknown)
    pyinfra inventories/prod.py tasks/restore.py --data from=offsite --data snapshot=latest|NAME
                                  from the off-host repository, unpacked on the host itself
    pyinfra inventories/staging.py tasks/restore.py --data from=offsite --data offsite_env=prod
                                  from production's repository, which staging reads
                                  (offsite_reads), neutralized like any copy of production

The archive (a dfr backup, or a zip from Odoo's database manager) is checked here against its
manifest (its filestore part for its size only: the host hashes that as it arrives), uploaded
(not at all when the host still keeps this very backup) and restored as it arrives: every part
checked on the host, restored into a new database with the server's own pg_restore
(--exit-on-error), its filestore unpacked alongside; the new database is checked
(Odoo's tables, module rows, every attachment's file), neutralized outside production, and only
then swapped in while Odoo is stopped. The previous database and filestore are kept as
<db>_old_<timestamp>, and put back if Odoo does not serve the restored database.
"""

from __future__ import annotations

import atexit
import hashlib
import shlex
import shutil
import tempfile
import zipfile
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.files import Sha256File
from pyinfra.operations import python, server

from tasks.archive import checked_manifest, stored_manifest, verify, zip_to_tar
from tasks.backup import asked_snapshot
from tasks.backup_settings import BackupSettings, backup_settings
from tasks.backup_tools import install_backup_tools
from tasks.deploy_lock import hold_deploy_lock
from tasks.errors import SettingsError
from tasks.facts import FreeBytes
from tasks.offsite import offsite_client, offsite_manifest, reading
from tasks.offsite_settings import OffsiteSettings, is_backup_host, required_offsite_settings
from tasks.restore_upload import STREAMED, upload_and_restore
from tasks.settings import Settings
from tasks.stack import check_health_through_nginx, stack_settings


@deploy("Restore")
def restore(settings: Settings, backup: BackupSettings, backup_file: Path) -> None:
    if settings.is_prod and str(host.data.get("confirm") or "") != "prod":
        raise SettingsError(
            "restore replaces production's live database: add --data confirm=prod to go ahead"
        )
    kept = _kept_on_host(backup, backup_file)
    if kept is not None:
        # Restored from the host's own copy, whose every part is checked there.
        manifest, archive = checked_manifest(kept, f"backup_file {backup_file}"), backup_file
    else:
        # The filestore part is checked on the host as it arrives (see restore_upload).
        manifest, archive = verify(backup_file, unhashed=(STREAMED,)), _as_tar(backup_file)
    if settings.is_prod:
        _check_for_production(manifest, backup_file)
    name = backup_file.name.removesuffix(".zip") + (".tar" if archive != backup_file else "")
    size = archive.stat().st_size
    # The filestore unpacked and the database restored, next to what is uploaded: all of the
    # archive but its filestore.tar, which is unpacked as it arrives (see restore_upload).
    streamed = int(manifest.get("files", {}).get(STREAMED, {}).get("size") or 0)
    uploaded = 0 if kept else size - streamed
    needed = uploaded + size + int(manifest.get("database_bytes") or 0)
    _check_room(backup, needed)

    install_backup_tools(settings, backup, with_timer=False)
    options = [] if settings.is_prod else ["--neutralize"]
    if host.data.get("drop_old"):
        options.append("--drop-old")
    dfr_restore = f"{settings.stack_dir}/bin/dfr-restore"
    if kept is not None:
        server.shell(
            name=f"Restore {backup_file.name} from the copy the host kept of it (same manifest: "
            "not uploaded) into a new database, check it, swap it in",
            commands=[shlex.join([dfr_restore, name, *options])],
        )
    else:
        python.call(
            name=f"Upload {backup_file.name} ({size / 1e6:,.1f} MB) and restore it into a new "
            "database as it arrives (the filestore while the database is restored), check it, "
            "swap it in",
            function=upload_and_restore,
            archive=archive,
            restore_command=shlex.join([dfr_restore, f"incoming/{name}", *options]),
            label=f"{host.name}: upload {backup_file.name}",
        )
    check_health_through_nginx(settings)


def _check_room(backup: BackupSettings, needed: int) -> None:
    free = host.get_fact(FreeBytes, path=backup.host_dir)
    if free < needed:
        raise SettingsError(
            f"{host.name} has {free / 1e9:.2f} GB free in {backup.host_dir}, the restore needs "
            f"about {needed / 1e9:.2f} GB: free some space first"
        )


@deploy("Restore from off-host")
def restore_from_offsite(
    settings: Settings,
    backup: BackupSettings,
    offsite: OffsiteSettings,
    snapshot: str,
    source: OffsiteSettings | None = None,
) -> None:
    """The archive ``snapshot`` (or the newest: ``latest``) of the off-host repository of
    ``source`` (default this environment's own), unpacked on the host and restored exactly as
    a backup the host keeps."""
    source = source or offsite
    if settings.is_prod and str(host.data.get("confirm") or "") != "prod":
        raise SettingsError(
            "restore replaces production's live database: add --data confirm=prod to go ahead"
        )
    name, manifest = offsite_manifest(settings, snapshot, source.env)
    if settings.is_prod:
        _check_for_production(manifest, Path(name))
    parts = sum(int(part.get("size") or 0) for part in manifest.get("files", {}).values())
    needed = 2 * parts + int(manifest.get("database_bytes") or 0)
    _check_room(backup, needed)
    install_backup_tools(settings, backup, with_timer=False)
    offsite_client(settings, offsite, with_timers=False)
    options = [] if settings.is_prod else ["--neutralize"]
    if host.data.get("drop_old"):
        options.append("--drop-old")
    bin_dir = f"{settings.stack_dir}/bin"
    whose = "" if source is offsite else f" of {source.env}"
    restore = f"{bin_dir}/dfr-offsite {reading(settings, source.env)}restore "
    server.shell(
        name=f"Restore {name} from {offsite.backup_host}'s repository{whose} into a new "
        "database, check it, swap it in",
        commands=[restore + shlex.join([name, *options])],
    )
    check_health_through_nginx(settings)


def _check_for_production(manifest: dict, backup_file: Path) -> None:
    """Production keeps its previous database (the way back), and takes a backup of another
    environment (neutralized: no mail, no crons) only when told which one, explicitly."""
    if host.data.get("drop_old"):
        raise SettingsError(
            "drop_old is refused in production: the previous database is the way back if the "
            "restored one turns out wrong; drop it by hand once the restore is proven"
        )
    made_in = str(manifest.get("environment") or "unknown")
    if made_in != "prod" and str(host.data.get("confirm_source") or "") != made_in:
        raise SettingsError(
            f"backup_file {backup_file.name} was made in {made_in}, not production (a "
            "neutralized copy has no mail and no crons): to restore it into production anyway, "
            f"add --data confirm_source={made_in}"
        )


def _kept_on_host(backup: BackupSettings, backup_file: Path) -> bytes | None:
    """The manifest of ``backup_file`` if the host still holds this very backup (dfr-backup
    keeps a copy under the same name): then nothing needs uploading."""
    raw = stored_manifest(backup_file)
    if raw is None:
        return None
    path = f"{backup.host_dir}/{backup_file.name}/manifest.json"
    return raw if host.get_fact(Sha256File, path=path) == hashlib.sha256(raw).hexdigest() else None


def _as_tar(backup_file: Path) -> Path:
    """Odoo zips are converted here into the tar the host reads (no unzip needed there). The
    copy is removed when pyinfra exits, whether the restore ran, failed or was a --dry run."""
    if not zipfile.is_zipfile(backup_file):
        return backup_file
    directory = tempfile.mkdtemp(prefix="dfr-restore-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    converted = Path(directory) / (backup_file.stem + ".tar")
    zip_to_tar(backup_file, converted)
    return converted


def restore_entry() -> None:
    if is_backup_host():  # it runs no stack
        return
    source = str(host.data.get("from") or "file")
    if source == "offsite":
        _restore_from_offsite_entry()
        return
    if source != "file":
        raise SettingsError(f"from {source!r} is unknown: use from=offsite, or backup_file=PATH")
    if host.data.get("offsite_env"):
        raise SettingsError("offsite_env names an off-host repository: add --data from=offsite")
    value = host.data.get("backup_file")
    if not value:
        raise SettingsError(
            "backup_file is not set: add --data backup_file=PATH (a backup on this machine)"
        )
    settings = stack_settings()
    hold_deploy_lock(settings, "tasks/restore.py")
    restore(settings, backup_settings(host.data, settings.env), Path(str(value)))


def _restore_from_offsite_entry() -> None:
    if host.data.get("backup_file"):
        raise SettingsError("from=offsite restores from the repository: leave out backup_file")
    settings = stack_settings()
    offsite = required_offsite_settings(host.data, settings.env)
    source = offsite.source(str(host.data.get("offsite_env") or settings.env))
    snapshot = asked_snapshot(host.data)
    hold_deploy_lock(settings, "tasks/restore.py")
    restore_from_offsite(
        settings, backup_settings(host.data, settings.env), offsite, snapshot, source
    )


# pyinfra runs this file as a deploy without a module name; importing it only defines restore().
if __name__ == "builtins":
    restore_entry()
