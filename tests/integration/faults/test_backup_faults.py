"""Backups under faults: killed, cut, a full disk, files changing: one clear line, nothing
changed or lost, no backup that looks complete."""

from __future__ import annotations

import os
import signal
import subprocess

from tests.harness.docker_cli import docker
from tests.harness.pyinfra_run import PROJECT, PYINFRA, pyinfra
from tests.integration.backups import backups_in
from tests.integration.faults.bed import (
    KILL_POSTGRES,
    cut_ssh,
    ends,
    host_backups,
    live_state,
    no_complete_backup,
    stack_up_again,
    while_running,
)


def test_postgres_killed_during_backup(prod, tmp_path):
    host = prod[0]
    before = live_state(host)
    run = while_running(
        prod,
        ["tasks/backup.py", "--data", f"backup_dir={tmp_path}"],
        "pg_dump -d dfr",
        KILL_POSTGRES,
    )
    assert run.returncode != 0
    no_complete_backup(tmp_path, host, before["host backups"])
    stack_up_again(host)
    assert live_state(host) == before


def test_backup_killed_outright_leaves_its_partial_to_the_next_backup(prod, state, tmp_path):
    """dfr-backup killed past its EXIT trap (kill -9, the OOM killer) cannot clean up: what it
    started still ends by itself (the flush loop too) and only its NAME.partial is left, which
    the next backup removes, saying so to the operator."""
    host = prod[0]
    docker("exec", "-d", host.container, "/opt/dfr/prod/bin/dfr-backup", "create")
    host.exec("for i in $(seq 1 600); do pgrep -f '[p]g_dump -d dfr' >/dev/null && exit 0; "
              "sleep 0.02; done; exit 1")  # fmt: skip
    host.exec("pkill -KILL -o -f '[d]fr-backup create'")
    ends(host, "dfr-backup", within=60)
    ends(host, "pg_dump", within=60)  # it holds the lock until it has written its dump
    (partial,) = set(host_backups(host).split()) - set(state["host backups"].split())
    assert partial.endswith(".partial")
    # No copy on the host: its retention would prune the module's good_backup's copy.
    run = pyinfra(prod[1], "tasks/backup.py",
                  data={"backup_dir": tmp_path, "backup_keep_on_host": "false"})  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"removing {partial}, left by a backup that never finished" in run.stderr
    assert len(backups_in(tmp_path)) == 1
    assert host_backups(host) == state["host backups"]  # the partial is gone


def test_a_second_backup_while_one_is_made_is_refused(prod, state, tmp_path):
    """Run by hand while the timer's backup runs: refused in one line, nothing of it left; the
    first one goes on and completes."""
    host = prod[0]
    docker("exec", "-d", host.container, "/opt/dfr/prod/bin/dfr-backup", "create")
    # The first stays busy meanwhile: frozen as soon as its pg_dump runs.
    host.exec("for i in $(seq 1 6000); do pkill -STOP -f '^pg_dump -d dfr' && exit 0; "
              "sleep 0.01; done; exit 1")  # fmt: skip
    try:
        run = pyinfra(prod[1], "tasks/backup.py", data={"backup_dir": tmp_path})
    finally:
        host.exec("pkill -CONT -f '^pg_dump -d dfr'")
    assert run.returncode != 0
    assert (
        "dfr-backup[prod] ERROR: another backup is being made on this host: run this one once it "
        "has ended" in run.stderr
    ), run.stderr[-3000:]
    assert list(tmp_path.iterdir()) == []
    ends(host, "dfr-backup", within=60)
    (made,) = set(host_backups(host).split()) - set(state["host backups"].split())
    assert made.endswith(".dfrbak")
    host.exec(f"test -f /var/backups/dfr/prod/{made}/manifest.json")
    host.exec(f"/opt/dfr/prod/bin/dfr-backup remove {made}")


