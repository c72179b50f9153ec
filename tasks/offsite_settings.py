"""Where backups go off the host: the backup host of the inventory and the repository on it.

The backup host is a host of the same inventory, in its group ``backup`` or named by
``backup_repository``; it runs no stack. Every entry skips it but the ones that set it up
(deploy.py) or prune there (tasks/offsite_prune.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pyinfra import host, state
from pyinfra.api.host import Host

from tasks.config_values import has_control
from tasks.errors import SettingsError
from tasks.secrets import load_offsite_passphrase
from tasks.settings import ENVIRONMENTS

BACKUP_GROUP = "backup"
NO_REPOSITORY = (
    "no off-host repository is configured: add the backup host to the inventory (group "
    "backup) or name it with backup_repository (docs/offsite-backups.md)"
)
_ACCOUNT = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_DIRECTORY = re.compile(r"/[A-Za-z0-9_./-]{1,200}")


@dataclass(frozen=True)
class OffsiteSettings:
    env: str
    backup_host: str  # its name in the inventory
    address: str  # how the stack's hosts reach it
    port: int
    account: str  # the account on the backup host that owns the repositories
    directory: str  # this environment's directory there; the repository is <directory>/repo
    keep_daily: int
    keep_weekly: int
    keep_monthly: int
    max_age_hours: int
    passphrase: str
    drill_schedule: str | None = None
    # The repositories of other environments this one reads (offsite_reads), on the same
    # backup host: each with that environment's directory and passphrase.
    reads: tuple[OffsiteSettings, ...] = ()
    drill_envs: tuple[str, ...] = ()  # whose repositories the drill timer drills
    # The backup host's own prune timer; with it, the backup host keeps the passphrase.
    prune_schedule: str | None = None

    def __repr__(self) -> str:  # never print the passphrase by accident
        return f"OffsiteSettings({self.account}@{self.address}:{self.port}{self.directory})"

    @property
    def repository(self) -> str:
        return f"ssh://{self.account}@{self.address}:{self.port}{self.directory}/repo"

    def source(self, env: str) -> OffsiteSettings:
        """The repository of ``env``: this environment's own, or one it reads; SettingsError
        (one line) for any other."""
        if env == self.env:
            return self
        for source in self.reads:
            if source.env == env:
                return source
        listed = ", ".join(source.env for source in self.reads) or "none"
        raise SettingsError(
            f"offsite_env {env!r}: {self.env} reads no off-host repository of {env} (its "
            f"offsite_reads lists {listed}): add it to offsite_reads in group_data/"
            f"{self.env}.py and deploy {self.env}"
        )

    @property
    def tools_dir(self) -> str:
        """The backup host's root-owned directory of this environment's prune tool, its
        settings and (with a prune schedule) the stored passphrase: out of the repository
        account's reach, since root runs what is there."""
        return f"/opt/dfr-offsite/{self.env}"


def backup_host_names() -> list[str]:
    """The inventory's backup hosts: its ``backup`` group, else the one named by
    backup_repository (also when that host is in no such group)."""
    named = host.data.get("backup_repository")
    in_group = [h.name for h in state.inventory.get_group(BACKUP_GROUP, [])]
    if named:
        return [str(named)]
    return in_group


def is_backup_host(target: Host | None = None) -> bool:
    target = target or host
    return target.name in backup_host_names() or BACKUP_GROUP in target.groups


def required_offsite_settings(data: Any, env: str, passphrase: bool = True) -> OffsiteSettings:
    """offsite_settings for a task that needs the repository: NO_REPOSITORY when there is none."""
    offsite = offsite_settings(data, env, passphrase)
    if offsite is None:
        raise SettingsError(NO_REPOSITORY)
    return offsite


