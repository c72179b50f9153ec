"""The host side of backups: scripts, their settings, the backup directory and the timer."""

from __future__ import annotations

import hashlib
from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files

from tasks import systemd_timers
from tasks.backup_settings import BackupSettings
from tasks.facts import DockerHostSurvey, PathStates
from tasks.offsite_settings import backup_host_names
from tasks.render import render
from tasks.secret_files import secret_file
from tasks.settings import Settings

SCRIPTS = Path(__file__).resolve().parent.parent / "files" / "backup"
UNIT = "dfr-backup-{env}"
SCRIPT_MODES = (
    ("dfr-common", "0644"),  # sourced by the other two
    ("dfr-backup", "0755"),
    ("dfr-order-rows", "0644"),  # run by dfr-backup in the PostgreSQL container
    ("dfr-restore", "0755"),
    ("dfr-retention", "0755"),
    ("dfr-update", "0755"),  # module updates on a snapshot, run by deploy.py
    ("dfr-put-back", "0755"),  # a snapshot put back with a release, run by rollback.py
    ("dfr-switch-odoo", "0755"),  # a new Odoo in place of the running one, run by deploy.py
    ("dfr-offsite", "0755"),  # the off-host repository (tasks/offsite.py sets it up)
    ("dfr-scheduled-backup", "0755"),  # the timer's run: backup, off-host, retention, report
)


@deploy("Backup tools")
def install_backup_tools(
    settings: Settings, backup: BackupSettings, with_timer: bool = True
) -> None:
    """Scripts, settings and directories; the daily timer too unless ``with_timer`` is False
    (backups and restores leave it to deploy.py, which owns it). With a backup host in the
    inventory, the timer's backup is sent to its repository right after it is made."""
    offsite = bool(backup_host_names())
    directories = {
        backup.host_dir: "0711",  # the backups
        # restore uploads; pg_dump's output while a backup is made. PostgreSQL's user passes
        # through both to what is its own (docs/backup-restore.md), and reads nothing else.
        f"{backup.host_dir}/incoming": "0711",
        f"{backup.host_dir}/.dumping": "0711",
        f"{settings.stack_dir}/bin": "0755",  # the scripts
    }
    env_file = render("backup.env.j2", settings, b=backup, offsite=offsite)
    uploads = {  # dest: (mode, what pyinfra uploads, its bytes)
        f"{settings.stack_dir}/bin/{script}": (
            mode,
            str(SCRIPTS / f"{script}.sh"),
            (SCRIPTS / f"{script}.sh").read_bytes(),
        )
        for script, mode in SCRIPT_MODES
    }
    uploads[f"{settings.stack_dir}/backup.env"] = ("0644", StringIO(env_file), env_file.encode())
    # Every backup and restore runs this: one fact answers "all in place?" where the
    # operations below would ask two facts per file (~0.5 s of round trips).
    wanted = {path: f"{int(mode, 8):o} -" for path, mode in directories.items()}
    wanted |= {
        path: f"{int(mode, 8):o} {hashlib.sha256(content).hexdigest()}"
        for path, (mode, _, content) in uploads.items()
    }
    if host.get_fact(PathStates, paths=tuple(wanted)) != wanted:
        for path, mode in directories.items():
            files.directory(name=f"Directory {path}", path=path, mode=mode)
        for path, (mode, src, _) in uploads.items():
            files.put(name=f"File {path}", src=src, dest=path, mode=mode, create_remote_dir=False)
    if with_timer:
        _notify_url(settings, backup)
    if with_timer and backup.schedule and host.get_fact(DockerHostSurvey).has_systemd:
        _timer(settings, backup, offsite)


def _notify_url(settings: Settings, backup: BackupSettings) -> None:
    """backup_notify_url and drill_notify_url in 0600 files (a healthchecks.io URL is a token:
    whoever has it can report a backup that never happened); gone when unset."""
    for name, url in (
        ("notify.url", backup.notify_url),
        ("drill-notify.url", backup.drill_notify_url),
    ):
        path = f"{settings.stack_dir}/{name}"
        if url:
            secret_file(name=f"File {path}", dest=path, content=url + "\n")
        else:
            files.file(name=f"No {path}", path=path, present=False)


def _timer(settings: Settings, backup: BackupSettings, offsite: bool) -> None:
    service, timer = (
        render(f"systemd/dfr-backup.{kind}.j2", settings, b=backup, offsite=offsite)
        for kind in ("service", "timer")
    )
    systemd_timers.install_timer(
        UNIT.format(env=settings.env), service, timer, "Daily backup timer"
    )