def test_a_backup_killed_on_this_machine_leaves_its_partial_to_the_next_one_here(
    prod, state, good_backup, tmp_path
):
    """pyinfra and its ssh killed outright mid-stream (kill -9, a crash of the operator's
    machine): its NAME.partial stays in backup_dir. While it was writing there, a fetch into
    the same directory was refused; the next backup removes the partial."""
    host, inventory = prod
    first = subprocess.Popen(
        [str(PYINFRA), "-y", str(inventory), "tasks/backup.py",
         "--data", f"backup_dir={tmp_path}", "--data", "backup_keep_on_host=false"],
        cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        # Mid-stream, and staying there: frozen on the host as soon as its pg_dump runs.
        host.exec("for i in $(seq 1 6000); do pkill -STOP -f '^pg_dump -d dfr' && exit 0; "
                  "sleep 0.01; done; exit 1")  # fmt: skip
        fetch = pyinfra(inventory, "tasks/backup.py",
                        data={"backup_dir": tmp_path, "fetch": "latest"})  # fmt: skip
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        host.exec("pkill -CONT -f '^pg_dump -d dfr' || true")
    assert fetch.returncode != 0
    assert (
        f"another backup or fetch is writing to {tmp_path}: run this one once it has ended"
        in fetch.stderr
    ), fetch.stderr[-3000:]
    (left,) = tmp_path.iterdir()
    assert left.name.endswith(".dfrbak.partial")
    # The host's side ends once its stream has no reader; pg_dump holds the host's lock too.
    ends(host, "dfr-backup", within=60)
    ends(host, "pg_dump", within=60)

    run = pyinfra(inventory, "tasks/backup.py",
                  data={"backup_dir": tmp_path, "backup_keep_on_host": "false"})  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"removing {left.name}, left by a backup or fetch that never finished" in run.stderr
    (made,) = tmp_path.iterdir()
    assert made.name.endswith(".dfrbak")


def test_ssh_cut_during_backup_stream(prod, tmp_path):
    host = prod[0]
    before = live_state(host)
    run = while_running(
        prod,
        ["tasks/backup.py", "--data", f"backup_dir={tmp_path}"],
        "tar -C /var/backups/dfr/prod/prod-dfr",
        cut_ssh("tar -C /var/backups/dfr/prod/prod-dfr"),
    )
    assert run.returncode != 0
    assert list(tmp_path.iterdir()) == []  # neither a .dfrbak nor a .partial here
    after = live_state(host)
    # The host's own copy was complete and checked before the stream began: it stays, valid.
    new_copies = set(after.pop("host backups").split()) - set(before.pop("host backups").split())
    for name in new_copies:
        assert host.exec(f"test -s /var/backups/dfr/prod/{name}/manifest.json && echo ok") == "ok"
    assert after == before


def test_filestore_file_changing_while_archived(prod, tmp_path):
    """Odoo writing to an attachment while the backup reads it: the backup cannot hold that
    file's true content, so it fails and says to run it again, and leaves no backup."""
    host = prod[0]
    filestore = "/var/lib/docker/volumes/dfr-prod_odoo-data/_data/filestore/dfr"
    # Large enough that the tar is still reading it when the watcher has found it open.
    growing = f"{filestore}/9f/9f1e0c5b2f0d4b7e8a3c6d2e1f0a9b8c7d6e5f40"
    tar = "'[f]ilestore.list -cf -$'"  # the tar that streams the filestore, not its sizing pass
    before = live_state(host)
    host.exec(f"mkdir -p {filestore}/9f && head -c 300M /dev/urandom >{growing}")
    try:
        run = while_running(
            prod,
            ["tasks/backup.py", "--data", f"backup_dir={tmp_path}"],
            "filestore.list -cf -$",
            f"pid=$(pgrep -f {tar} | head -n1); for i in $(seq 1 3000); do "
            f"ls -l /proc/$pid/fd 2>/dev/null | grep -q 9f1e0c5b && break; sleep 0.01; done; "
            f"kill -STOP $pid; echo 'written meanwhile' >>{growing}; kill -CONT $pid",
        )
    finally:
        host.exec(f"rm -f {growing}; rmdir {filestore}/9f 2>/dev/null || true")
    assert run.returncode != 0
    assert "run the backup again" in run.stderr
    no_complete_backup(tmp_path, host, before["host backups"])
    assert live_state(host) == before


def test_disk_filling_during_backup(prod, tmp_path):
    host = prod[0]
    before = live_state(host)
    restart_pg = (
        "cd /opt/dfr/prod && docker compose -p dfr-prod restart postgres >/dev/null "
        "2>&1 && docker compose -p dfr-prod up -d --wait >/dev/null 2>&1"
    )
    host.exec(
        "mkdir -p /mnt/tiny && mount -t tmpfs -o size=2m tmpfs /mnt/tiny && "
        "cp -a /var/backups/dfr/prod/. /mnt/tiny/ 2>/dev/null; "
        f"mount --bind /mnt/tiny /var/backups/dfr/prod && {restart_pg}"
    )
    try:
        run = pyinfra(prod[1], "tasks/backup.py", data={"backup_dir": tmp_path})
        assert run.returncode != 0
        assert list(tmp_path.iterdir()) == []
        assert host.exec("ls -a /var/backups/dfr/prod | grep -c partial || true") == "0"
    finally:
        host.exec(f"umount /var/backups/dfr/prod; umount /mnt/tiny; {restart_pg}")
    assert live_state(host) == before


def test_scheduled_backup_runs_on_the_host_and_its_failures_are_visible(prod):
    host = prod[0]
    unit = "dfr-backup-prod"
    assert host.exec(f"systemctl is-enabled {unit}.timer") == "enabled"
    assert host.exec(f"systemctl is-active {unit}.timer") == "active"
    newest = "ls -t /var/backups/dfr/prod | grep dfrbak | head -n1"
    before = host.exec(newest)
    host.exec(f"systemctl start {unit}.service")  # a oneshot: returns when the backup is done
    assert host.exec(f"systemctl show -p Result --value {unit}.service") == "success"
    made = host.exec(newest)
    assert made != before
    assert host.exec(f"test -s /var/backups/dfr/prod/{made}/manifest.json && echo ok") == "ok"
    assert "dfr-retention: kept" in host.exec(f"journalctl -u {unit}.service -o cat --no-pager")

    host.exec("docker stop $(docker ps -q -f label=com.docker.compose.service=postgres)")
    try:
        status = host.exec(f"systemctl start {unit}.service; echo $?")
        assert status != "0"
        assert host.exec(f"systemctl show -p Result --value {unit}.service") == "exit-code"
        assert host.exec(f"systemctl is-failed {unit}.service || true") == "failed"
        journal = host.exec(f"journalctl -u {unit}.service -o cat --no-pager")
        assert "ERROR: the postgres container of dfr-prod is not running" in journal
        assert host.exec(newest) == made
    finally:
        stack_up_again(host)
