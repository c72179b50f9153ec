"""The host side of backups: scripts, their settings, the backup directory and the timer."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from tasks.backup_settings import BackupSettings
from tasks.facts import DockerHostSurvey
from tasks.render import render
from tasks.settings import Settings

SCRIPTS = Path(__file__).resolve().parent.parent / "files" / "backup"
UNIT = "dfr-backup-{env}"


@deploy("Backup tools")
def install_backup_tools(
    settings: Settings, backup: BackupSettings, with_timer: bool = True
) -> None:
    """Scripts, settings and directories; the daily timer too unless ``with_timer`` is False
    (backups and restores leave it to deploy.py, which owns it)."""
    files.directory(name="Backup directory", path=backup.host_dir, mode="0711")
    files.directory(name="Restore uploads", path=f"{backup.host_dir}/incoming", mode="0700")
    files.directory(name="Scripts directory", path=f"{settings.stack_dir}/bin", mode="0755")
    for script, mode in (
        ("dfr-common", "0644"),  # sourced by the other two
        ("dfr-backup", "0755"),
        ("dfr-restore", "0755"),
        ("dfr-retention", "0755"),
    ):
        files.put(
            name=f"Script {script}",
            src=str(SCRIPTS / f"{script}.sh"),
            dest=f"{settings.stack_dir}/bin/{script}",
            mode=mode,
            create_remote_dir=False,
        )
    files.put(
        name="Backup settings (backup.env)",
        src=StringIO(render("backup.env.j2", settings, b=backup)),
        dest=f"{settings.stack_dir}/backup.env",
        mode="0644",
        create_remote_dir=False,
    )
    if with_timer and backup.schedule and host.get_fact(DockerHostSurvey).has_systemd:
        _timer(settings, backup)


def _timer(settings: Settings, backup: BackupSettings) -> None:
    unit = UNIT.format(env=settings.env)
    written = [
        files.put(
            name=f"Unit {unit}.{kind}",
            src=StringIO(render(f"systemd/dfr-backup.{kind}.j2", settings, b=backup)),
            dest=f"/etc/systemd/system/{unit}.{kind}",
            mode="0644",
            create_remote_dir=False,
        )
        for kind in ("service", "timer")
    ]
    systemd.daemon_reload(name="Reload systemd units", _if=any_changed(*written))
    systemd.service(
        name=f"Daily backup timer {unit}.timer",
        service=f"{unit}.timer",
        running=True,
        enabled=True,
    )
