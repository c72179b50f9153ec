"""Off-host backups: a borg repository on a third host, append-only from production, restored
onto a fresh host after production is gone."""

from __future__ import annotations

import datetime
import shlex
import socket
from pathlib import Path

import pytest

from tests.harness.docker_cli import docker
from tests.harness.hosts import HostPool, TargetHost
from tests.harness.images import docker_ready_image, target_image
from tests.harness.pyinfra_run import pyinfra
from tests.harness.waiting import wait_for
from tests.integration.backups import fingerprint, odoo, seed
from tests.integration.offsite import (
    BORG_ENV,
    PASSPHRASE,
    REPOSITORY,
    add_passphrase,
    archives,
    assert_second_deploy_quiet,
    deploy_with_backup_host,
    kept_by_borg,
    kept_on,
    metric,
    offsite,
    received,
    start_receiver,
    with_backup_host,
)
from tests.integration.stack import psql, stack_inventory

# Strings of the seeded dataset (tests/integration/backups.py), in its tables and its files.
KNOWN_STRINGS = ["Ñandú", "Farmer 1999", "large object ✓", "plain text", "Village 16"]


def ssh_answers(host: TargetHost) -> None:
    """Once sshd, (re)started, sends its banner again."""

    def banner() -> bool:
        try:
            with socket.create_connection((host.address, 22), timeout=2) as sock:
                return sock.recv(4).startswith(b"SSH-")
        except OSError:
            return False

    wait_for(f"sshd on {host.name}", banner)


@pytest.fixture(scope="module")
def backup_host(start_hosts) -> TargetHost:
    (host,) = start_hosts(target_image(), prefix="obackup")
    return host


@pytest.fixture(scope="module")
def prod(start_hosts, pool: HostPool, base_images, distro_docker_data, backup_host):
    (host,) = start_hosts(docker_ready_image(), prefix="oprod")
    inventory = stack_inventory(pool, [host], "prod", base_images, distro_docker_data)
    inventory = deploy_with_backup_host(inventory, backup_host)
    seed(host, f"{host.name}.prod.dfr.test")
    return host, inventory


@pytest.fixture(scope="module")
def original(prod) -> dict[str, str]:
    return fingerprint(prod[0])


@pytest.fixture(scope="module")
def sent(prod, original) -> str:
    """A backup made on production and sent off-host on demand: its archive's name."""
    run = pyinfra(prod[1], "tasks/backup.py", data={"offsite": True})
    assert run.returncode == 0, run.stderr[-3000:]
    (name,) = archives(prod[0])
    assert f"backup {name} is off-host" in run.stderr
    return name


def test_a_second_deploy_changes_nothing_and_shows_no_passphrase(prod, backup_host):
    assert_second_deploy_quiet(prod[1], PASSPHRASE)
    host = prod[0]
    assert host.exec("stat -c '%a %U' /opt/dfr/prod/offsite.passphrase") == "600 root"
    line = backup_host.exec("cat /srv/dfr-offsite/.ssh/authorized_keys")
    assert line.startswith(
        'command="borg serve --append-only --restrict-to-path /srv/dfr-offsite/prod",restrict '
    )
    assert line.endswith(f"dfr-offsite:prod:{host.name}")


@pytest.mark.smoke
def test_backups_go_off_host_on_demand_and_from_the_timer(prod, sent):
    host = prod[0]
    assert host.exec(f"ls /var/backups/dfr/prod/{sent}/manifest.json")  # the host's copy stays
    assert "DFR_OFFSITE=yes" in host.exec("cat /opt/dfr/prod/backup.env")
    host.exec("systemctl start dfr-backup-prod.service", check=False)  # oneshot: waits for it
    assert host.exec("systemctl show -P Result dfr-backup-prod.service") == "success", host.exec(
        "journalctl -u dfr-backup-prod.service | tail -n 20"
    )
    newest = host.exec("/opt/dfr/prod/bin/dfr-backup kept latest").split()[0]
    assert archives(host) == [sent, newest]


