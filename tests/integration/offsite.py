"""What the off-host backup tests share: an inventory with a backup host, borg with
production's own key, the archives, a notification receiver, the metric files."""

from __future__ import annotations

import datetime
from pathlib import Path

from tests.harness.hosts import TargetHost
from tests.harness.pyinfra_run import pyinfra
from tests.harness.waiting import wait_for

PASSPHRASE = "k3Vq9Zr2Lx7Wm4Tn8Hs6Jd1Pf5"
REPOSITORY = "/srv/dfr-offsite/prod/repo"
# What borg needs on production to use its own (append-only) key by hand, as an attacker would.
BORG_ENV = (
    "set -a; . /opt/dfr/prod/offsite.env; set +a; export BORG_REPO=$DFR_OFFSITE_REPOSITORY "
    "BORG_PASSCOMMAND='cat /opt/dfr/prod/offsite.passphrase' "
    "BORG_BASE_DIR=/var/lib/dfr-offsite/prod "
    'BORG_RSH="ssh -i $DFR_OFFSITE_KEY -o BatchMode=yes '
    '-o UserKnownHostsFile=/opt/dfr/prod/offsite_known_hosts"; '
)


def with_backup_host(inventory: Path, backup: TargetHost, **extra: object) -> Path:
    """The inventory with ``backup`` in its group backup (its host data with ``extra``),
    reading the same secrets."""
    name, data = backup.inventory_entry()
    data["secrets_file"] = str(inventory.with_suffix(".env"))
    data.update(extra)
    inventory.write_text(inventory.read_text() + f"backup = [({name!r}, {data!r})]\n")
    return inventory


def add_passphrase(inventory: Path, passphrase: str = PASSPHRASE) -> None:
    """The off-host passphrase in the secrets of the inventory's environment."""
    with open(inventory.with_suffix(".env"), "a") as secrets:
        secrets.write(f"DFR_OFFSITE_PASSPHRASE={passphrase}\n")


def deploy_with_backup_host(
    inventory: Path, backup: TargetHost, passphrase: str = PASSPHRASE, **backup_data: object
) -> Path:
    """The environment's off-host passphrase in its secrets, ``backup`` in its group backup
    (its host data with ``backup_data``), and deploy.py run: the inventory."""
    add_passphrase(inventory, passphrase)
    inventory = with_backup_host(inventory, backup, **backup_data)
    run = pyinfra(inventory, "deploy.py")
    assert run.returncode == 0, run.stderr[-3000:]
    return inventory


def offsite(host: TargetHost, command: str, check: bool = True) -> str:
    return host.exec(f"/opt/dfr/prod/bin/dfr-offsite {command} 2>&1", check=check)


def kept_on(host: TargetHost) -> str:
    """The newest backup the host keeps (its retention keeps one a day)."""
    name = host.exec("/opt/dfr/prod/bin/dfr-backup kept latest").split()[0]
    return f"/var/backups/dfr/prod/{name}"


def archives(host: TargetHost) -> list[str]:
    return offsite(host, "list").split()


def kept_by_borg(times: list[datetime.datetime], daily: int, monthly: int) -> set[int]:
    """Indexes of ``times`` that borg's prune keeps: per rule, newest first, the newest
    archive of each period not kept by an earlier rule."""
    kept: set[int] = set()
    for pattern, count in (("%Y-%m-%d", daily), ("%Y-%m", monthly)):
        last, taken = None, 0
        for i in sorted(range(len(times)), key=lambda i: times[i], reverse=True):
            period = times[i].strftime(pattern)
            if period != last:
                last = period
                if i not in kept and taken < count:
                    kept.add(i)
                    taken += 1
    return kept


RECEIVER = """
import http.server, sys
class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with open("/var/tmp/received", "a") as log:
            log.write(self.path + " " + body.decode(errors="replace").replace("\\n", " | ") + "\\n")
        self.send_response(200)
        self.end_headers()
http.server.HTTPServer(("", 8099), Receiver).serve_forever()
"""
METRICS = "/var/lib/node_exporter/textfile_collector/dfr_backup_prod.prom"


def metric(host: TargetHost, name: str, path: str = METRICS) -> int:
    line = host.exec(f"grep '^{name}{{env=\"prod\"}} ' {path}")
    return int(line.split()[-1])


def received(backup_host: TargetHost) -> list[str]:
    return backup_host.exec("cat /var/tmp/received 2>/dev/null || true").splitlines()


def start_receiver(backup_host: TargetHost) -> None:
    """RECEIVER on the backup host's port 8099, as a transient unit, once it listens."""
    backup_host.exec("cat >/var/tmp/receiver.py", input=RECEIVER.encode())
    backup_host.exec("systemd-run --unit dfr-test-receiver python3 /var/tmp/receiver.py")
    wait_for("the test receiver", lambda: backup_host.exec(
        "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 8099))' "
        "2>/dev/null && echo up || true") == "up")  # fmt: skip


def assert_second_deploy_quiet(inventory: Path, *secrets: str) -> None:
    """A second deploy changes nothing, and its --dry --diff shows none of ``secrets``."""
    again = pyinfra(inventory, "deploy.py")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.changed() == []
    dry = pyinfra(inventory, "deploy.py", "--dry", "--diff", execute=False, json_output=False)
    assert dry.returncode == 0, dry.stderr[-3000:]
    for secret in secrets:
        assert secret not in dry.output
