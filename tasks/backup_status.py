"""Where the backups of an environment stand: ``make backup_status ENV=prod``.

    pyinfra -y inventories/prod.py tasks/backup_status.py

Prints, per stack host: the newest backup the host keeps, the newest archive of the off-host
repository, its age, and the repository's size. Exits non-zero when the newest off-host archive
is older than offsite_max_age_hours (26 h by default: a daily backup, and two hours' grace), or
there is none. Changes nothing.
"""

from __future__ import annotations

import time

from pyinfra import host, logger

from tasks.errors import SettingsError
from tasks.offsite import ToolAnswer, offsite_answer
from tasks.offsite_settings import is_backup_host, required_offsite_settings
from tasks.settings import Settings


def backup_status(settings: Settings) -> None:
    offsite = required_offsite_settings(host.data, settings.env, passphrase=False)
    stack_dir = settings.stack_dir
    ok, kept = host.get_fact(ToolAnswer, tool=f"{stack_dir}/bin/dfr-backup",
                             arguments="kept latest", needs=f"{stack_dir}/backup.env")  # fmt: skip
    local = kept[-1] if ok and kept else "none"
    name, epoch, size = offsite_answer(settings, "status")[-1].split()
    age = (time.time() - int(epoch)) / 3600 if epoch != "-" else None
    logger.info(
        f"{host.name}: newest backup on the host: {local}\n"
        f"{host.name}: newest off-host backup: {name if age is not None else 'none'}"
        + (f", {age:.1f} h old" if age is not None else "")
        + f"\n{host.name}: off-host repository {offsite.repository}: {int(size) / 1e6:,.1f} MB"
    )
    if age is None or age > offsite.max_age_hours:
        what = "no off-host backup" if age is None else f"the newest off-host is {age:.1f} h old"
        raise SettingsError(
            f"{host.name}: {what}, more than offsite_max_age_hours ({offsite.max_age_hours}): "
            f"see journalctl -u dfr-backup-{settings.env}.service on the host"
        )


def backup_status_entry() -> None:
    from tasks.stack import stack_settings

    if is_backup_host():
        return
    backup_status(stack_settings())


# pyinfra runs this file as a deploy without a module name; importing it defines backup_status().
if __name__ == "builtins":
    backup_status_entry()