def test_the_repository_holds_none_of_the_datasets_strings(prod, sent, backup_host):
    for text in KNOWN_STRINGS:
        found = backup_host.exec(
            f"grep -rlaF {shlex.quote(text)} /srv/dfr-offsite || true"
        )  # fmt: skip
        assert found == "", f"{text!r} readable in {found}"
    # ... while the host's own (unencrypted) copy holds the filestore's: the search finds them.
    assert prod[0].exec(f"grep -rlaF 'plain text' {kept_on(prod[0])} || true")


def _segments(backup_host: TargetHost) -> set[str]:
    return set(
        backup_host.exec(f"cd {REPOSITORY}/data && find . -type f | xargs sha256sum").splitlines()
    )


def test_productions_key_cannot_take_anything_away(prod, sent, backup_host):
    host = prod[0]
    before = _segments(backup_host)
    # borg itself, with production's key: delete, prune and compact leave every byte stored
    # (append-only: they only add a transaction), destroying the repository is refused.
    host.exec(BORG_ENV + f"borg delete ::{sent}; borg prune --keep-last 1; borg compact",
              check=False)  # fmt: skip
    destroy = host.exec(
        BORG_ENV + "BORG_DELETE_I_KNOW_WHAT_I_AM_DOING=YES borg delete 2>&1; echo rc=$?",
        check=False,
    )
    assert "append-only mode" in destroy and "rc=0" not in destroy
    assert before <= _segments(backup_host)
    # A shell, rm, and port forwarding with the same key: only `borg serve` ever runs.
    ssh = BORG_ENV + "$BORG_RSH dfr-offsite@$DFR_OFFSITE_ADDRESS"
    host.exec(f"{ssh} 'touch /tmp/owned; rm -rf /srv/dfr-offsite/prod' </dev/null 2>&1 || true")
    assert backup_host.exec("ls /tmp/owned 2>/dev/null || true") == ""
    interactive = host.exec(f"{ssh} -tt </dev/null 2>&1; echo rc=$?", check=False)
    assert "PTY allocation request failed" in interactive
    forward = host.exec(
        f"timeout 30 {ssh} -N -o ExitOnForwardFailure=yes -R 127.0.0.1:2299:127.0.0.1:22 2>&1;"
        " echo rc=$?",
        check=False,
    )
    assert "forwarding failed" in forward and "rc=0" not in forward
    assert before <= _segments(backup_host)
    assert backup_host.exec(f"test -f {REPOSITORY}/config && echo kept") == "kept"


def test_pruning_from_the_backup_host_keeps_the_retention_counts(prod, sent, backup_host):
    host = prod[0]
    # Older archives, added with production's key as if made on earlier days.
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0, tzinfo=None)
    for days in (1, 2, 3, 35, 70, 400):
        stamp = (now - datetime.timedelta(days=days)).isoformat()
        host.exec(BORG_ENV + f"cd {kept_on(host)} && "
                  f"borg create --timestamp {stamp} ::old-{days} .")  # fmt: skip
    listing = host.exec(BORG_ENV + "borg list --format '{archive} {time}{NL}'").splitlines()
    names = [line.split()[0] for line in listing]
    times = [
        datetime.datetime.strptime(" ".join(line.split()[1:]), "%a, %Y-%m-%d %H:%M:%S")
        for line in listing
    ]
    run = pyinfra(prod[1], "tasks/offsite_prune.py",
                  data={"offsite_keep_daily": 2, "offsite_keep_weekly": 0,
                        "offsite_keep_monthly": 2})  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    expected = {names[i] for i in kept_by_borg(times, daily=2, monthly=2)}
    assert set(archives(host)) == expected
    assert len(expected) == 4 and len(names) > 4

    # An archive the prune kept, deleted since with production's key (hidden, not removed):
    # the next prune refuses, since compacting would make that deletion final.
    victim = sorted(expected)[0]
    host.exec(BORG_ENV + f"borg delete ::{victim}")
    refused = pyinfra(prod[1], "tasks/offsite_prune.py")
    assert refused.returncode != 0
    assert f"vanished from {REPOSITORY} since the last prune" in refused.stderr
    assert set(archives(host)) == expected - {victim}
    accepted = pyinfra(prod[1], "tasks/offsite_prune.py", data={"offsite_vanished_ok": True})
    assert accepted.returncode == 0, accepted.stderr[-3000:]
    assert backup_host.exec("ls /srv/dfr-offsite/ | grep -c passphrase || true") == "0"


