"""Keys of stack hosts that left the inventory, revoked on the backup host.

Each stack host's line in the repository account's authorized_keys ends with the marker
``dfr-offsite:<env>:<host>`` (tasks/offsite.py). A host lost to a disaster, or retired, is no
longer in the inventory: the deploy of its environment removes its line, so its key (wherever
a copy of it is) can no longer add to the repository. Lines of other environments are theirs.
"""

from __future__ import annotations

import shlex

from pyinfra import host, state
from pyinfra.api import deploy
from pyinfra.operations import server

from tasks.facts import FileText
from tasks.offsite_settings import OffsiteSettings, is_backup_host


def departed_hosts(authorized: str, env: str, stack_hosts: set[str]) -> list[str]:
    """The hosts of ``env`` with a line in ``authorized`` (whole markers compared) that are not
    among ``stack_hosts``."""
    prefix = f"dfr-offsite:{env}:"
    markers = (line.split()[-1] for line in authorized.splitlines() if line.split())
    return sorted({m[len(prefix) :] for m in markers if m.startswith(prefix)} - stack_hosts - {""})


@deploy("Off-host keys of departed hosts")
def revoke_departed_keys(offsite: OffsiteSettings) -> None:
    base = offsite.directory.rsplit("/", 1)[0]
    keys = f"{base}/.ssh/authorized_keys"
    stack_hosts = {h.name for h in state.inventory if not is_backup_host(h)}
    authorized = host.get_fact(FileText, path=keys) or ""
    departed = departed_hosts(authorized, offsite.env, stack_hosts)
    if not departed:
        return
    # Under the lock the stack hosts take to authorize theirs; the file is read again there.
    drop = (
        'BEGIN { n = split(hosts, h, " "); for (i = 1; i <= n; i++) gone[h[i]] } '
        "index($NF, prefix) == 1 && (substr($NF, length(prefix) + 1) in gone) { next } "
        "{ print }"
    )
    script = (
        f"set -e; exec 9>>{base}/.ssh/.lock; flock 9; "
        f"awk -v prefix={shlex.quote(f'dfr-offsite:{offsite.env}:')} "
        f"-v hosts={shlex.quote(' '.join(departed))} {shlex.quote(drop)} {keys} >{keys}.new; "
        f"chown {offsite.account}: {keys}.new; chmod 0600 {keys}.new; mv {keys}.new {keys}"
    )
    server.shell(
        name=f"Revoke the off-host keys of hosts no longer in the inventory: {', '.join(departed)}",
        commands=[f"sh -c {shlex.quote(script)}"],
    )
