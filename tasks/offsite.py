"""The off-host borg repository: the backup host's side, and each stack host's side.

The backup host gets borg, an account that owns the repositories and a directory per
environment. A stack host gets borg, its own SSH key (made on it; the private half never
leaves it), the backup host's SSH host keys (read over pyinfra's verified connection to it),
the repository's passphrase (0600) and bin/dfr-offsite. Its key is authorized on the backup
host for one thing only: ``borg serve --append-only --restrict-to-path <its directory>``
(``restrict``: no shell, no forwarding, no pty), and the repository is made (``borg init``,
repokey-blake2) once. Everything is checked first: a second run changes nothing.

An environment that reads others' repositories (offsite_reads: staging reading production's,
to refresh from it or drill it) gets a second key for them (``offsite/id_ed25519_read``), which
the backup host lets run ``borg serve`` in their directories with a storage quota (10 MB)
under what they hold: borg dooms any transaction that would write there, so the key reads and
can neither add nor delete. Each source's settings and passphrase go in
``offsite-<source>.env``/``.passphrase``.
"""

from __future__ import annotations

import json
import re
import shlex
from io import StringIO

from pyinfra import host, state
from pyinfra.api import FactBase, deploy
from pyinfra.api.host import Host
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt, files, python, server

from tasks import systemd_timers
from tasks.backup_settings import BackupSettings
from tasks.errors import SettingsError, StepFailed, failing_in_one_line
from tasks.facts import DockerHostSurvey, FileText, PathStates
from tasks.host_commands import run_on_host
from tasks.offsite_keys import revoke_departed_keys
from tasks.offsite_prune_timer import prune_on_backup_host
from tasks.offsite_settings import OffsiteSettings
from tasks.render import render
from tasks.secret_files import secret_file
from tasks.settings import Settings

PACKAGES = ["borgbackup", "openssh-client"]


class SshHostKeys(FactBase):
    """The host's own SSH host keys, "TYPE KEY" lines."""

    def command(self) -> str:
        return "cat /etc/ssh/ssh_host_*_key.pub 2>/dev/null || true"

    def process(self, output: list[str]) -> list[str]:
        return sorted(" ".join(line.split()[:2]) for line in output if line.strip())


def key_path(settings: Settings) -> str:
    return f"{settings.stack_dir}/offsite/id_ed25519"


def read_key_path(settings: Settings) -> str:
    """The key that reads other environments' repositories (offsite_reads)."""
    return f"{settings.stack_dir}/offsite/id_ed25519_read"


_PUBLIC_KEY = re.compile(r"ssh-ed25519 [A-Za-z0-9+/]{60,100}={0,2}")
# borg serve's smallest quota. A repository already holding more refuses every write: borg
# dooms the transaction of a create, a delete or a prune before it commits.
READ_ONLY_QUOTA = "10M"


def own_marker(offsite: OffsiteSettings, client: str) -> str:
    return f"dfr-offsite:{offsite.env}:{client}"


def read_marker(offsite: OffsiteSettings, client: str) -> str:
    return f"dfr-offsite-read:{offsite.env}:{client}"


def authorized_line(offsite: OffsiteSettings, public_key: str, client: str) -> str:
    """The backup host's authorized_keys line for ``public_key`` (what ssh-keygen wrote on the
    stack host): append-only in this environment's directory. Anything but an ed25519 key is
    refused, so nothing the host sends can add options or lines of its own."""
    command = f"borg serve --append-only --restrict-to-path {offsite.directory}"
    return _line(command, public_key, client, own_marker(offsite, client))


def read_line(offsite: OffsiteSettings, public_key: str, client: str) -> str:
    """The line for the host's read key: the directories of the environments it reads, where
    the quota leaves borg nothing to write."""
    paths = " ".join(f"--restrict-to-path {source.directory}" for source in offsite.reads)
    command = f"borg serve --append-only --storage-quota {READ_ONLY_QUOTA} {paths}"
    return _line(command, public_key, client, read_marker(offsite, client))


def _line(command: str, public_key: str, client: str, marker: str) -> str:
    key = " ".join(public_key.split()[:2])
    if not _PUBLIC_KEY.fullmatch(key):
        raise StepFailed(f"{client}'s off-host key is not an ed25519 public key: {key[:60]!r}")
    return f'command="{command}",restrict {key} {marker}'


def _install_borg(name: str, packages: list[str] = PACKAGES) -> None:
    installed = host.get_fact(DebPackages) or {}
    missing = any(package not in installed for package in packages)
    apt.packages(name=name, packages=packages, update=missing, cache_time=3600,
                 no_recommends=True)  # fmt: skip