def test_backup_status_says_where_backups_stand(prod, sent):
    run = pyinfra(prod[1], "tasks/backup_status.py")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "newest off-host backup: prod-dfr-" in run.stderr and "h old" in run.stderr
    assert "off-host repository ssh://dfr-offsite@" in run.stderr
    late = pyinfra(prod[1], "tasks/backup_status.py", data={"offsite_max_age_hours": 0})
    assert late.returncode != 0
    assert "more than offsite_max_age_hours (0)" in late.last_error_line()


def test_bad_inputs_are_refused_in_one_line(prod, sent, backup_host):
    host, inventory = prod
    count = len(archives(host))
    missing = pyinfra(inventory, "tasks/restore.py",
                      data={"from": "offsite", "snapshot": "prod-dfr-20000101T000000Z.dfrbak",
                            "confirm": "prod"})  # fmt: skip
    assert missing.returncode != 0
    assert "prod-dfr-20000101T000000Z.dfrbak does not exist" in missing.last_error_line()

    wrong = "/opt/dfr/prod/offsite.passphrase"
    host.exec(f"cp -p {wrong} {wrong}.kept && echo wrong-passphrase-0123456789 >{wrong}")
    try:
        refused = offsite(host, "push latest", check=False)
    finally:
        host.exec(f"mv {wrong}.kept {wrong}")
    assert "refuses DFR_OFFSITE_PASSPHRASE" in refused

    backup_host.exec("systemctl stop ssh.socket ssh.service 2>/dev/null || systemctl stop ssh")
    try:
        unreachable = offsite(host, "push latest", check=False)
    finally:
        backup_host.exec("systemctl start ssh")
        ssh_answers(backup_host)
    assert "cannot be reached" in unreachable

    backup_host.exec(
        "mkdir -p /var/tmp/hostkeys && cp -p /etc/ssh/ssh_host_* /var/tmp/hostkeys/ && "
        "rm /etc/ssh/ssh_host_* && ssh-keygen -A && systemctl restart ssh"
    )
    ssh_answers(backup_host)
    answers: list[str] = []

    def past_start_up() -> bool:
        # Right after its restart, sshd may still close a connection before its key exchange
        # (seen about once in five runs here): that is not the answer this step is about.
        answers.append(offsite(host, "push latest", check=False))
        return "Connection closed by remote host" not in answers[-1]

    try:
        wait_for("an answer from the restarted sshd", past_start_up, timeout=30)
        changed = answers[-1]
    finally:
        backup_host.exec("cp -p /var/tmp/hostkeys/* /etc/ssh/ && systemctl restart ssh")
        ssh_answers(backup_host)
    assert "answers with another SSH host key" in changed
    for answer in (refused, unreachable, changed):
        assert answer.count("ERROR") == 1, answer
    assert len(archives(host)) == count


def test_restoring_from_off_host_needs_a_repository(start_hosts, pool, base_images,
                                                    distro_docker_data, prod):  # fmt: skip
    """An inventory without a backup host: from=offsite says what to configure."""
    host = prod[0]
    bare = stack_inventory(pool, [host], "prod", base_images, distro_docker_data)
    run = pyinfra(bare, "tasks/restore.py", data={"from": "offsite", "confirm": "prod"})
    assert run.returncode != 0
    assert "no off-host repository is configured" in run.last_error_line()


def scheduled_run(host: TargetHost) -> str:
    """The timer's service, run now: its result (success, exit-code)."""
    host.exec("systemctl start dfr-backup-prod.service", check=False)  # oneshot: waits for it
    return host.exec("systemctl show -P Result dfr-backup-prod.service")


