"""The backup host's own retention: bin/dfr-offsite-prune and, with offsite_prune_schedule, the
passphrase it keeps (0600, root) and the dfr-offsite-prune-<env> timer that runs it.

Both the timer and ``make offsite_prune`` run the same script; without a schedule the backup
host keeps no passphrase (the manual run brings one for its run only) and no timer: a deploy
after the schedule is set back to None removes both.
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files

from tasks import systemd_timers
from tasks.backup_settings import BackupSettings
from tasks.facts import PathStates
from tasks.offsite_settings import OffsiteSettings
from tasks.render import render_template
from tasks.secret_files import secret_file

SCRIPTS = Path(__file__).resolve().parent.parent / "files" / "backup"
UNIT = "dfr-offsite-prune-{env}"


def prune_tool(offsite: OffsiteSettings) -> str:
    return f"{offsite.tools_dir}/bin/dfr-offsite-prune"


def stored_passphrase(offsite: OffsiteSettings) -> str:
    return f"{offsite.tools_dir}/offsite.passphrase"


@deploy("Off-host retention on the backup host")
def prune_on_backup_host(offsite: OffsiteSettings, backup: BackupSettings) -> None:
    """The tool and its settings always; the passphrase and the timer with a schedule."""
    tools = offsite.tools_dir
    for path in (tools, f"{tools}/bin"):
        files.directory(name=f"Directory {path}", path=path, user="root", group="root",
                        mode="0755")  # fmt: skip
    for script, mode in (("dfr-common", "0644"), ("dfr-offsite-prune", "0755")):
        files.put(name=f"File {tools}/bin/{script}", src=str(SCRIPTS / f"{script}.sh"),
                  dest=f"{tools}/bin/{script}", user="root", group="root", mode=mode,
                  create_remote_dir=False)  # fmt: skip
    env_file = render_template("offsite-prune.env.j2", o=offsite, b=backup)
    files.put(name=f"File {tools}/backup.env", src=StringIO(env_file),
              dest=f"{tools}/backup.env", user="root", group="root", mode="0644",
              create_remote_dir=False)  # fmt: skip
    notify = f"{tools}/notify.url"
    if backup.notify_url:
        secret_file(name=f"File {notify}", dest=notify, content=backup.notify_url + "\n")
    else:
        files.file(name=f"No {notify}", path=notify, present=False)
    if offsite.prune_schedule:
        secret_file(name=f"File {stored_passphrase(offsite)}", dest=stored_passphrase(offsite),
                    content=offsite.passphrase + "\n")  # fmt: skip
        _timer(offsite)
    else:
        _no_timer(offsite)


def _timer(offsite: OffsiteSettings) -> None:
    service, timer = (
        render_template(f"systemd/dfr-offsite-prune.{kind}.j2", o=offsite)
        for kind in ("service", "timer")
    )
    systemd_timers.install_timer(UNIT.format(env=offsite.env), service, timer, "Prune timer")


def _no_timer(offsite: OffsiteSettings) -> None:
    """No passphrase kept, no timer: what a deploy without offsite_prune_schedule leaves."""
    unit = UNIT.format(env=offsite.env)
    timer = f"{systemd_timers.UNITS}/{unit}.timer"
    present = host.get_fact(PathStates, paths=(stored_passphrase(offsite), timer)) or {}
    if timer in present:
        systemd_timers.remove_timer(unit, "offsite_prune_schedule is None")
    if stored_passphrase(offsite) in present:
        files.file(name=f"No {stored_passphrase(offsite)}", path=stored_passphrase(offsite),
                   present=False)  # fmt: skip
