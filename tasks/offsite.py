"""The off-host borg repository: the backup host's side, and each stack host's side.

The backup host gets borg, an account that owns the repositories and a directory per
environment. A stack host gets borg, its own SSH key (made on it; the private half never
leaves it), the backup host's SSH host keys (read over pyinfra's verified connection to it),
the repository's passphrase (0600) and bin/dfr-offsite. Its key is authorized on the backup
host for one thing only: ``borg serve --append-only --restrict-to-path <its directory>``
(``restrict``: no shell, no forwarding, no pty), and the repository is made (``borg init``,
repokey-blake2) once. Everything is checked first: a second run changes nothing.
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
from pyinfra.operations import apt, files, python, server, systemd
from pyinfra.operations.util import any_changed

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


_PUBLIC_KEY = re.compile(r"ssh-ed25519 [A-Za-z0-9+/]{60,100}={0,2}")


def authorized_line(offsite: OffsiteSettings, public_key: str, client: str) -> str:
    """The backup host's authorized_keys line for ``public_key`` (what ssh-keygen wrote on the
    stack host): anything but an ed25519 key is refused, so nothing the host sends can add
    options or lines of its own."""
    command = f"borg serve --append-only --restrict-to-path {offsite.directory}"
    key = " ".join(public_key.split()[:2])
    if not _PUBLIC_KEY.fullmatch(key):
        raise StepFailed(f"{client}'s off-host key is not an ed25519 public key: {key[:60]!r}")
    return f'command="{command}",restrict {key} dfr-offsite:{offsite.env}:{client}'


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
def offsite_client(settings: Settings, offsite: OffsiteSettings) -> None:
    """A stack host's side; authorizes its key on the backup host and makes the repository
    when either is missing."""
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

    key = key_path(settings)
    public = host.get_fact(FileText, path=f"{key}.pub")
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
    try:
        line = authorized_line(offsite, public, host.name) if public is not None else None
    except StepFailed:  # the callback below says so, in one line
        line = None
    in_place = line is not None and line in (authorized or "").splitlines() and initialized
    if not in_place:
        python.call(
            name=f"Authorize this host's key on {offsite.backup_host} (append-only) and make "
            "the repository if it is missing",
            function=_authorize_and_init,
            settings=settings,
            offsite=offsite,
        )
    if offsite.drill_schedule and host.get_fact(DockerHostSurvey).has_systemd:
        _drill_timer(settings, offsite)


def _drill_timer(settings: Settings, offsite: OffsiteSettings) -> None:
    unit = f"dfr-drill-{settings.env}"
    written = [
        files.put(
            name=f"Unit {unit}.{kind}",
            src=StringIO(render(f"systemd/dfr-drill.{kind}.j2", settings, o=offsite)),
            dest=f"/etc/systemd/system/{unit}.{kind}",
            mode="0644",
            create_remote_dir=False,
        )
        for kind in ("service", "timer")
    ]
    systemd.daemon_reload(name="Reload systemd units", _if=any_changed(*written))
    systemd.service(name=f"Drill timer {unit}.timer", service=f"{unit}.timer", running=True,
                    enabled=True)  # fmt: skip


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


@failing_in_one_line
def _authorize_and_init(settings: Settings, offsite: OffsiteSettings) -> None:
    key = key_path(settings)
    ok, output = run_on_host(
        f"install -d -m 0700 {key.rsplit('/', 1)[0]} && {{ [ -f {key} ] || "
        f"ssh-keygen -q -t ed25519 -N '' -C dfr-offsite:{settings.env}:{host.name} -f {key}; }}"
        f" && cat {key}.pub"
    )
    if not ok or not output.stdout_lines:
        raise StepFailed(f"could not make this host's SSH key {key}: {output.stderr}")
    line = authorized_line(offsite, output.stdout_lines[-1], host.name)
    backup_host = _backup_host(offsite)
    base = offsite.directory.rsplit("/", 1)[0]
    keys = f"{base}/.ssh/authorized_keys"
    marker = f" dfr-offsite:{offsite.env}:{host.name}"
    # Under a lock: the stack's hosts of one run authorize their keys at the same time.
    script = (
        f"set -e; exec 9>>{base}/.ssh/.lock; flock 9; touch {keys}; "
        f"{{ grep -vF -e {shlex.quote(marker)} {keys} || true; echo {shlex.quote(line)}; }}"
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


def offsite_answer(settings: Settings, arguments: str) -> list[str]:
    """``dfr-offsite ARGUMENTS``' output, asked before anything changes: SettingsError (one
    line) if it fails."""
    ok, lines = host.get_fact(
        ToolAnswer,
        tool=f"{settings.stack_dir}/bin/dfr-offsite",
        arguments=arguments,
        needs=f"{settings.stack_dir}/offsite.env",
    )
    if not ok and not lines:
        raise SettingsError(
            f"{host.name} is not set up for the off-host repository yet: run deploy.py first"
        )
    if not ok:
        raise SettingsError(f"{host.name}: {lines[-1].split('ERROR: ', 1)[-1]}")
    return lines


def offsite_manifest(settings: Settings, snapshot: str) -> tuple[str, dict]:
    """The name and manifest of the archive ``snapshot`` (or the newest with ``latest``),
    read from the repository before anything changes: SettingsError (one line) if it cannot."""
    lines = offsite_answer(settings, f"manifest-of {shlex.quote(snapshot)}")
    try:
        return lines[0], json.loads("\n".join(lines[1:]))
    except (IndexError, json.JSONDecodeError):
        raise SettingsError(
            f"{host.name}: archive {snapshot} of the off-host repository has no readable "
            "manifest.json: not a dfr backup"
        ) from None
