"""Retention of the off-host repository, with the backup host's own authority:
``make offsite_prune ENV=prod``.

    pyinfra -y inventories/prod.py tasks/offsite_prune.py

On the backup host, as the account owning the repository (not through the stack hosts'
append-only key, which cannot delete): ``borg prune`` keeping offsite_keep_daily / weekly /
monthly archives, then ``borg compact`` to free the space. It refuses (one line, nothing
pruned) when archives that the last prune kept have vanished since: borg's append-only mode
records a delete sent with a stack host's key as a new transaction, which compacting would
make final. The passphrase goes from the secrets file to a 0600 file there for the run only,
and is removed however it ends. Stack hosts are left alone.
"""

from __future__ import annotations

import shlex

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.operations import python

from tasks.errors import SettingsError, StepFailed, failing_in_one_line
from tasks.host_commands import run_on_host
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
    passphrase = f"{offsite.directory}.prune-passphrase"
    secret_file(name="The repository's passphrase, for this run only", dest=passphrase,
                content=offsite.passphrase + "\n")  # fmt: skip
    python.call(
        name=f"Prune {offsite.directory}/repo: keep {offsite.keep_daily} daily, "
        f"{offsite.keep_weekly} weekly, {offsite.keep_monthly} monthly archives",
        function=_prune,
        offsite=offsite,
        passphrase=passphrase,
        vanished_ok=bool(host.data.get("offsite_vanished_ok")),
    )


@failing_in_one_line
def _prune(offsite: OffsiteSettings, passphrase: str, vanished_ok: bool) -> None:
    repository = f"{offsite.directory}/repo"
    borg = shlex.join([
        "runuser", "-u", offsite.account, "--", "env", f"BORG_PASSCOMMAND=cat {passphrase}",
        f"BORG_BASE_DIR={offsite.directory}.borg", "BORG_RELOCATED_REPO_ACCESS_IS_OK=yes",
        "borg",
    ])  # fmt: skip
    keep = (f"--keep-daily {offsite.keep_daily} --keep-weekly {offsite.keep_weekly} "
            f"--keep-monthly {offsite.keep_monthly}")  # fmt: skip
    # The archives the last prune left: one that has gone since was not removed by pruning.
    record = shlex.quote(f"{offsite.directory}.archives")
    try:
        _run(f"chown {offsite.account}: {shlex.quote(passphrase)}", "")
        now = set(_run(f"{borg} list --short {repository}", "listing the archives"))
        left = _run(f"cat {record} 2>/dev/null || true", "")
        vanished = sorted(set(left) - now)
        if vanished and not vanished_ok:
            raise StepFailed(
                f"{len(vanished)} archive(s) vanished from {repository} since the last prune "
                f"without being pruned ({', '.join(vanished[:3])}): deleted through a stack "
                "host's append-only key? Nothing was pruned: look at the repository's "
                "transactions first (docs/offsite-backups.md), then run again with --data "
                "offsite_vanished_ok=true"
            )
        for line in _run(f"{borg} prune --list {keep} {repository} 2>&1 && "
                         f"{borg} compact {repository} 2>&1", "pruning"):  # fmt: skip
            logger.info(f"{host.name}: {line}")
        _run(f"{borg} list --short {repository} >{record}.new && mv {record}.new {record}",
             "recording the archives kept")  # fmt: skip
    finally:
        run_on_host(f"rm -f {shlex.quote(passphrase)}")


def _run(command: str, what: str) -> list[str]:
    ok, output = run_on_host(command)
    if not ok:
        lines = [line for line in output.stdout_lines + output.stderr_lines if line.strip()]
        raise StepFailed(f"{what or command} failed: {lines[-1] if lines else 'no message'}")
    return output.stdout_lines


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