def offsite_settings(data: Any, env: str, passphrase: bool = True) -> OffsiteSettings | None:
    """None when no backup host is configured; SettingsError (one line) on a bad setting. The
    passphrase is read from the secrets unless ``passphrase`` is False (the backup host's setup
    needs none)."""
    names = backup_host_names()
    reads = _environments(data, "offsite_reads", env)
    if not names:
        if reads:
            raise SettingsError(
                f"offsite_reads lists {', '.join(reads)} but the inventory has no backup host: "
                "add the backup host of those repositories to it (group backup)"
            )
        return None
    if len(names) > 1:
        raise SettingsError(
            f"the inventory has {len(names)} backup hosts ({', '.join(names)}): keep one in its "
            "backup group, or name one with backup_repository"
        )
    (name,) = names
    backup_host = state.inventory.get_host(name, None)
    if backup_host is None:
        raise SettingsError(
            f"backup_repository {name!r} is not a host of this inventory: add it (group "
            "backup) or set backup_repository = None"
        )
    account = str(backup_host.data.get("offsite_account") or "dfr-offsite")
    if not _ACCOUNT.fullmatch(account):
        raise SettingsError(
            f"offsite_account {account!r} is not a user name: use a-z, 0-9, _ and -"
        )
    base = str(backup_host.data.get("offsite_dir") or "/srv/dfr-offsite")
    if not _DIRECTORY.fullmatch(base) or ".." in base:
        raise SettingsError(f"offsite_dir {base!r} is not an absolute path without '..' or spaces")
    counts = {}
    for key in ("offsite_keep_daily", "offsite_keep_weekly", "offsite_keep_monthly",
                "offsite_max_age_hours"):  # fmt: skip
        value = data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise SettingsError(f"{key} {value!r} is not a number of 0 or more")
        counts[key] = value
    if (
        counts["offsite_keep_daily"]
        + counts["offsite_keep_weekly"]
        + counts["offsite_keep_monthly"]
        < 1
    ):
        raise SettingsError("offsite_keep_daily/weekly/monthly keep nothing: keep at least one")
    address = str(
        backup_host.data.get("offsite_address") or backup_host.data.get("ssh_hostname") or name
    )
    port = backup_host.data.get("offsite_port") or backup_host.data.get("ssh_port") or 22
    if not isinstance(port, int) or not 0 < port < 65536:
        raise SettingsError(f"offsite_port {port!r} is not a TCP port")
    drill_schedule = _schedule(data, "drill_schedule", "Sun *-*-* 04:00:00")
    prune_schedule = _schedule(data, "offsite_prune_schedule", "*-*-* 05:30:00")
    drill_envs = _environments(data, "drill_envs", env, own=True) or (env,)
    unread = [drilled for drilled in drill_envs if drilled not in (env, *reads)]
    if unread:
        raise SettingsError(
            f"drill_envs lists {', '.join(unread)}, whose off-host repository {env} does not "
            f"read: add it to offsite_reads too"
        )
    secrets_path = Path(str(data.get("secrets_file") or f"secrets/{env}.env"))
    own = OffsiteSettings(
        env=env,
        backup_host=name,
        address=address,
        port=port,
        account=account,
        directory=f"{base.rstrip('/')}/{env}",
        keep_daily=counts["offsite_keep_daily"],
        keep_weekly=counts["offsite_keep_weekly"],
        keep_monthly=counts["offsite_keep_monthly"],
        max_age_hours=counts["offsite_max_age_hours"],
        passphrase=load_offsite_passphrase(env, secrets_path) if passphrase else "",
        drill_schedule=drill_schedule or None,
        drill_envs=drill_envs,
        prune_schedule=prune_schedule or None,
    )
    # Each source's passphrase is read from its own secrets file, next to this one's; never
    # from the process environment, whose DFR_OFFSITE_PASSPHRASE is this environment's.
    sources = tuple(
        replace(
            own,
            env=source,
            directory=f"{base.rstrip('/')}/{source}",
            passphrase=(
                load_offsite_passphrase(source, secrets_path.parent / f"{source}.env", own=False)
                if passphrase
                else ""
            ),
            drill_schedule=None,
            drill_envs=(),
            prune_schedule=None,
        )
        for source in reads
    )
    return replace(own, reads=sources)


def _environments(data: Any, key: str, env: str, own: bool = False) -> tuple[str, ...]:
    """The setting ``key``: a list of environment names (``env`` itself only if ``own``)."""
    value = data.get(key)
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise SettingsError(
            f'{key} {value!r} is not a list of environments: write it like ["prod"]'
        )
    for name in value:
        if name not in ENVIRONMENTS:
            raise SettingsError(
                f"{key} lists {name!r}, which is not an environment ({', '.join(ENVIRONMENTS)})"
            )
        if name == env and not own:
            raise SettingsError(
                f"{key} lists {env} itself: its own repository needs no entry, list only "
                "the other environments it reads"
            )
    return tuple(dict.fromkeys(value))


def repository_host_settings(data: Any, env: str) -> OffsiteSettings:
    """The backup host's own settings: the passphrase is read only when it prunes on its own
    timer (offsite_prune_schedule), since only then does it keep one."""
    offsite = required_offsite_settings(data, env, passphrase=False)
    if offsite.prune_schedule is None:
        return offsite
    return required_offsite_settings(data, env)


def _schedule(data: Any, key: str, example: str) -> str | None:
    value = data.get(key)
    # A line of the systemd timer: a line break would add directives of its own.
    if value is not None and (not isinstance(value, str) or has_control(value)):
        raise SettingsError(
            f"{key} {value!r} is not a systemd OnCalendar value: give one on one line, like "
            f'"{example}"'
        )
    return value