@deploy("Off-host backup repository host")
def repository_host(offsite: OffsiteSettings, backup: BackupSettings) -> None:
    """The backup host: borg, the account owning the repositories, this environment's
    directory, its retention (tool, and timer with offsite_prune_schedule). Keys are
    authorized by the stack hosts' runs (``offsite_client``); those of hosts that left the
    inventory are revoked here."""
    # curl: a failed prune says so at backup_notify_url
    _install_borg("Install borg (borgbackup) and curl on the backup host", [*PACKAGES, "curl"])
    base = offsite.directory.rsplit("/", 1)[0]
    server.user(
        name=f"Account {offsite.account} owning the repositories",
        user=offsite.account,
        home=base,
        shell="/bin/sh",  # sshd runs the forced command through it; `restrict` keeps the rest
        system=True,
        create_home=False,
    )
    for path in (base, f"{base}/.ssh", offsite.directory):
        files.directory(name=f"Directory {path}", path=path, user=offsite.account,
                        group=offsite.account, mode="0700")  # fmt: skip
    prune_on_backup_host(offsite, backup)
    revoke_departed_keys(offsite)


@deploy("Off-host backups")
def offsite_client(settings: Settings, offsite: OffsiteSettings, with_timers: bool = True) -> None:
    """A stack host's side; authorizes its key on the backup host and makes the repository
    when either is missing. The drill timers too unless ``with_timers`` is False (backups,
    restores and drills leave them to deploy.py, which owns them: their runs' data may lack
    drill_schedule)."""
    backup_host = _backup_host(offsite)
    _install_borg("Install borg (borgbackup) and ssh")
    stack_dir = settings.stack_dir
    known = _known_hosts(offsite, backup_host.get_fact(SshHostKeys))
    env_file = render("offsite.env.j2", settings, o=offsite, key=key_path(settings))
    for path, content in (("offsite.env", env_file), ("offsite_known_hosts", known)):
        files.put(name=f"File {stack_dir}/{path}", src=StringIO(content),
                  dest=f"{stack_dir}/{path}", mode="0644")  # fmt: skip
    passphrase = f"{stack_dir}/offsite.passphrase"
    secret_file(name=f"File {passphrase}", dest=passphrase, content=offsite.passphrase + "\n")
    for source in offsite.reads:
        env_file = render("offsite.env.j2", settings, o=source, key=read_key_path(settings))
        path = f"{stack_dir}/offsite-{source.env}.env"
        files.put(name=f"File {path} ({source.env}'s repository, read)", src=StringIO(env_file),
                  dest=path, mode="0644")  # fmt: skip
        path = f"{stack_dir}/offsite-{source.env}.passphrase"
        secret_file(name=f"File {path}", dest=path, content=source.passphrase + "\n")

    authorized = backup_host.get_fact(
        FileText,
        path=f"{offsite.directory.rsplit('/', 1)[0]}/.ssh/authorized_keys",
        _sudo=bool(backup_host.data.get("_sudo")),
    )
    initialized = backup_host.get_fact(
        PathStates,
        paths=(f"{offsite.directory}/repo/config",),
        _sudo=bool(backup_host.data.get("_sudo")),
    )
    markers = ([own_marker(offsite, host.name)], [read_marker(offsite, host.name)])
    present = {line for line in (authorized or "").splitlines() if line.split()[-1:] in markers}
    wanted = wanted_lines(settings, offsite)
    in_place = wanted is not None and set(wanted) == present and initialized
    if not in_place:
        python.call(
            name=f"Authorize this host's keys on {offsite.backup_host} (append-only, read-only) "
            "and make the repository if it is missing",
            function=_authorize_and_init,
            settings=settings,
            offsite=offsite,
        )
    if not with_timers:
        return
    timers = {}
    if offsite.drill_schedule and host.get_fact(DockerHostSurvey).has_systemd:
        timers = {drill_unit(settings, env): env for env in offsite.drill_envs}
        for unit, env in timers.items():
            _drill_timer(settings, offsite, unit, env)
    _remove_what_is_no_longer_read(settings, offsite, set(timers))


def drill_unit(settings: Settings, env: str) -> str:
    """The drill timer's unit for the repository of ``env``, on a host of ``settings.env``."""
    return f"dfr-drill-{settings.env}" + ("" if env == settings.env else f"-from-{env}")


