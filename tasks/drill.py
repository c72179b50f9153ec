"""A restore drill of the off-host repository: ``make drill ENV=staging``.

    pyinfra -y inventories/prod.py tasks/drill.py                      # the newest archive
    pyinfra -y inventories/prod.py tasks/drill.py --data snapshot=NAME

On each stack host: the archive is extracted from the repository, restored into a scratch
database beside the live one (every part's sha256, Odoo's tables, the module rows, every
attachment's file), Odoo is started on it once (--stop-after-init), and the scratch copy is
removed; the live database is never touched. The result goes to the metric file
(dfr_drill_<env>.prom); a failed drill also to backup_notify_url's /fail, and exits non-zero.
"""

from __future__ import annotations

import shlex

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.operations import python

from tasks.backup import asked_snapshot
from tasks.backup_settings import BackupSettings, backup_settings
from tasks.backup_tools import install_backup_tools
from tasks.errors import StepFailed, failing_in_one_line
from tasks.host_commands import run_on_host
from tasks.offsite import offsite_client
from tasks.offsite_settings import OffsiteSettings, is_backup_host, required_offsite_settings
from tasks.settings import Settings


@deploy("Restore drill")
def drill(
    settings: Settings, backup: BackupSettings, offsite: OffsiteSettings, snapshot: str
) -> None:
    install_backup_tools(settings, backup, with_timer=False)
    offsite_client(settings, offsite)
    python.call(
        name=f"Drill: restore {snapshot} from {offsite.backup_host} into a scratch database, "
        "check it, start Odoo on it, remove it",
        function=_drill,
        command=f"{settings.stack_dir}/bin/dfr-offsite drill {shlex.quote(snapshot)}",
    )


@failing_in_one_line
def _drill(command: str) -> None:
    ok, output = run_on_host(command)
    for line in output.stderr_lines:
        logger.info(f"{host.name}: {line}")
    if not ok:
        errors = [line for line in output.stderr_lines if "ERROR" in line]
        raise StepFailed(errors[-1].split("ERROR: ", 1)[-1] if errors else f"{command} failed")


def drill_entry() -> None:
    from tasks.stack import stack_settings

    if is_backup_host():
        return
    settings = stack_settings()
    offsite = required_offsite_settings(host.data, settings.env)
    snapshot = asked_snapshot(host.data)
    drill(settings, backup_settings(host.data, settings.env), offsite, snapshot)


# pyinfra runs this file as a deploy without a module name; importing it only defines drill().
if __name__ == "builtins":
    drill_entry()
