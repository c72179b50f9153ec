"""Staging reads production's off-host repository (offsite_reads): it refreshes itself from
production's backups and drills them on its own host, and its key still takes nothing away."""

from __future__ import annotations

import pytest

from tests.harness.hosts import HostPool, TargetHost
from tests.harness.images import docker_ready_image
from tests.harness.pyinfra_run import pyinfra
from tests.integration import test_offsite_backups as offsite_backups
from tests.integration.backups import assert_neutralized, fingerprint
from tests.integration.offsite import (
    BORG_ENV,
    PASSPHRASE,
    REPOSITORY,
    assert_second_deploy_quiet,
    deploy_with_backup_host,
    received,
    start_receiver,
)
from tests.integration.stack import stack_inventory
from tests.integration.test_offsite_backups import live_databases

# The production host, the backup host and production's archive sent off-host: the module
# fixtures of the off-host backup tests, made once more for this module.
backup_host, prod, original, sent = (
    offsite_backups.backup_host,
    offsite_backups.prod,
    offsite_backups.original,
    offsite_backups.sent,
)

STAGING_PASSPHRASE = "Zt4Kp8Wq2Lm6Rv9Xc3Nb7Hy5Gd1"
READS = {
    "offsite_reads": ["prod"],
    "drill_schedule": "Sun *-*-* 04:00:00",
    "drill_envs": ["prod"],
}
DRILL_METRICS = "/var/lib/node_exporter/textfile_collector/dfr_drill_staging_from_prod.prom"
KEYS = "/srv/dfr-offsite/.ssh/authorized_keys"
FROM_PROD = {"from": "offsite", "offsite_env": "prod"}


@pytest.fixture(scope="module")
def staging(start_hosts, pool: HostPool, base_images, distro_docker_data, backup_host, prod):
    """Staging, deployed with production's backup host and reading production's repository:
    production's passphrase in prod.env beside staging.env (nothing else of production's)."""
    (host,) = start_hosts(docker_ready_image(), prefix="rstaging")
    inventory = stack_inventory(pool, [host], "staging", base_images, distro_docker_data)
    prod_secrets = inventory.with_name("prod.env")
    prod_secrets.write_text(f"DFR_OFFSITE_PASSPHRASE={PASSPHRASE}\n")
    prod_secrets.chmod(0o600)
    with open(inventory, "a") as text:
        text.write(f"targets[0][1].update({READS!r})\n")
    return host, deploy_with_backup_host(inventory, backup_host, STAGING_PASSPHRASE)


def key_line(backup_host: TargetHost, host: TargetHost, env: str, read: bool = False) -> str:
    marker = f"dfr-offsite{'-read' if read else ''}:{env}:{host.name}"
    (line,) = [
        line for line in backup_host.exec(f"cat {KEYS}").splitlines() if line.endswith(f" {marker}")
    ]
    return line