def borg_base_dir(settings: Settings, env: str) -> str:
    """borg's cache and key state for the repository of ``env`` (as bin/dfr-offsite sets it)."""
    return f"/var/lib/dfr-offsite/{settings.env}" + ("" if env == settings.env else f"-from-{env}")


class ReadLeftovers(FactBase):
    """What a host of ``env`` holds for reading other environments' repositories, and its drill
    timers: paths."""

    def command(self, stack_dir: str, env: str) -> str:
        return (
            f"ls -1d {stack_dir}/offsite-*.env {stack_dir}/offsite-*.passphrase "
            f"/var/lib/dfr-offsite/{env}-from-* /etc/systemd/system/dfr-drill-{env}.timer "
            f"/etc/systemd/system/dfr-drill-{env}-from-*.timer 2>/dev/null || true"
        )

    @staticmethod
    def default() -> list[str]:  # no output: nothing there
        return []

    def process(self, output: list[str]) -> list[str]:
        return sorted(line for line in output if line.strip())


def _remove_what_is_no_longer_read(
    settings: Settings, offsite: OffsiteSettings, timers: set[str]
) -> None:
    """A source taken out of offsite_reads leaves nothing behind (its passphrase, settings,
    borg state); a drill timer no longer asked for is stopped and removed."""
    kept = {f"{settings.stack_dir}/offsite-{source.env}.{kind}"
            for source in offsite.reads for kind in ("env", "passphrase")}  # fmt: skip
    kept |= {borg_base_dir(settings, source.env) for source in offsite.reads}
    kept |= {f"/etc/systemd/system/{unit}.timer" for unit in timers}
    gone = [path for path in host.get_fact(ReadLeftovers, stack_dir=settings.stack_dir,
                                           env=settings.env) if path not in kept]  # fmt: skip
    for path in gone:
        if path.endswith(".timer"):
            unit = path.rsplit("/", 1)[1].removesuffix(".timer")
            systemd_timers.remove_timer(unit, "no longer asked for")
        elif path.startswith("/var/lib/"):
            files.directory(name=f"No {path} (not read any more)", path=path, present=False)
        else:
            files.file(name=f"No {path} (not read any more)", path=path, present=False)


def _drill_timer(settings: Settings, offsite: OffsiteSettings, unit: str, env: str) -> None:
    source = None if env == settings.env else offsite.source(env)
    service, timer = (
        render(f"systemd/dfr-drill.{kind}.j2", settings, o=offsite, source=source)
        for kind in ("service", "timer")
    )
    systemd_timers.install_timer(unit, service, timer, "Drill timer")


def _public_key(settings: Settings, key: str) -> str:
    """The public half of this host's key ``key``, made here first if it is missing."""
    ok, output = run_on_host(
        f"install -d -m 0700 {key.rsplit('/', 1)[0]} && {{ [ -f {key} ] || "
        f"ssh-keygen -q -t ed25519 -N '' -C dfr-offsite:{settings.env}:{host.name} -f {key}; }}"
        f" && cat {key}.pub"
    )
    if not ok or not output.stdout_lines:
        raise StepFailed(f"could not make this host's SSH key {key}: {output.stderr}")
    return output.stdout_lines[-1]


def _backup_host(offsite: OffsiteSettings) -> Host:
    backup_host = state.inventory.get_host(offsite.backup_host)
    if not backup_host.connected:
        raise StepFailed(
            f"the backup host {offsite.backup_host} is not in this run (--limit?): include it"
        )
    return backup_host


def _known_hosts(offsite: OffsiteSettings, keys: list[str]) -> str:
    where = offsite.address if offsite.port == 22 else f"[{offsite.address}]:{offsite.port}"
    return "".join(f"{where} {key}\n" for key in keys)


def wanted_lines(settings: Settings, offsite: OffsiteSettings) -> list[str] | None:
    """This host's lines in the backup host's authorized_keys, from its public keys as they
    are now; None while a key is missing or is not an ed25519 key."""
    wanted = [(key_path(settings), authorized_line)]
    if offsite.reads:
        wanted.append((read_key_path(settings), read_line))
    lines = []
    for key, line in wanted:
        public = host.get_fact(FileText, path=f"{key}.pub")
        try:
            lines.append(line(offsite, public, host.name) if public is not None else None)
        except StepFailed:  # _authorize_and_init says so, in one line
            return None
    return None if None in lines else lines


