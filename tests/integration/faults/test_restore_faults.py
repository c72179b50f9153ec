"""Restores under bad input and faults: one clear line, nothing changed or lost; the previous
state kept until the new one is proven."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.harness.pyinfra_run import PROJECT, PYINFRA, pyinfra
from tests.harness.waiting import wait_for
from tests.integration.backups import backups_in
from tests.integration.faults.bed import (
    ODOO_STATUS,
    cut_ssh,
    drop_previous_databases,
    ends,
    flipped,
    live_state,
    rebuilt,
    refused,
    restore,
    sha,
    stack_up_again,
    while_running,
    with_a_large_file,
)
from tests.integration.stack import psql


def test_backup_file_missing(prod, state):
    refused(
        pyinfra(prod[1], "tasks/restore.py", data={"confirm": "prod"}),
        "backup_file is not set: add --data backup_file=PATH",
    )


def test_backup_file_not_found(prod, state, tmp_path):
    refused(restore(prod, tmp_path / "nope.dfrbak"), "not found")


def test_not_a_backup(prod, state, tmp_path):
    junk = tmp_path / "junk.dfrbak"
    junk.write_bytes(b"this is not a backup\n" * 1000)
    refused(restore(prod, junk), "is not a backup")


def test_truncated_backup(prod, state, good_backup, tmp_path):
    cut = tmp_path / "cut.dfrbak"
    cut.write_bytes(good_backup.read_bytes()[: good_backup.stat().st_size // 2])
    refused(restore(prod, cut), "is truncated")


def test_part_whose_sha256_does_not_match(prod, state, good_backup, tmp_path):
    bad = flipped(good_backup, tmp_path / "flipped.dfrbak", "database/toc.dat")
    refused(restore(prod, bad), "database/toc.dat does not match its sha256")
    assert prod[0].exec("ls -A /var/backups/dfr/prod/incoming") == ""  # nothing uploaded


def test_filestore_whose_sha256_does_not_match_is_refused_on_the_host_before_the_swap(
    prod, state, good_backup, tmp_path
):
    """The filestore part is hashed where it arrives, as it is unpacked: one line all the same."""
    bad = flipped(good_backup, tmp_path / "flipped.dfrbak", "filestore.tar")
    run = restore(prod, bad)
    assert run.returncode != 0
    assert "filestore.tar does not match its sha256 in the manifest" in run.stderr
    assert "the live database and filestore were not touched" in run.stderr
    assert "Traceback" not in run.output
    assert prod[0].exec("ls -A /var/backups/dfr/prod/incoming") == ""


def test_manifest_from_another_odoo_major(prod, state, good_backup, tmp_path):
    def older(name, data, manifest):
        manifest["major_version"] = "17.0"
        return data

    bad = rebuilt(good_backup, tmp_path / "odoo17.dfrbak", older)
    refused(restore(prod, bad), "was made by Odoo 17.0, this stack runs Odoo 18.0")


def test_production_restore_without_confirmation(prod, state, good_backup):
    run = pyinfra(prod[1], "tasks/restore.py", data={"backup_file": good_backup})
    refused(run, "add --data confirm=prod to go ahead")


def test_drop_old_is_refused_in_production(prod, state, good_backup):
    refused(restore(prod, good_backup, drop_old=True), "drop_old is refused in production")


def test_a_backup_of_another_environment_goes_into_production_only_when_named(
    prod, good_backup, tmp_path
):
    def made_in_staging(name, data, manifest):
        manifest["environment"] = "staging"
        return data

    host = prod[0]
    from_staging = rebuilt(good_backup, tmp_path / "from-staging.dfrbak", made_in_staging)
    before = live_state(host)
    refused(restore(prod, from_staging), "was made in staging, not production")
    refused(restore(prod, from_staging, confirm_source="dev"), "add --data confirm_source=staging")
    assert live_state(host) == before
    accepted = restore(prod, from_staging, confirm_source="staging")
    assert accepted.returncode == 0, accepted.stderr[-3000:]
    assert live_state(host)["data"] == before["data"]
    assert len(drop_previous_databases(host)) == 1  # the database it replaced, kept
    wait_for("Odoo healthy again", lambda: "(healthy)" in host.exec(ODOO_STATUS), timeout=120)


def test_not_enough_free_disk_on_the_host(prod, state, good_backup):
    host = prod[0]
    host.exec(
        "mkdir -p /mnt/small && mount -t tmpfs -o size=1m tmpfs /mnt/small && "
        "mount --bind /mnt/small /var/backups/dfr/prod"
    )
    try:
        refused(restore(prod, good_backup), "free some space first")
    finally:
        host.exec("umount /var/backups/dfr/prod; umount /mnt/small")


def test_dry_run_of_a_restore_shows_its_plan_and_touches_nothing(
    prod, state, good_backup, tmp_path
):
    elsewhere = tmp_path / "from-elsewhere.dfrbak"  # a name the host keeps no copy of
    shutil.copyfile(good_backup, elsewhere)
    preview = pyinfra(
        prod[1], "tasks/restore.py", "--dry", execute=False, json_output=False,
        data={"backup_file": elsewhere, "confirm": "prod"},
    )  # fmt: skip
    assert preview.returncode == 0, preview.stderr[-3000:]
    assert "Upload from-elsewhere.dfrbak" in preview.output
    assert "and restore it into a new database as it arrives" in preview.output
    assert prod[0].exec("ls -A /var/backups/dfr/prod/incoming") == ""


def test_pg_restore_failing_half_way_leaves_the_live_database(prod, state, good_backup, tmp_path):
    def corrupt(name, data, manifest):
        if name.startswith("database/") and name.endswith(".dat.zst") and len(data) > 1000:
            data = data[: len(data) // 2] + b"\0" * (len(data) - len(data) // 2)
            manifest["files"][name] = {"size": len(data), "sha256": sha(data)}
        return data

    bad = rebuilt(good_backup, tmp_path / "corrupt.dfrbak", corrupt)
    run = restore(prod, bad)
    assert run.returncode != 0
    assert "the live database and filestore were not touched" in run.stderr
    assert "Traceback" not in run.output
    assert "dfr_restore_" not in psql(
        prod[0], "SELECT string_agg(datname, ',') FROM pg_database", db="postgres"
    )


def test_ssh_cut_during_restore_upload(prod, state, good_backup, tmp_path):
    elsewhere = tmp_path / "from-elsewhere.dfrbak"  # not a copy the host keeps: uploaded
    elsewhere.write_bytes(good_backup.read_bytes())
    run = while_running(
        prod,
        ["tasks/restore.py", "--data", f"backup_file={elsewhere}", "--data", "confirm=prod"],
        "incoming/",
        cut_ssh("tar -x --no-same-owner -C /var/backups"),
    )
    assert run.returncode != 0
    # Nothing of the upload (its sudo, shell, dd and tar) runs on without its operator.
    ends(prod[0], "dfr-restore", within=60, context=run.stderr)
    complete = prod[0].exec("ls /var/backups/dfr/prod/incoming | grep -v partial || true")
    assert complete == ""


def test_ssh_cut_while_the_uploaded_filestore_arrives_during_the_restore(
    prod, state, good_backup, tmp_path
):
    """The database part is up and the host's restore is unpacking the filestore as it
    arrives when the connection drops: the restore, left without its operator and with a
    truncated filestore, still cleans up (the state fixture checks the rest)."""
    host = prod[0]
    elsewhere = rebuilt(good_backup, tmp_path / "from-elsewhere.dfrbak", with_a_large_file)
    filestore_tar = "tar -x --no-same-owner -C /var/lib/docker/volumes"
    run = while_running(
        prod,
        ["tasks/restore.py", "--data", f"backup_file={elsewhere}", "--data", "confirm=prod"],
        filestore_tar,
        cut_ssh(filestore_tar),
    )
    assert run.returncode != 0
    ends(host, "dfr-restore", within=60, context=run.stderr)
    assert host.exec("ls -A /var/backups/dfr/prod/incoming") == ""


def test_ssh_cut_once_the_upload_is_done_lets_the_host_finish_the_restore(prod, tmp_path):
    """The whole backup has arrived and pg_restore runs when the connection drops: the restore
    goes on without its operator, swaps the backup in and brings Odoo up healthy on it."""
    host = prod[0]
    # No copy on the host: its retention would prune the module's good_backup's copy.
    made = pyinfra(
        prod[1], "tasks/backup.py",
        data={"backup_dir": tmp_path / "made", "backup_keep_on_host": "false"},
    )  # fmt: skip
    assert made.returncode == 0, made.stderr[-3000:]
    (backup,) = backups_in(tmp_path / "made")
    backed_up = live_state(host)
    psql(host, "UPDATE farmer SET name = 'changed after the backup'")
    elsewhere = tmp_path / "from-elsewhere.dfrbak"  # not the host's copy: uploaded
    shutil.copyfile(backup, elsewhere)
    filestore_tar = "'[t]ar -x --no-same-owner -C /var/lib/docker/volumes'"
    run = while_running(
        prod,
        ["tasks/restore.py", "--data", f"backup_file={elsewhere}", "--data", "confirm=prod"],
        "pg_restore -U",
        f"sleep 0.3; while pgrep -f {filestore_tar} >/dev/null; do sleep 0.01; done; "
        "pkill -f '[s]shd: dfr'",
    )
    assert run.returncode != 0  # the operator's run lost its host
    ends(host, "dfr-restore", within=120, context=run.stderr)
    # Docker's own healthcheck runs every 10 s: until its first run it says "starting".
    host.exec(f"for i in $(seq 1 60); do {ODOO_STATUS} | grep -q '(healthy)' && exit 0; "
              "sleep 1; done; exit 1")  # fmt: skip
    after = live_state(host)
    databases = set(after.pop("databases").split(",")) - set(backed_up.pop("databases").split(","))
    assert after.pop("host backups").split() == backed_up.pop("host backups").split()
    assert after == backed_up  # the backup's data, served by a healthy Odoo
    (previous,) = databases  # the data from before the restore, kept
    assert previous.startswith("dfr_old_")
    assert psql(host, "SELECT DISTINCT name FROM farmer", db=previous) == "changed after the backup"
    assert host.exec("ls -A /var/backups/dfr/prod/incoming") == ""
    psql(host, f'DROP DATABASE "{previous}"', db="postgres")
    host.exec(f"rm -rf /var/lib/docker/volumes/dfr-prod_odoo-data/_data/filestore/{previous}")


def test_host_copy_that_rotted_is_refused_before_the_swap(prod, state, good_backup):
    host = prod[0]
    part = f"/var/backups/dfr/prod/{good_backup.name}/filestore.tar"
    host.exec(f"cp {part} /tmp/part.good && printf x | dd of={part} bs=1 seek=1000 "
              "conv=notrunc status=none")  # fmt: skip
    try:
        run = restore(prod, good_backup)
        assert run.returncode != 0
        assert "from the copy the host kept of it" in run.output
        assert "filestore.tar does not match its sha256 in the manifest" in run.stderr
        assert "the live database and filestore were not touched" in run.stderr
    finally:
        host.exec(f"cp /tmp/part.good {part}")


def test_odoo_failing_on_the_restored_data_puts_the_previous_state_back(prod, tmp_path):
    """A backup on which Odoo does not come up (the test double's boot-failure hook travels in
    its filestore): the restore must undo the swap and leave Odoo serving the previous data."""
    host = prod[0]
    filestore = "/var/lib/docker/volumes/dfr-prod_odoo-data/_data/filestore"
    marker = f"{filestore}/dfr/.dfr-test-double-fails-to-boot"
    host.exec(f"touch {marker}")
    try:
        made = pyinfra(prod[1], "tasks/backup.py", data={"backup_dir": tmp_path})
    finally:
        host.exec(f"rm -f {marker}")
    assert made.returncode == 0, made.stderr[-3000:]
    (broken,) = backups_in(tmp_path)
    psql(host, "UPDATE farmer SET name = 'changed after the backup'")  # what must come back
    before = live_state(host)

    run = restore(prod, broken, restore_health_timeout=10)
    assert run.returncode != 0
    assert "Odoo did not come up serving the restored database dfr" in run.stderr
    assert "restore rolled back" in run.stderr
    after = live_state(host)
    databases = set(after.pop("databases").split(",")) - set(before.pop("databases").split(","))
    assert after == before  # the previous data and filestore, served by a healthy Odoo
    (restored,) = databases  # the restored copy, kept for inspection
    assert restored.startswith("dfr_restore_")
    psql(host, f'DROP DATABASE "{restored}"', db="postgres")
    host.exec(f"rm -rf {filestore}/{restored} /var/backups/dfr/prod/{broken.name}")


FILESTORES = "/var/lib/docker/volumes/dfr-prod_odoo-data/_data/filestore"
POSTGRES = "$(docker ps -q --filter label=com.docker.compose.service=postgres)"


@pytest.fixture(scope="module")
def unservable_backup(prod, tmp_path_factory) -> Path:
    """A backup whose database passes every check made before the swap, but whose registry
    Odoo cannot load: a table it reads at load (ir_model) is missing. Odoo runs on it and
    answers /web/health; it serves no page of that database."""
    host = prod[0]
    directory = tmp_path_factory.mktemp("unservable")
    psql(host, "ALTER TABLE ir_model RENAME TO ir_model_gone")
    try:
        made = pyinfra(prod[1], "tasks/backup.py",
                       data={"backup_dir": directory, "backup_keep_on_host": "false"})  # fmt: skip
    finally:
        psql(host, "ALTER TABLE ir_model_gone RENAME TO ir_model")
    assert made.returncode == 0, made.stderr[-3000:]
    (backup,) = backups_in(directory)
    return backup


def test_a_restored_database_odoo_does_not_serve_is_rolled_back_though_its_health_answers(
    prod, unservable_backup
):
    host = prod[0]
    before = live_state(host)
    run = restore(prod, unservable_backup, restore_health_timeout=10)
    assert run.returncode != 0
    assert "Odoo's /web/login answered 302, not 200, within 10s" in run.stderr, run.stderr[-3000:]
    assert "Odoo did not come up serving the restored database dfr" in run.stderr
    assert "restore rolled back" in run.stderr
    after = live_state(host)
    databases = set(after.pop("databases").split(",")) - set(before.pop("databases").split(","))
    assert after == before  # the previous data and filestore, served by a healthy Odoo
    (restored,) = databases  # the restored copy, kept for inspection: the unservable one
    assert psql(host, "SELECT count(*) FROM pg_tables WHERE tablename = 'ir_model'",
                db=restored) == "0"  # fmt: skip
    psql(host, f'DROP DATABASE "{restored}"', db="postgres")
    host.exec(f"rm -rf {FILESTORES}/{restored}")


def test_a_rollback_that_cannot_put_the_database_back_fails_loudly_saying_what_to_do(
    prod, unservable_backup
):
    """Once the restored copy is swapped in, a session holds it open (an operator's psql,
    say): the rollback cannot rename it away. The restore must not claim it rolled back: it
    says where the host stands and what to do, and leaves Odoo stopped."""
    host = prod[0]
    before = live_state(host)
    swapped = "SELECT count(*) FROM pg_database WHERE datname LIKE 'dfr_old_%'"
    in_postgres = f"docker exec {POSTGRES} psql -U postgres -tA"
    hold = (
        f'for i in $(seq 1 3000); do [ "$({in_postgres} -d postgres -c "{swapped}")" = 1 ] '
        f"&& break; sleep 0.05; done; {in_postgres} -d dfr -c 'SELECT pg_sleep(300)' >/dev/null"
    )
    try:
        run = while_running(
            prod,
            ["tasks/restore.py", "--data", f"backup_file={unservable_backup}", "--data",
             "confirm=prod", "--data", "restore_health_timeout=10"],
            "dfr-restore",
            hold,
        )  # fmt: skip
    finally:
        # What the message asks for first, done by hand: let go of the restored database.
        holding = psql(host, "SELECT count(*) FROM pg_stat_activity WHERE datname = 'dfr' "
                             "AND query LIKE '%pg_sleep(300)%'", db="postgres")  # fmt: skip
        psql(host, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                   "WHERE query LIKE '%pg_sleep(300)%' AND pid <> pg_backend_pid()",
             db="postgres")  # fmt: skip
    assert holding == "1"  # the fault was in place when the restore ended
    old = psql(host, "SELECT datname FROM pg_database WHERE datname LIKE 'dfr_old_%'",
               db="postgres")  # fmt: skip
    restored = old.replace("_old_", "_restore_")
    assert run.returncode != 0
    assert (
        "ROLLBACK FAILED, the host needs a hand: renaming the databases back failed (above); "
        f"Odoo is stopped; database dfr is the restored one, the previous is {old}: rename "
        f"database dfr to {restored} and {old} to dfr; in {FILESTORES}, move the restored "
        f"filestore to {restored} and {old} (if there) to dfr, then start Odoo "
        "(cd /opt/dfr/prod && docker compose -p dfr-prod up -d odoo)" in run.stderr
    ), run.stderr[-3000:]
    assert "restore rolled back" not in run.stderr
    assert host.exec(ODOO_STATUS) == ""  # stopped: it must not serve the data it failed on

    # The rest of what the message says to do, by hand.
    psql(host, f'ALTER DATABASE dfr RENAME TO "{restored}"', db="postgres")
    psql(host, f'ALTER DATABASE "{old}" RENAME TO dfr', db="postgres")
    host.exec(f"cd {FILESTORES} && mv dfr {restored} && mv {old} dfr")
    stack_up_again(host)
    after = live_state(host)
    databases = set(after.pop("databases").split(",")) - set(before.pop("databases").split(","))
    assert after == before
    assert databases == {restored}
    psql(host, f'DROP DATABASE "{restored}"', db="postgres")
    host.exec(f"rm -rf {FILESTORES}/{restored}")


def test_a_restore_reads_backups_mounted_read_only_and_restores_as_postgres_never_root(
    prod, good_backup
):
    """PostgreSQL sees the backups read-only (but for .dumping, where pg_dump writes while a
    backup is made): nothing in its container can change a backup. pg_restore runs there as
    its postgres user, reading the dump, which is that user's; the rest is root's alone."""
    host = prod[0]
    mounts = json.loads(host.exec(f"docker inspect -f '{{{{json .Mounts}}}}' {POSTGRES}"))
    assert {m["Destination"]: m["RW"] for m in mounts if m["Destination"].startswith("/backups")
            } == {"/backups": False, "/backups/.dumping": True}  # fmt: skip
    planted = host.exec(f"docker exec -u 0 {POSTGRES} touch /backups/planted 2>&1", check=False)
    assert "Read-only file system" in planted
    postgres_uid = host.exec(f"docker exec {POSTGRES} id -u postgres")
    name = host.exec("/opt/dfr/prod/bin/dfr-backup create 2>/dev/null").split()[0]
    try:
        modes = host.exec(
            f"cd /var/backups/dfr/prod/{name} && "
            "stat -c '%n %a %u' . database database/toc.dat filestore.tar manifest.json"
        )
    finally:
        host.exec(f"/opt/dfr/prod/bin/dfr-backup remove {name}")
    assert modes.splitlines() == [
        ". 711 0",
        f"database 700 {postgres_uid}",
        f"database/toc.dat 600 {postgres_uid}",
        "filestore.tar 600 0",
        "manifest.json 600 0",
    ]

    # pg_restore as postgres, whether the backup is uploaded or the host still keeps its copy.
    run = while_running(
        prod,
        ["tasks/restore.py", "--data", f"backup_file={good_backup}", "--data", "confirm=prod"],
        "pg_restore -U",
        # The uid of every pg_restore process seen, until they are gone.
        "rm -f /tmp/pg_restore.uids; seen=0; for i in $(seq 1 3000); do "
        'uids=$(ps -C pg_restore -o uid=); if [ -n "$uids" ]; then seen=1; '
        'echo "$uids" >>/tmp/pg_restore.uids; elif [ $seen = 1 ]; then break; fi; sleep 0.01; done',
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert set(host.exec("cat /tmp/pg_restore.uids").split()) == {postgres_uid}
    assert len(drop_previous_databases(host)) == 1


def test_restore_while_an_odoo_one_off_container_runs(prod, good_backup):
    """An operator's `docker compose run odoo …` (a shell, say) carries Odoo's service label:
    the restore stops, swaps and health-checks the service's container, and leaves that one be."""
    host = prod[0]
    one_off = "dfr-prod-odoo-operator-shell"
    host.exec(f"cd /opt/dfr/prod && docker compose -p dfr-prod run -d --no-deps --name {one_off} "
              "odoo sleep 600 >/dev/null")  # fmt: skip
    psql(host, "UPDATE farmer SET name = 'changed after the backup'")  # what the restore undoes
    try:
        run = restore(prod, good_backup, restore_health_timeout=30)
        assert run.returncode == 0, run.stderr[-3000:]
        assert host.exec(f"docker inspect -f '{{{{.State.Running}}}}' {one_off}") == "true"
    finally:
        host.exec(f"docker rm -f {one_off} >/dev/null")
    assert psql(host, "SELECT count(*) FROM farmer WHERE name = 'changed after the backup'") == "0"
    (old,) = psql(host, "SELECT datname FROM pg_database WHERE datname LIKE 'dfr_old_%'",
                  db="postgres").split()  # fmt: skip
    psql(host, f'DROP DATABASE "{old}"', db="postgres")
    host.exec(f"rm -rf /var/lib/docker/volumes/dfr-prod_odoo-data/_data/filestore/{old}")