def test_staging_restores_productions_off_host_backup_neutralized(staging, sent, original):
    host, inventory = staging
    run = pyinfra(inventory, "tasks/restore.py", data={**FROM_PROD, "snapshot": "latest"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"Restore {sent} from" in run.stderr
    assert_neutralized(host)
    restored = fingerprint(host)
    # Everything but Odoo's own ir_* tables, which the neutralization changes.
    as_backed_up = {k: v for k, v in original.items() if not k.startswith("table ir_")}
    assert {k: restored.get(k) for k in as_backed_up} == as_backed_up


def test_a_drill_of_productions_backup_on_staging_leaves_staging_as_it_was(staging, sent):
    host, inventory = staging
    databases, data = live_databases(host), fingerprint(host)
    run = pyinfra(inventory, "tasks/drill.py", data={"offsite_env": "prod"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"drill of prod's {sent} passed" in run.stderr and "neutralizing" in run.stderr
    metrics = host.exec(f"cat {DRILL_METRICS}")
    assert 'dfr_backup_drill_last_result{env="prod",drilled_on="staging"} 1' in metrics
    assert (live_databases(host), fingerprint(host)) == (databases, data)
    # The weekly timer's drill of production's backup, run now.
    unit = "dfr-drill-staging-from-prod"
    host.exec(f"systemctl start {unit}.service", check=False)  # oneshot: waits for it
    assert host.exec(f"systemctl show -P Result {unit}.service") == "success", host.exec(
        f"journalctl -u {unit}.service | tail -n 20"
    )
    assert host.exec(f"systemctl is-enabled {unit}.timer") == "enabled"
    assert live_databases(host) == databases


def test_a_second_deploy_changes_nothing_and_shows_no_passphrase(staging, prod, backup_host):
    host, inventory = staging
    assert_second_deploy_quiet(inventory, PASSPHRASE, STAGING_PASSPHRASE)
    modes = host.exec("stat -c '%a %U' /opt/dfr/staging/offsite-prod.passphrase")
    assert modes == "600 root"
    assert key_line(backup_host, host, "staging").startswith(
        'command="borg serve --append-only --restrict-to-path /srv/dfr-offsite/staging",restrict '
    )
    assert key_line(backup_host, host, "staging", read=True).startswith(
        'command="borg serve --append-only --storage-quota 10M '
        '--restrict-to-path /srv/dfr-offsite/prod",restrict '
    )
    assert key_line(backup_host, prod[0], "prod").startswith(
        'command="borg serve --append-only --restrict-to-path /srv/dfr-offsite/prod",restrict '
    )


def test_bad_inputs_are_refused_in_one_line_changing_nothing(staging, backup_host):
    host, inventory = staging
    databases = live_databases(host)
    for task, data in (("tasks/restore.py", {"from": "offsite"}), ("tasks/drill.py", {})):
        run = pyinfra(inventory, task, data={**data, "offsite_env": "dev"})
        assert run.returncode != 0
        assert "staging reads no off-host repository of dev" in run.last_error_line()
        assert "offsite_reads" in run.last_error_line()
    assert live_databases(host) == databases

    prod_secrets = inventory.with_name("prod.env")
    kept = prod_secrets.read_text()
    prod_secrets.write_text("DFR_DB_PASSWORD=Hq3Nw8Xe2Tk6Vb9Zs4Lm\n")
    keys = backup_host.exec(f"cat {KEYS}")
    try:
        run = pyinfra(inventory, "deploy.py")
    finally:
        prod_secrets.write_text(kept)
    assert run.returncode != 0
    assert "secrets for prod lack DFR_OFFSITE_PASSPHRASE" in run.last_error_line()
    assert "offsite_reads" in run.last_error_line()
    assert backup_host.exec(f"cat {KEYS}") == keys
    assert host.exec("cat /opt/dfr/staging/offsite-prod.passphrase") == PASSPHRASE


def test_stagings_key_can_neither_add_to_nor_take_from_productions_repository(
    staging, prod, sent, backup_host
):
    host = staging[0]
    # Production's repository holding more than the read key's 10 MB quota, as a real one
    # does: an old archive of 12 MB, added with production's own key.
    prod[0].exec(
        "head -c 12000000 /dev/urandom >/var/tmp/filler && cd /var/tmp && "
        + BORG_ENV
        + "borg create --timestamp 2000-01-01T00:00:00 ::filler filler"
    )
    segments = f"cd {REPOSITORY}/data && find . -type f | xargs sha256sum"
    before = set(backup_host.exec(segments).splitlines())
    listed = archives_read_by(host)
    borg = (
        "set -a; . /opt/dfr/staging/offsite-prod.env; set +a; "
        "export BORG_REPO=$DFR_OFFSITE_REPOSITORY "
        "BORG_PASSCOMMAND='cat /opt/dfr/staging/offsite-prod.passphrase' "
        "BORG_BASE_DIR=/var/lib/dfr-offsite/staging-from-prod "
        'BORG_RSH="ssh -i $DFR_OFFSITE_KEY -o BatchMode=yes '
        '-o UserKnownHostsFile=/opt/dfr/staging/offsite_known_hosts"; '
    )
    # A planted archive (which a later restore of "latest" would take), a deleted one, a prune:
    # each refused whole, before borg commits anything.
    for attempt in (
        "borg create ::prod-dfr-29990101T000000Z.dfrbak /etc/hostname",
        f"borg delete ::{sent}",
        "borg prune --keep-last 1",
    ):
        refused = host.exec(f"{borg}{attempt} 2>&1; echo rc=$?", check=False)
        assert "storage quota" in refused and "rc=0" not in refused, (attempt, refused)
    destroy = host.exec(
        borg + "BORG_DELETE_I_KNOW_WHAT_I_AM_DOING=YES borg delete 2>&1; echo rc=$?", check=False
    )
    assert "rc=0" not in destroy
    assert archives_read_by(host) == listed and sent in listed
    ssh = borg + "$BORG_RSH dfr-offsite@$DFR_OFFSITE_ADDRESS"
    host.exec(f"{ssh} 'touch /tmp/owned; rm -rf /srv/dfr-offsite/prod' </dev/null 2>&1 || true")
    assert backup_host.exec("ls /tmp/owned 2>/dev/null || true") == ""
    interactive = host.exec(f"{ssh} -tt </dev/null 2>&1; echo rc=$?", check=False)
    assert "PTY allocation request failed" in interactive
    assert before <= set(backup_host.exec(segments).splitlines())


def archives_read_by(host: TargetHost) -> list[str]:
    return host.exec("/opt/dfr/staging/bin/dfr-offsite --from prod list").split()


def test_a_failed_drill_says_whose_backup_to_the_drilling_environments_url(staging, backup_host):
    host, inventory = staging
    url = f"http://{backup_host.address}:8099/ping/staging"
    run = pyinfra(inventory, "deploy.py", data={"backup_notify_url": url})
    assert run.returncode == 0, run.stderr[-3000:]
    start_receiver(backup_host)
    missing = "prod-dfr-20000101T000000Z.dfrbak"
    failed = pyinfra(inventory, "tasks/drill.py", data={"offsite_env": "prod", "snapshot": missing})
    assert failed.returncode != 0
    verdict = "drill of prod's newest off-host backup FAILED (above): that backup may not restore"
    assert verdict in failed.stderr
    (ping,) = received(backup_host)
    assert ping.startswith("/ping/staging/fail ") and f"Archive {missing} does not exist" in ping
    assert ping.rstrip(" |").endswith(verdict)
    metrics = host.exec(f"cat {DRILL_METRICS}")
    assert 'dfr_backup_drill_last_result{env="prod",drilled_on="staging"} 0' in metrics


def test_with_drill_notify_url_every_drill_reports_to_its_own_check(staging, sent, backup_host):
    """Runs after the receiver of the test above was started."""
    host, inventory = staging
    url = f"http://{backup_host.address}:8099/ping/drills"
    run = pyinfra(inventory, "deploy.py", data={"drill_notify_url": url})
    assert run.returncode == 0, run.stderr[-3000:]
    assert host.exec("stat -c '%a %U' /opt/dfr/staging/drill-notify.url") == "600 root"
    before = len(received(backup_host))
    passed = pyinfra(inventory, "tasks/drill.py", data={"offsite_env": "prod"})
    assert passed.returncode == 0, passed.stderr[-3000:]
    missing = "prod-dfr-20000101T000000Z.dfrbak"
    failed = pyinfra(inventory, "tasks/drill.py", data={"offsite_env": "prod", "snapshot": missing})
    assert failed.returncode != 0
    pings = received(backup_host)[before:]
    assert [ping.split()[0] for ping in pings] == ["/ping/drills", "/ping/drills/fail"], pings
    assert f"Archive {missing} does not exist" in pings[1]
    assert "drill of prod's newest off-host backup FAILED" in pings[1]
    unset = pyinfra(inventory, "deploy.py")
    assert unset.returncode == 0, unset.stderr[-3000:]
    assert host.exec("ls /opt/dfr/staging/drill-notify.url 2>/dev/null || true") == ""


def test_taking_prod_out_of_offsite_reads_takes_the_access_away(staging, prod, backup_host):
    host, inventory = staging
    # Another environment's host of the same name, with a read key too: left as it is.
    neighbour = (
        'command="borg serve --append-only --restrict-to-path /srv/dfr-offsite/dev",restrict '
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc2Y1bq0J3vH3b7yq7g0cG5c2b0w1wq8Xz8k3m4n5p6 "
        f"dfr-offsite-read:dev:{host.name}"
    )
    backup_host.exec(f"echo '{neighbour}' >>{KEYS}")
    run = pyinfra(inventory, "deploy.py", data={"offsite_reads": "[]", "drill_envs": "null"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert key_line(backup_host, host, "staging").startswith(
        'command="borg serve --append-only --restrict-to-path /srv/dfr-offsite/staging",'
    )
    assert neighbour in backup_host.exec(f"cat {KEYS}").splitlines()
    left = host.exec(
        "ls -d /opt/dfr/staging/offsite-prod.* /var/lib/dfr-offsite/staging-from-prod "
        "/etc/systemd/system/dfr-drill-staging-from-prod.* 2>/dev/null || true"
    )
    assert left == ""
    refused = host.exec("/opt/dfr/staging/bin/dfr-offsite --from prod list 2>&1", check=False)
    assert "staging does not read prod's off-host repository" in refused
    # The key itself: the backup host lets it use staging's directory only.
    direct = host.exec(
        "set -a; . /opt/dfr/staging/offsite.env; set +a; BORG_BASE_DIR=$(mktemp -d) "
        'BORG_RSH="ssh -i $DFR_OFFSITE_KEY -o BatchMode=yes '
        '-o UserKnownHostsFile=/opt/dfr/staging/offsite_known_hosts" borg list '
        "ssh://dfr-offsite@$DFR_OFFSITE_ADDRESS:$DFR_OFFSITE_PORT/srv/dfr-offsite/prod/repo "
        "2>&1; echo rc=$?",
        check=False,
    )
    assert "not allowed" in direct and "rc=0" not in direct, direct
    again = pyinfra(inventory, "deploy.py", data={"offsite_reads": "[]", "drill_envs": "null"})
    assert again.returncode == 0 and again.changed() == [], again.stderr[-3000:]
    # Its own drill timer, there since drill_envs is back to its own: gone with drill_schedule.
    assert host.exec("systemctl is-enabled dfr-drill-staging.timer") == "enabled"
    unscheduled = {"offsite_reads": "[]", "drill_envs": "null", "drill_schedule": "null"}
    run = pyinfra(inventory, "deploy.py", data=unscheduled)
    assert run.returncode == 0, run.stderr[-3000:]
    assert host.exec("ls /etc/systemd/system/dfr-drill-staging.* 2>/dev/null || true") == ""
    again = pyinfra(inventory, "deploy.py", data=unscheduled)
    assert again.returncode == 0 and again.changed() == [], again.stderr[-3000:]