@failing_in_one_line
def _authorize_and_init(settings: Settings, offsite: OffsiteSettings) -> None:
    lines = [authorized_line(offsite, _public_key(settings, key_path(settings)), host.name)]
    if offsite.reads:
        public = _public_key(settings, read_key_path(settings))
        lines.append(read_line(offsite, public, host.name))
    backup_host = _backup_host(offsite)
    base = offsite.directory.rsplit("/", 1)[0]
    keys = f"{base}/.ssh/authorized_keys"
    markers = f"{own_marker(offsite, host.name)} {read_marker(offsite, host.name)}"
    # Under a lock: the stack's hosts of one run authorize their keys at the same time. This
    # host's lines are the ones whose last field is one of its markers, whole (host1 is not
    # host10).
    script = (
        f"set -e; exec 9>>{base}/.ssh/.lock; flock 9; touch {keys}; "
        f'{{ DFR_MARKERS={shlex.quote(markers)} awk \'BEGIN {{ split(ENVIRON["DFR_MARKERS"], m, '
        f'" "); mine[m[1]]; mine[m[2]] }} !($NF in mine)\' {keys}; '
        f"printf '%s\\n' {' '.join(shlex.quote(line) for line in lines)}; }}"
        f" >{keys}.new; chown {offsite.account}: {keys}.new; chmod 0600 {keys}.new; "
        f"mv {keys}.new {keys}"
    )
    ok, output = backup_host.run_shell_command(
        f"sh -c {shlex.quote(script)}", _sudo=bool(backup_host.data.get("_sudo"))
    )
    if not ok:
        raise StepFailed(
            f"could not authorize this host's key on {offsite.backup_host}: {output.stderr}"
        )
    tool = f"{settings.stack_dir}/bin/dfr-offsite"
    ok, output = run_on_host(f"{tool} init")
    if not ok:
        errors = [line for line in output.stderr_lines if "ERROR" in line] or output.stderr_lines
        raise StepFailed(errors[-1] if errors else f"{tool} init failed")


class ToolAnswer(FactBase):
    """What the host's ``TOOL ARGUMENTS`` printed (stdout lines) and whether it succeeded, or
    its last ERROR line: ``(ok, lines)``. ``(False, [])`` when the tool or ``needs`` (a file
    it reads) is missing. Never fails itself: the caller says what went wrong, in one line."""

    def command(self, tool: str, arguments: str, needs: str) -> str:
        quoted = shlex.quote(tool)
        return (
            f"if [ -x {quoted} ] && [ -f {shlex.quote(needs)} ]; then "
            f"e=$(mktemp) && out=$({quoted} {arguments} 2>$e) && echo OK && "
            f'printf "%s\\n" "$out" || {{ echo FAILED; grep ERROR $e | tail -n1; }}; rm -f $e; '
            "else echo MISSING; fi"
        )

    def process(self, output: list[str]) -> tuple[bool, list[str]]:
        if not output or output[0] == "MISSING":
            return False, []
        return output[0] == "OK", [line for line in output[1:] if line]


def reading(settings: Settings, env: str) -> str:
    """bin/dfr-offsite's option that selects the repository of ``env`` ("" for its own)."""
    return "" if env == settings.env else f"--from {shlex.quote(env)} "


def offsite_answer(settings: Settings, arguments: str, env: str | None = None) -> list[str]:
    """``dfr-offsite ARGUMENTS``' output for the repository of ``env`` (default its own), asked
    before anything changes: SettingsError (one line) if it fails."""
    env = env or settings.env
    own = env == settings.env
    ok, lines = host.get_fact(
        ToolAnswer,
        tool=f"{settings.stack_dir}/bin/dfr-offsite",
        arguments=reading(settings, env) + arguments,
        needs=f"{settings.stack_dir}/offsite{'' if own else '-' + env}.env",
    )
    if not ok and not lines:
        what = "the off-host repository" if own else f"reading {env}'s off-host repository"
        raise SettingsError(f"{host.name} is not set up for {what} yet: run deploy.py first")
    if not ok:
        raise SettingsError(f"{host.name}: {lines[-1].split('ERROR: ', 1)[-1]}")
    return lines


def offsite_manifest(settings: Settings, snapshot: str, env: str | None = None) -> tuple[str, dict]:
    """The name and manifest of the archive ``snapshot`` (or the newest with ``latest``) of the
    repository of ``env`` (default its own), read before anything changes: SettingsError (one
    line) if it cannot."""
    lines = offsite_answer(settings, f"manifest-of {shlex.quote(snapshot)}", env)
    try:
        return lines[0], json.loads("\n".join(lines[1:]))
    except (IndexError, json.JSONDecodeError):
        raise SettingsError(
            f"{host.name}: archive {snapshot} of the off-host repository has no readable "
            "manifest.json: not a dfr backup"
        ) from None
