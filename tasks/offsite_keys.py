"""Keys of stack hosts that left the inventory, revoked on the backup host.

Each stack host's line in the repository account's authorized_keys ends with the marker
``dfr-offsite:<env>:<host>``, and its read key's (offsite_reads) with
``dfr-offsite-read:<env>:<host>`` (tasks/offsite.py). A host lost to a disaster, or retired,
is no longer in the inventory: the deploy of its environment removes its lines, so its keys
(wherever a copy of them is) can no longer add to or read the repositories. Lines of other
environments are theirs.
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
    prefixes = _prefixes(env)
    markers = (line.split()[-1] for line in authorized.splitlines() if line.split())
    hosts = {m[len(p) :] for m in markers for p in prefixes if m.startswith(p)}
    return sorted(hosts - stack_hosts - {""})


def _prefixes(env: str) -> tuple[str, str]:
    return f"dfr-offsite:{env}:", f"dfr-offsite-read:{env}:"


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
    gone = " ".join(prefix + name for name in departed for prefix in _prefixes(offsite.env))
    drop = 'BEGIN { n = split(gone, m, " "); for (i = 1; i <= n; i++) out[m[i]] } !($NF in out)'
    script = (
        f"set -e; exec 9>>{base}/.ssh/.lock; flock 9; "
        f"awk -v gone={shlex.quote(gone)} {shlex.quote(drop)} {keys} >{keys}.new; "
        f"chown {offsite.account}: {keys}.new; chmod 0600 {keys}.new; mv {keys}.new {keys}"
    )
    server.shell(
        name=f"Revoke the off-host keys of hosts no longer in the inventory: {', '.join(departed)}",
        commands=[f"sh -c {shlex.quote(script)}"],
    )
