"""One deploy (build, module update, restore, rollback) at a time per environment on a host.

The lock is a ``flock`` held on the host by a shell started over this run's own SSH connection,
which lives exactly as long as that connection: however the run ends (done, failed, Ctrl-C,
``kill -9`` of pyinfra, a cut network once sshd notices) sshd closes the session, the shell reads
the end of its input and exits, and the lock goes with it. Nothing to clean up by hand; for a
holder that cannot be reached, ``--data break_lock=true`` stops its shell and takes the lock.

The same shell keeps the release log honest: told at the start of the execution what the
release record of a failed run would be, it appends that record unless the run said it ended
(``tasks/releases.py``), so a run that never finished is in the log too.
"""

from __future__ import annotations

import getpass
import shlex
import socket
import sys
import time

from paramiko import Channel
from pyinfra import host, logger

from tasks.errors import SettingsError
from tasks.settings import Settings

LOCK_DIR = "/run/lock"
ANSWER_TIMEOUT = 60

# Run by bash as root on the host. Arguments: lock path prefix, holder line, release log, break.
_GUARD = r"""
lock=$1 holder=$2 releases=$3 breaking=$4
exec 9>>"$lock.lock"
held_by() { sed -n 's/^holder //p' "$lock.holder" 2>/dev/null; }
if ! flock -w 5 9; then
  if [ "$breaking" != yes ]; then echo "HELD $(held_by)"; exit 0; fi
  pid=$(sed -n 's/^pid //p' "$lock.holder" 2>/dev/null)
  was=$(held_by)
  [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
  flock -w 30 9 || { echo "HELD $was"; exit 0; }
  echo "BROKE $was"
fi
printf 'pid %s\nholder %s\n' "$$" "$holder" >"$lock.holder"
echo LOCKED
unfinished=""
record() {
  [ -n "$unfinished" ] || return 0
  mkdir -p "$(dirname "$releases")"
  printf '%s\n' "${unfinished/\"ended\": null/\"ended\": \"$(date -u +%FT%TZ)\"}" >>"$releases"
  unfinished=""
}
trap 'record; exit 143' TERM
while IFS= read -r line; do
  case $line in
    "unfinished "*) unfinished=${line#unfinished } ;;
    "append "*) mkdir -p "$(dirname "$releases")"; printf '%s\n' "${line#append }" >>"$releases" ;;
    finished) unfinished="" ;;
  esac
done
record
"""

_channels: dict[str, Channel] = {}


def operator() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


def releases_file(settings: Settings) -> str:
    return f"{settings.stack_dir}/releases.jsonl"


def hold_deploy_lock(settings: Settings, what: str) -> None:
    """Takes this environment's deploy lock on the host for the rest of the run, or stops the
    run in one line naming who holds it. Dev and ``--dry`` runs take none."""
    if settings.is_dev or "--dry" in sys.argv or host.name in _channels:
        return
    client = getattr(host.connector, "client", None)
    if client is None:  # not an SSH connection (pyinfra's @local, @docker …)
        return
    breaking = host.data.get("break_lock")
    if breaking not in (None, True, False):
        raise SettingsError(
            f"break_lock {breaking!r}: give true (and only when the holder is gone)"
        )
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    holder = f"{operator()} since {since} running {what}"
    arguments = [
        f"{LOCK_DIR}/dfr-{settings.env}.deploy", holder, releases_file(settings),
        "yes" if breaking else "no",
    ]  # fmt: skip
    command = "bash -c " + shlex.quote(_GUARD) + " guard " + " ".join(map(shlex.quote, arguments))
    if host.data.get("_sudo"):
        command = f"sudo -n -H {command}"
    channel = client.get_transport().open_session()
    channel.exec_command(command)
    answer = _first_line(channel)
    if answer.startswith("HELD"):
        channel.close()
        raise SettingsError(
            f"{host.name}: the {settings.env} deploy lock is held by {answer[5:] or 'someone'}: "
            "run again once it has ended (or, if that run is gone, with --data break_lock=true)"
        )
    if answer.startswith("BROKE"):
        logger.warning(f"{host.name}: broke the {settings.env} deploy lock of {answer[6:]}")
    elif answer != "LOCKED":
        channel.close()
        raise SettingsError(
            f"{host.name}: could not take the {settings.env} deploy lock ({answer or 'no answer'})"
            ": check that bash and flock (util-linux) are installed and sudo needs no password"
        )
    _channels[host.name] = channel


def tell_lock_holder(line: str) -> None:
    """Sends one line to this host's lock shell (``unfinished JSON``, ``append JSON``,
    ``finished``); nothing when the run holds no lock."""
    channel = _channels.get(host.name)
    if channel is not None:
        channel.sendall((line + "\n").encode())


def holds_lock() -> bool:
    return host.name in _channels


def _first_line(channel: Channel) -> str:
    """The lock shell's first line; else what went to stderr (sudo's refusal, say)."""
    channel.settimeout(ANSWER_TIMEOUT)
    data = b""
    try:
        while b"\n" not in data and (chunk := channel.recv(1024)):
            data += chunk
    except TimeoutError:
        pass
    if not data.strip() and channel.recv_stderr_ready():
        data = channel.recv_stderr(4096)
    lines = data.decode(errors="replace").strip().splitlines()
    return lines[0].strip() if lines else ""