def test_the_timers_outcome_reaches_the_notify_url_and_the_metric_file(prod, sent, backup_host):
    host, inventory = prod
    url = f"http://{backup_host.address}:8099/ping/3f2a"
    run = pyinfra(inventory, "deploy.py", data={"backup_notify_url": url})
    assert run.returncode == 0, run.stderr[-3000:]
    assert host.exec("stat -c '%a %U' /opt/dfr/prod/notify.url") == "600 root"

    # Nobody answers the URL yet: the backup succeeds all the same, and says so.
    assert scheduled_run(host) == "success"
    assert "could not reach backup_notify_url" in host.exec(
        "journalctl -u dfr-backup-prod.service -n 5"
    )
    start_receiver(backup_host)

    assert scheduled_run(host) == "success"
    assert received(backup_host)[-1].startswith("/ping/3f2a ")
    assert metric(host, "dfr_backup_last_result") == 1
    assert metric(host, "dfr_backup_offsite_last_result") == 1
    succeeded = metric(host, "dfr_backup_last_success_timestamp_seconds")
    assert metric(host, "dfr_backup_last_size_bytes") > 100_000

    # The backup host cannot be reached: the copy fails, and says so at /fail.
    backup_host.exec("systemctl stop ssh.socket ssh.service 2>/dev/null || systemctl stop ssh")
    try:
        assert scheduled_run(host) == "exit-code"
    finally:
        backup_host.exec("systemctl start ssh")
        ssh_answers(backup_host)
    last = received(backup_host)[-1]
    assert last.startswith("/ping/3f2a/fail ") and "cannot be reached" in last
    assert metric(host, "dfr_backup_offsite_last_result") == 0
    assert metric(host, "dfr_backup_last_result") == 0
    assert metric(host, "dfr_backup_last_success_timestamp_seconds") == succeeded

    # PostgreSQL is stopped: the backup fails, and says so at /fail.
    postgres = "$(docker ps -q -f label=com.docker.compose.service=postgres)"
    host.exec(f"docker stop {postgres}")
    try:
        assert scheduled_run(host) == "exit-code"
    finally:
        host.exec("docker start $(docker ps -aq -f label=com.docker.compose.service=postgres)")
    last = received(backup_host)[-1]
    assert last.startswith("/ping/3f2a/fail ") and "ERROR" in last
    assert metric(host, "dfr_backup_last_result") == 0


