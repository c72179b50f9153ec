"""The backup host prunes the off-host repository on its own timer, with the passphrase it
keeps for root alone, reports the outcome, and revokes the keys of hosts that left."""

from __future__ import annotations

import datetime

import pytest

from tests.harness.hosts import HostPool, TargetHost
from tests.harness.images import docker_ready_image, target_image
from tests.harness.pyinfra_run import pyinfra
from tests.integration.offsite import (
    BORG_ENV,
    PASSPHRASE,
    REPOSITORY,
    assert_second_deploy_quiet,
    deploy_with_backup_host,
    kept_by_borg,
    metric,
    received,
    start_receiver,
)
from tests.integration.stack import stack_inventory

TOOLS = "/opt/dfr-offsite/prod"
UNIT = "dfr-offsite-prune-prod"
PRUNE_METRICS = "/var/lib/node_exporter/textfile_collector/dfr_offsite_prune_prod.prom"
KEYS = "/srv/dfr-offsite/.ssh/authorized_keys"
# The backup host's own settings: its retention, and where a failed prune is reported.
BACKUP_HOST_DATA = {
    "offsite_keep_daily": 2,
    "offsite_keep_weekly": 0,
    "offsite_keep_monthly": 2,
    "backup_notify_url": "http://127.0.0.1:8099/ping/prune",
}
NO_SCHEDULE = {"offsite_prune_schedule": "null"}


@pytest.fixture(scope="module")
def backup_host(start_hosts) -> TargetHost:
    (host,) = start_hosts(target_image(), prefix="pbackup")
    return host


@pytest.fixture(scope="module")
def prod(start_hosts, pool: HostPool, base_images, distro_docker_data, backup_host):
    (host,) = start_hosts(docker_ready_image(), prefix="pprod")
    inventory = stack_inventory(pool, [host], "prod", base_images, distro_docker_data)
    return host, deploy_with_backup_host(inventory, backup_host, **BACKUP_HOST_DATA)


def borg_names(host: TargetHost) -> list[str]:
    """The repository's archives, listed with production's (append-only) key."""
    return host.exec(BORG_ENV + "borg list --short").split()


def repository_bytes(backup_host: TargetHost) -> int:
    return int(backup_host.exec(f"du -sb {REPOSITORY}").split()[0])


def prune_now(backup_host: TargetHost) -> str:
    """The timer's service, run now: its result (success, exit-code)."""
    backup_host.exec(f"systemctl start {UNIT}.service", check=False)  # oneshot: waits for it
    return backup_host.exec(f"systemctl show -P Result {UNIT}.service")


def prune_metric(backup_host: TargetHost, name: str) -> int:
    return metric(backup_host, name, PRUNE_METRICS)


def test_the_backup_host_keeps_the_passphrase_for_root_alone(prod, backup_host):
    host, inventory = prod
    assert_second_deploy_quiet(inventory, PASSPHRASE)
    assert backup_host.exec(f"systemctl is-enabled {UNIT}.timer") == "enabled"
    passphrase = f"{TOOLS}/offsite.passphrase"
    assert backup_host.exec(f"stat -c '%a %U' {passphrase}") == "600 root"
    assert backup_host.exec(f"cat {passphrase}") == PASSPHRASE
    # Not even the account owning the repository reads it ...
    as_account = backup_host.exec(f"runuser -u dfr-offsite -- cat {passphrase} 2>&1; true")
    assert "Permission denied" in as_account
    # ... and production's key, forced to `borg serve` in its own directory, reaches less.
    ssh = BORG_ENV + "$BORG_RSH dfr-offsite@$DFR_OFFSITE_ADDRESS"
    answer = host.exec(f"{ssh} 'cat {passphrase}' </dev/null 2>&1; true", check=False)
    assert PASSPHRASE not in answer


def test_the_timer_prunes_to_the_retention_counts_and_frees_space(prod, backup_host):
    host = prod[0]
    # Archives as if made on earlier days, with production's key: 1 MiB of their own each.
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0, tzinfo=None)
    for days in (0, 1, 2, 3, 35, 70, 400):
        stamp = (now - datetime.timedelta(days=days)).isoformat()
        host.exec(BORG_ENV + "mkdir -p /var/tmp/data && head -c 1048576 /dev/urandom "
                  f">/var/tmp/data/part && borg create --timestamp {stamp} ::old-{days} "
                  "/var/tmp/data")  # fmt: skip
    listing = host.exec(BORG_ENV + "borg list --format '{archive} {time}{NL}'").splitlines()
    names = [line.split()[0] for line in listing]
    times = [
        datetime.datetime.strptime(" ".join(line.split()[1:]), "%a, %Y-%m-%d %H:%M:%S")
        for line in listing
    ]
    expected = {names[i] for i in kept_by_borg(times, daily=2, monthly=2)}
    assert len(expected) == 4 and len(names) == 7
    before = repository_bytes(backup_host)

    assert prune_now(backup_host) == "success", backup_host.exec(
        f"journalctl -u {UNIT}.service | tail -n 20"
    )
    assert set(borg_names(host)) == expected
    after = repository_bytes(backup_host)
    assert before - after > 3 * 1_000_000  # three archives' own MiB, compacted away
    assert prune_metric(backup_host, "dfr_offsite_prune_last_result") == 1
    assert prune_metric(backup_host, "dfr_offsite_prune_archives") == 4
    assert prune_metric(backup_host, "dfr_offsite_repository_size_bytes") == after
    assert prune_metric(backup_host, "dfr_offsite_prune_last_success_timestamp_seconds") > 0


