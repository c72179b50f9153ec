"""Retention of the off-host repository, with the backup host's own authority, by hand:
``make offsite_prune ENV=prod``.

    pyinfra -y inventories/prod.py tasks/offsite_prune.py

Runs bin/dfr-offsite-prune on the backup host (installed by deploy.py; its timer runs the same
script, tasks/offsite_prune_timer.py): as the account owning the repository (not through the
stack hosts' append-only key, which cannot delete), ``borg prune`` keeping offsite_keep_daily /
weekly / monthly archives, then ``borg compact`` to free the space. It refuses (one line,
nothing pruned) when archives that the last prune kept have vanished since: borg's append-only
mode records a delete sent with a stack host's key as a new transaction, which compacting would
make final. With offsite_prune_schedule the backup host keeps the passphrase and the run uses
it; without, the passphrase goes from the secrets file to a 0600 file there for the run only,
removed however it ends. Stack hosts are left alone.
"""

from __future__ import annotations

import shlex

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.operations import python

from tasks.errors import SettingsError, StepFailed, failing_in_one_line
from tasks.facts import PathStates
from tasks.host_commands import run_on_host
from tasks.offsite_prune_timer import prune_tool, stored_passphrase
from tasks.offsite_settings import (
    NO_REPOSITORY,
    OffsiteSettings,
    backup_host_names,
    is_backup_host,
    offsite_settings,
)
from tasks.secret_files import secret_file


@deploy("Prune the off-host repository")
def prune_repository(offsite: OffsiteSettings) -> None:
    tool = prune_tool(offsite)
    if tool not in (host.get_fact(PathStates, paths=(tool,)) or {}):
        raise SettingsError(
            f"{host.name} has no {tool} yet: run deploy.py first (it installs the prune tool)"
        )
    if offsite.prune_schedule:
        passphrase, temporary = stored_passphrase(offsite), False
    else:
        passphrase, temporary = f"{offsite.tools_dir}/prune.passphrase", True
        secret_file(name="The repository's passphrase, for this run only", dest=passphrase,
                    content=offsite.passphrase + "\n")  # fmt: skip
    python.call(
        name=f"Prune {offsite.directory}/repo: keep {offsite.keep_daily} daily, "
        f"{offsite.keep_weekly} weekly, {offsite.keep_monthly} monthly archives",
        function=_prune,
        offsite=offsite,
        passphrase=passphrase,
        temporary=temporary,
        vanished_ok=bool(host.data.get("offsite_vanished_ok")),
    )


@failing_in_one_line
def _prune(offsite: OffsiteSettings, passphrase: str, temporary: bool, vanished_ok: bool) -> None:
    command = shlex.join([
        prune_tool(offsite), "--passphrase-file", passphrase,
        "--keep-daily", str(offsite.keep_daily), "--keep-weekly", str(offsite.keep_weekly),
        "--keep-monthly", str(offsite.keep_monthly), *(["--vanished-ok"] if vanished_ok else []),
    ])  # fmt: skip
    try:
        ok, output = run_on_host(command)
    finally:
        if temporary:
            run_on_host(f"rm -f {shlex.quote(passphrase)}")
    for line in output.stderr_lines:
        logger.info(f"{host.name}: {line}")
    if not ok:
        errors = [line for line in output.stderr_lines if "ERROR: " in line]
        raise StepFailed(
            errors[-1].split("ERROR: ", 1)[1] if errors else f"{prune_tool(offsite)} failed"
        )


def offsite_prune_entry() -> None:
    if not is_backup_host():
        if not backup_host_names():
            raise SettingsError(NO_REPOSITORY)
        return
    offsite = offsite_settings(host.data, str(host.data.get("dfr_env")))
    if offsite is None:
        raise SettingsError(NO_REPOSITORY)
    prune_repository(offsite)


# pyinfra runs this file as a deploy without a module name; importing it only defines
# prune_repository().
if __name__ == "builtins":
    offsite_prune_entry()