@pytest.fixture(scope="module")
def recovered(start_hosts, pool, base_images, distro_docker_data, prod, original, backup_host):
    """Production lost, then a fresh host deployed and restored from off-host: the new
    production, its inventory, and the archive restored."""
    old, _ = prod
    newest = archives(old)[-1]
    # Lost: its engine stopped first (the harness' cleanup), then the container and its disk.
    old.exec("systemctl stop docker.socket docker containerd; true")
    docker("rm", "-f", "-v", old.container)
    (fresh,) = start_hosts(docker_ready_image(), prefix="onew")
    inventory = stack_inventory(pool, [fresh], "prod", base_images, distro_docker_data)
    add_passphrase(inventory)
    inventory = with_backup_host(inventory, backup_host)
    dry = pyinfra(inventory, "deploy.py", "--dry", "--diff", execute=False, json_output=False)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert PASSPHRASE not in dry.output
    assert f"dfr-offsite:prod:{fresh.name}" not in backup_host.exec(
        "cat /srv/dfr-offsite/.ssh/authorized_keys"
    )
    deployed = pyinfra(inventory, "deploy.py", data={"drill_schedule": "Sun *-*-* 04:00:00"})
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    # The lost host's key is no longer authorized: whoever has its disk has the key.
    authorized = backup_host.exec("cat /srv/dfr-offsite/.ssh/authorized_keys")
    assert f"dfr-offsite:prod:{old.name}" not in authorized
    assert f"dfr-offsite:prod:{fresh.name}" in authorized
    refused = pyinfra(inventory, "tasks/restore.py", data={"from": "offsite"})
    assert refused.returncode != 0 and "confirm=prod" in refused.last_error_line()
    run = pyinfra(inventory, "tasks/restore.py", data={"from": "offsite", "confirm": "prod"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"Restore {newest} from" in run.stderr
    return fresh, inventory


def test_disaster_recovery_onto_a_fresh_host(recovered, original):
    """Production is gone; a fresh host is deployed from the checkout, the secrets file and
    the backup host (a --dry --diff first, which changes nothing and shows no passphrase), and
    the newest off-host backup is restored onto it: every table and file byte-identical."""
    assert fingerprint(recovered[0]) == original


DRILL_METRICS = "/var/lib/node_exporter/textfile_collector/dfr_drill_prod.prom"


def live_databases(host: TargetHost) -> str:
    """The stack's databases and their OIDs: a restore or a scratch copy left shows here."""
    return psql(host, "SELECT string_agg(datname || ':' || oid, ',' ORDER BY datname) "
                      "FROM pg_database WHERE datname LIKE 'dfr%'")  # fmt: skip


def send_a_damaged_archive(host: TargetHost, inventory: Path, backup_host: TargetHost) -> None:
    """A new attachment (random bytes, most of what the next archive adds), an off-host backup,
    then the repository segment that took it damaged on the backup host's disk."""
    data = f"{REPOSITORY}/data"
    before = set(backup_host.exec(f"find {data} -type f").split())
    odoo(host, "sh", "-c", "head -c 8000000 /dev/urandom >/var/lib/odoo/filestore/dfr/$(date +%s)")
    sent = pyinfra(inventory, "tasks/backup.py", data={"offsite": True})
    assert sent.returncode == 0, sent.stderr[-3000:]
    new = set(backup_host.exec(f"find {data} -type f").split()) - before
    largest = max(new, key=lambda path: int(backup_host.exec(f"stat -c %s {path}")))
    backup_host.exec(f"printf 'damaged on purpose' | dd of={largest} bs=1 conv=notrunc "
                     f"seek=$(($(stat -c %s {largest}) / 2)) 2>/dev/null")  # fmt: skip


def test_a_drill_passes_on_a_good_backup_and_fails_loudly_on_a_damaged_one(recovered, backup_host):
    host, inventory = recovered
    databases = live_databases(host)
    run = pyinfra(inventory, "tasks/drill.py")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "drill passed" in run.stderr and "Odoo starts on it" in run.stderr
    assert metric(host, "dfr_backup_drill_last_result", DRILL_METRICS) == 1
    assert live_databases(host) == databases  # no scratch copy left, the live one untouched
    # The weekly timer's drill, run now.
    host.exec("systemctl start dfr-drill-prod.service", check=False)  # oneshot: waits for it
    assert host.exec("systemctl show -P Result dfr-drill-prod.service") == "success"
    assert host.exec("systemctl is-enabled dfr-drill-prod.timer") == "enabled"

    send_a_damaged_archive(host, inventory, backup_host)
    failed = pyinfra(inventory, "tasks/drill.py")
    assert failed.returncode != 0
    assert "FAILED (above): that backup may not restore" in failed.stderr, failed.stderr[-3000:]
    assert metric(host, "dfr_backup_drill_last_result", DRILL_METRICS) == 0
    assert live_databases(host) == databases


def test_a_damaged_archive_is_not_restored(recovered, backup_host):
    """The filestore streams from the repository while the database is restored: a damaged
    archive stops the restore before the swap, and production stays as it was."""
    host, inventory = recovered
    send_a_damaged_archive(host, inventory, backup_host)
    databases, live = live_databases(host), fingerprint(host)
    run = pyinfra(inventory, "tasks/restore.py", data={"from": "offsite", "confirm": "prod"})
    assert run.returncode != 0
    assert "borg extract failed" in run.stderr, run.stderr[-3000:]
    assert live_databases(host) == databases and fingerprint(host) == live