def test_a_vanished_archive_fails_the_timers_run_loudly(prod, backup_host):
    host = prod[0]
    start_receiver(backup_host)
    kept = borg_names(host)
    succeeded = prune_metric(backup_host, "dfr_offsite_prune_last_success_timestamp_seconds")
    victim = kept[0]
    host.exec(BORG_ENV + f"borg delete ::{victim}")  # hidden by production's key, not removed
    segments = backup_host.exec(f"find {REPOSITORY}/data -type f | sort")

    assert prune_now(backup_host) == "exit-code"
    assert prune_metric(backup_host, "dfr_offsite_prune_last_result") == 0
    assert (
        prune_metric(backup_host, "dfr_offsite_prune_last_success_timestamp_seconds") == succeeded
    )
    last = received(backup_host)[-1]
    assert last.startswith("/ping/prune/fail ")
    assert f"1 archive(s) vanished from {REPOSITORY} since the last prune" in last
    assert victim in last
    # Nothing pruned, nothing compacted: the hidden archive's data is still there to look at.
    assert borg_names(host) == kept[1:]
    assert backup_host.exec(f"find {REPOSITORY}/data -type f | sort") == segments


def test_hosts_that_left_the_inventory_lose_their_keys(prod, backup_host):
    host, inventory = prod
    line = backup_host.exec(f"cat {KEYS}")
    key = " ".join(line.split()[1:3])
    # A host of prod that is gone (the disaster's), one whose name starts with production's,
    # and a host of another environment with the same name as the gone one; then the read keys
    # (offsite_reads) of the gone host and of the other environment's.
    others = [f"restrict {key} dfr-offsite:prod:lost", f"restrict {key} dfr-offsite:prod:"
              f"{host.name}0", f"restrict {key} dfr-offsite:staging:lost",
              f"restrict {key} dfr-offsite-read:prod:lost",
              f"restrict {key} dfr-offsite-read:staging:lost"]  # fmt: skip
    backup_host.exec(f"cat >>{KEYS}", input="".join(f"{o}\n" for o in others).encode())
    revoke = "Revoke the off-host keys of hosts no longer in the inventory"

    dry = pyinfra(inventory, "deploy.py", "--dry", "--diff", execute=False, json_output=False)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert f"{revoke}: lost, {host.name}0" in dry.output
    assert backup_host.exec(f"cat {KEYS}").splitlines() == [line, *others]  # --dry: untouched

    run = pyinfra(inventory, "deploy.py")
    assert run.returncode == 0, run.stderr[-3000:]
    assert backup_host.exec(f"cat {KEYS}").splitlines() == [line, others[2], others[4]]
    assert backup_host.exec(f"stat -c '%a %U' {KEYS}") == "600 dfr-offsite"
    assert borg_names(host)  # production's own key still works
    dry = pyinfra(inventory, "deploy.py", "--dry", "--diff", execute=False, json_output=False)
    assert dry.returncode == 0 and revoke not in dry.output


def test_without_a_schedule_no_timer_and_no_passphrase_stay(prod, backup_host):
    inventory = prod[1]
    run = pyinfra(inventory, "deploy.py", data=NO_SCHEDULE)
    assert run.returncode == 0, run.stderr[-3000:]
    assert backup_host.exec(f"ls /etc/systemd/system/ {TOOLS} | grep -c -e {UNIT} -e "
                            "passphrase || true") == "0"  # fmt: skip
    assert backup_host.exec(f"systemctl is-active {UNIT}.timer; true") == "inactive"
    again = pyinfra(inventory, "deploy.py", data=NO_SCHEDULE)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.changed() == []

    # By hand, the same script with a passphrase brought for the run only.
    refused = pyinfra(inventory, "tasks/offsite_prune.py", data=NO_SCHEDULE)
    assert refused.returncode != 0
    assert f"vanished from {REPOSITORY} since the last prune" in refused.stderr
    manual = pyinfra(inventory, "tasks/offsite_prune.py",
                     data={**NO_SCHEDULE, "offsite_vanished_ok": True})  # fmt: skip
    assert manual.returncode == 0, manual.stderr[-3000:]
    assert "kept 3 archive(s)" in manual.stderr
    assert backup_host.exec(f"ls {TOOLS} | grep -c passphrase || true") == "0"
    assert prune_metric(backup_host, "dfr_offsite_prune_last_result") == 1


def test_by_hand_with_the_kept_passphrase_and_refused_without_the_tool(prod, backup_host):
    """Runs after the test above: no archive has vanished since its prune."""
    host, inventory = prod
    run = pyinfra(inventory, "deploy.py")  # the schedule back: the passphrase kept again
    assert run.returncode == 0, run.stderr[-3000:]
    manual = pyinfra(inventory, "tasks/offsite_prune.py")
    assert manual.returncode == 0, manual.stderr[-3000:]
    assert "kept 3 archive(s)" in manual.stderr
    # The kept passphrase served: none was brought for the run, and it is still there.
    assert backup_host.exec(f"ls {TOOLS} | grep passphrase") == "offsite.passphrase"

    kept = borg_names(host)
    backup_host.exec(f"rm {TOOLS}/bin/dfr-offsite-prune")
    refused = pyinfra(inventory, "tasks/offsite_prune.py")
    assert refused.returncode != 0
    assert (
        f"has no {TOOLS}/bin/dfr-offsite-prune yet: run deploy.py first"
        in refused.last_error_line()
    )
    assert borg_names(host) == kept
    again = pyinfra(inventory, "deploy.py")
    assert again.returncode == 0, again.stderr[-3000:]
