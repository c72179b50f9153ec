"""What the fault tests share: the live state of the host, faults to inject (SSH cuts, kills),
and the checks that a run was refused in one line and left nothing behind."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import subprocess
import tarfile
from pathlib import Path

from tasks.archive import manifest_bytes
from tests.harness.docker_cli import docker
from tests.harness.hosts import TargetHost
from tests.harness.pyinfra_run import PROJECT, PYINFRA, pyinfra
from tests.harness.waiting import wait_for
from tests.integration.backups import add_file, fingerprint
from tests.integration.stack import psql

ODOO_STATUS = "docker ps --filter label=com.docker.compose.service=odoo --format '{{.Status}}'"


def live_state(host: TargetHost) -> dict:
    return {
        "data": fingerprint(host),
        "databases": psql(
            host, "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database", db="postgres"
        ),
        "odoo healthy": "(healthy)" in host.exec(ODOO_STATUS),
        "host backups": host_backups(host),
    }


def host_backups(host: TargetHost) -> str:
    """The names in the host's backup directory (complete or not), uploads aside."""
    return host.exec("ls /var/backups/dfr/prod | grep -v incoming || true")


def ends(host: TargetHost, tool: str, within: int, context: str = "") -> None:
    """Waits for every process of the host's ``tool`` (dfr-backup, dfr-restore) to end; if one
    does not, fails showing what still runs and ``context`` (what the operator's run printed)."""
    pattern = f"[{tool[0]}]{tool[1:]}"  # does not match this loop's own command line
    still_running = host.exec(
        f"for i in $(seq 1 {within * 10}); do pgrep -f '{pattern}' >/dev/null || exit 0; "
        "sleep 0.1; done; ps -eo pid,ppid,etimes,stat,wchan:30,args"
    )
    assert still_running == "", (
        f"{tool} still runs after {within} s:\n{still_running}\n{context[-3000:]}"
    )


def refused(run, message: str) -> None:
    assert run.returncode != 0
    error = run.last_error_line()
    assert error.startswith("--> pyinfra error"), run.stderr[-2000:]
    assert message in error, error
    assert "Traceback" not in run.output


def rebuilt(source: Path, dest: Path, change) -> Path:
    """A copy of a backup whose members are passed through ``change(name, data, manifest)``."""
    with tarfile.open(source) as tar:
        members = {
            m.name.removeprefix("./"): tar.extractfile(m).read()
            for m in tar.getmembers()
            if m.isfile()
        }
    manifest = json.loads(members.pop("manifest.json"))
    for name in list(members):
        members[name] = change(name, members[name], manifest)
    with tarfile.open(dest, "w") as tar:
        for name, data in [*members.items(), ("manifest.json", manifest_bytes(manifest))]:
            add_file(tar, name, data)
    return dest


def restore(prod, backup_file, **data):
    return pyinfra(
        prod[1], "tasks/restore.py", data={"backup_file": backup_file, "confirm": "prod", **data}
    )


def flipped(good_backup: Path, dest: Path, part: str) -> Path:
    def flip(name, data, manifest):
        return data[:-1] + bytes([data[-1] ^ 1]) if name == part else data

    return rebuilt(good_backup, dest, flip)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def while_running(
    prod, args: list[str], process: str, action: str
) -> subprocess.CompletedProcess[str]:
    """Run pyinfra while a watcher on the host does ``action`` as soon as ``process`` runs."""
    host = prod[0]
    pattern = f"[{process[0]}]{process[1:]}"  # does not match the watcher's own command line
    watcher = (
        "rm -f /tmp/fault.done; for i in $(seq 1 6000); do "
        f"if pgrep -f {shlex.quote(pattern)} >/dev/null; then echo done > /tmp/fault.done; "
        f"{action}; exit 0; fi; sleep 0.02; done"
    )
    docker("exec", "-d", host.container, "sh", "-c", watcher)
    run = subprocess.Popen(
        [str(PYINFRA), "-y", str(prod[1]), *args],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = run.communicate(timeout=600)
    fired = host.exec("cat /tmp/fault.done 2>/dev/null || true") == "done"
    assert fired, f"the fault never fired; pyinfra said: {stderr[-1500:]}"
    return subprocess.CompletedProcess(run.args, run.returncode, stdout, stderr)


def no_complete_backup(directory: Path, host: TargetHost, before: str) -> None:
    assert list(directory.iterdir()) == []
    assert host_backups(host) == before


KILL_POSTGRES = "docker kill $(docker ps -q -f label=com.docker.compose.service=postgres)"


def cut_ssh(command: str) -> str:
    """Once the host runs ``command`` (how its command line starts), freezes it, cuts the SSH
    connection, then lets it go on: frozen first, the cut lands mid-stream however fast the
    network is. Anchored, the pattern freezes that process alone, never the sudo and shell whose
    command lines hold it too: sudo stops itself when its child stops and thaws the child only
    when it is thawed itself, so freezing and thawing both races and can leave sudo stopped for
    good (4 times in 60 in a loop of the upload's shape on a target host)."""
    pattern = shlex.quote(f"^{command}")
    return (
        f"for i in $(seq 1 3000); do pgrep -f {pattern} >/dev/null && break; sleep 0.01; done; "
        f"pkill -STOP -f {pattern}; pkill -f '[s]shd: dfr'; sleep 1; pkill -CONT -f {pattern}"
    )


def with_a_large_file(name: str, data: bytes, manifest: dict) -> bytes:
    """The filestore plus 256 MB of incompressible data: it is still arriving on the host
    for a second or more, long enough for the watcher to find it."""
    if name != "filestore.tar":
        return data
    grown = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(data)) as kept,
        tarfile.open(fileobj=grown, mode="w") as new,
    ):
        for member in kept.getmembers():
            new.addfile(member, kept.extractfile(member) if member.isfile() else None)
        large = tarfile.TarInfo("dfr/ff/large-attachment")
        large.size = 256 << 20
        new.addfile(large, io.BytesIO(os.urandom(large.size)))
    manifest["files"][name] = {"size": grown.tell(), "sha256": sha(grown.getvalue())}
    return grown.getvalue()


def drop_previous_databases(host: TargetHost) -> list[str]:
    """Drops the previous databases (and their filestores) that successful restores into prod
    keep as dfr_old_*, so the next test starts from one database; returns their names."""
    old = psql(
        host, "SELECT datname FROM pg_database WHERE datname LIKE 'dfr_old_%'", db="postgres"
    ).split()
    for name in old:
        psql(host, f'DROP DATABASE "{name}"', db="postgres")
        host.exec(f"rm -rf /var/lib/docker/volumes/dfr-prod_odoo-data/_data/filestore/{name}")
    return old


def stack_up_again(host: TargetHost, timeout: float = 180) -> None:
    """``compose up --wait`` after a fault, until the stack is up: an attempt can fail while the
    engine still handles the container the fault hit (seen once under a full parallel run);
    a stack that does not come back fails with compose's last words."""
    answers: list[str] = []

    def up() -> bool:
        answers.append(host.exec(
            "cd /opt/dfr/prod && docker compose -p dfr-prod up -d --wait 2>&1; echo rc=$?",
            check=False,
        ))  # fmt: skip
        return answers[-1].endswith("rc=0")

    try:
        wait_for(f"the stack on {host.name} to come up again", up, timeout)
    except AssertionError as error:
        raise AssertionError(f"{error}: {answers[-1][-2000:] if answers else ''}") from None