def test_one_restore_at_a_time_and_uploads_left_behind_are_removed(prod, good_backup, tmp_path):
    """A second restore while one runs is refused in one line before anything of it is
    uploaded, even of a backup of the same name (whose upload would replace the first's); the
    first completes, and removes what an earlier upload cut short left in incoming/."""
    host = prod[0]
    left = "/var/backups/dfr/prod/incoming/cut-short.dfrbak.partial"  # as a cut upload leaves it
    host.exec(f"mkdir -p {left}/database && head -c 1048576 /dev/urandom >{left}/database/1.dat")
    first, second = tmp_path / "1" / "b.dfrbak", tmp_path / "2" / "b.dfrbak"  # uploaded, both
    for copy in first, second:
        copy.parent.mkdir()
        shutil.copyfile(good_backup, copy)
    restoring = subprocess.Popen(
        [str(PYINFRA), "-y", str(prod[1]), "tasks/restore.py", "--data", f"backup_file={first}",
         "--data", "confirm=prod"],
        cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # The first stays busy meanwhile: frozen as soon as its pg_restore runs.
        host.exec("for i in $(seq 1 6000); do pkill -STOP -f '^pg_restore -U' && exit 0; "
                  "sleep 0.01; done; exit 1")  # fmt: skip
        try:
            refused = restore(prod, second)
        finally:
            host.exec("pkill -CONT -f '^pg_restore -U'")
    finally:
        _, stderr = restoring.communicate(timeout=600)
    assert restoring.returncode == 0, stderr[-3000:]  # Odoo healthy through nginx on it
    assert refused.returncode != 0
    # Refused by the environment's deploy lock, before dfr-restore's own lock is reached.
    assert "the prod deploy lock is held by" in refused.stderr, refused.stderr[-3000:]
    assert "running tasks/restore.py" in refused.stderr
    assert (
        "removing incoming/cut-short.dfrbak.partial, left by an upload or restore that never "
        "finished" in stderr
    )
    assert host.exec("ls -A /var/backups/dfr/prod/incoming") == ""
    assert len(drop_previous_databases(host)) == 1  # the first's: production keeps it
    assert psql(host, "SELECT count(*) FROM pg_database WHERE datname ~ '^dfr_(old|restore)_'",
                db="postgres") == "0"  # fmt: skip


@pytest.mark.parametrize("size", ["5x", "", "-1"])
def test_an_upload_size_that_is_not_a_number_is_refused_before_anything_arrives(prod, size):
    """dfr-restore --upload=BYTES reads exactly BYTES from its stdin: anything but a number is
    refused in one line before the lock is taken or anything of incoming/ is touched."""
    host = prod[0]
    incoming = "/var/backups/dfr/prod/incoming"
    host.exec(f"mkdir -p {incoming}/kept.dfrbak && echo data >{incoming}/kept.dfrbak/part")
    try:
        out = host.exec(f"/opt/dfr/prod/bin/dfr-restore incoming/x.dfrbak --upload={size} "
                        "</dev/null 2>&1; echo exit=$?")  # fmt: skip
        assert f"ERROR: --upload=BYTES takes a number of bytes, not '{size}'" in out, out
        assert out.endswith("exit=1"), out
        assert host.exec(f"ls -A {incoming}") == "kept.dfrbak"
        assert host.exec(f"cat {incoming}/kept.dfrbak/part") == "data"
    finally:
        host.exec(f"rm -rf {incoming}/kept.dfrbak")


@pytest.fixture(scope="module")
def odoo_zip(prod, tmp_path_factory) -> Path:
    """A zip in the format of Odoo's database manager, made from the production host."""
    directory = tmp_path_factory.mktemp("zip")
    run = pyinfra(prod[1], "tasks/backup.py", data={"backup_dir": directory, "format": "odoo-zip"})
    assert run.returncode == 0, run.stderr[-3000:]
    (export,) = [p for p in backups_in(directory) if p.suffix == ".zip"]
    return export


# psql meta-commands a dump.sql from a customer, a partner or a download may carry: each would
# run in psql's process (a shell, a program, a file written), next to PGDATA.
META_COMMANDS = {
    "shell": (b"", b"\\! touch /tmp/pwned\n"),
    "query output piped to a program": (b"", b"SELECT 1 \\g |touch /tmp/pwned\n"),
    "output to a program": (b"", b"\\o |touch /tmp/pwned\nSELECT 1;\n"),
    "client-side copy to a program": (b"", b"\\copy (SELECT 1) TO PROGRAM 'touch /tmp/pwned'\n"),
    "environment": (b"", b"\\setenv PAGER 'touch /tmp/pwned'\n"),
    "the dump lifting its own restriction": (
        b"\\restrict K9\n",
        b"\\unrestrict K9\n\\! touch /tmp/pwned\n",
    ),
}


@pytest.mark.parametrize("spelling", META_COMMANDS)
def test_a_zip_whose_dump_holds_psql_meta_commands_is_refused_and_runs_none(
    prod, state, odoo_zip, tmp_path, spelling
):
    header, payload = META_COMMANDS[spelling]
    hostile = tmp_path / "hostile.zip"
    with zipfile.ZipFile(odoo_zip) as source, zipfile.ZipFile(hostile, "w") as out:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "dump.sql":
                data = header + payload + data
            out.writestr(item, data)
    run = restore(prod, hostile)
    assert run.returncode != 0
    assert "holds a psql meta-command" in run.stderr, run.stderr[-2000:]
    assert "Traceback" not in run.output
    host = prod[0]
    for service in ("postgres", "odoo"):
        container = f"$(docker ps -q --filter label=com.docker.compose.service={service})"
        assert (
            host.exec(f"docker exec {container} ls /tmp", check=False).split().count("pwned") == 0
        ), service
