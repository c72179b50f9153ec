"""A restore drill of the off-host repository: ``make drill ENV=staging``.

    pyinfra -y inventories/prod.py tasks/drill.py                      # the newest archive
    pyinfra -y inventories/prod.py tasks/drill.py --data snapshot=NAME
    pyinfra -y inventories/staging.py tasks/drill.py --data offsite_env=prod
        production's newest archive, on staging's hosts (staging reads it: offsite_reads)

On each stack host: the archive is extracted from the repository, restored into a scratch
database beside the live one (every part's sha256, Odoo's tables, the module rows, every
attachment's file), Odoo is started on it once (--stop-after-init), and the scratch copy is
removed; the live database is never touched. The result goes to the metric file
(dfr_drill_<env>.prom; dfr_drill_<env>_from_<source>.prom for another environment's, labelled
env=<source>); a failed drill also to backup_notify_url's /fail (the drilling environment's),
and exits non-zero.
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
from tasks.offsite import offsite_client, reading
from tasks.offsite_settings import OffsiteSettings, is_backup_host, required_offsite_settings
from tasks.settings import Settings


@deploy("Restore drill")
def drill(
    settings: Settings,
    backup: BackupSettings,
    offsite: OffsiteSettings,
    snapshot: str,
    source: OffsiteSettings | None = None,
) -> None:
    """A drill of the repository of ``source`` (default this environment's own)."""
    source = source or offsite
    install_backup_tools(settings, backup, with_timer=False)
    offsite_client(settings, offsite, with_timers=False)
    whose = "" if source is offsite else f"{source.env}'s "
    python.call(
        name=f"Drill: restore {whose}{snapshot} from {offsite.backup_host} into a scratch "
        "database, check it, start Odoo on it, remove it",
        function=_drill,
        command=f"{settings.stack_dir}/bin/dfr-offsite {reading(settings, source.env)}drill "
        f"{shlex.quote(snapshot)}",
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
    source = offsite.source(str(host.data.get("offsite_env") or settings.env))
    snapshot = asked_snapshot(host.data)
    drill(settings, backup_settings(host.data, settings.env), offsite, snapshot, source)


# pyinfra runs this file as a deploy without a module name; importing it only defines drill().
if __name__ == "builtins":
    drill_entry()
