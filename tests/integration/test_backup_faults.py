"""Backups and restores under bad input and faults: one clear line, nothing changed or lost,
no backup that looks complete."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import shutil
import signal
import subprocess
import tarfile
from pathlib import Path

import pytest

from tasks.archive import manifest_bytes
from tests.harness.docker_cli import docker
from tests.harness.hosts import HostPool, TargetHost
from tests.harness.images import docker_ready_image
from tests.harness.pyinfra_run import PROJECT, PYINFRA, pyinfra
from tests.integration.backups import add_file, backups_in, fingerprint, seed
from tests.integration.stack import psql, stack_inventory

# Enough data that a dump and a transfer take a few seconds: room to pull the plug mid-way.
BIG_TABLE = """
CREATE TABLE bulk (id serial PRIMARY KEY, payload text);
INSERT INTO bulk (payload)
SELECT string_agg(md5(i::text || '-' || j::text), '') FROM generate_series(1, 60000) AS i,
       generate_series(1, 128) AS j GROUP BY i;
"""


@pytest.fixture(scope="module")
def prod(start_hosts, pool: HostPool, base_images, distro_docker_data) -> tuple[TargetHost, Path]:
    (host,) = start_hosts(docker_ready_image(), prefix="fault")
    inventory = stack_inventory(pool, [host], "prod", base_images, distro_docker_data)
    run = pyinfra(inventory, "deploy.py")
    assert run.returncode == 0, run.stderr[-3000:]
    seed(host, f"{host.name}.prod.dfr.test")
    psql(host, BIG_TABLE, user="dfr")
    return host, inventory


@pytest.fixture(scope="module")
def good_backup(prod, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("good")
    run = pyinfra(prod[1], "tasks/backup.py", data={"backup_dir": directory})
    assert run.returncode == 0, run.stderr[-3000:]
    (archive,) = backups_in(directory)
    return archive


@pytest.fixture
def state(prod):
    """The live state before a test; the test asserts it is unchanged afterwards."""
    host = prod[0]
    before = _live_state(host)
    yield before
    assert _live_state(host) == before


ODOO_STATUS = "docker ps --filter label=com.docker.compose.service=odoo --format '{{.Status}}'"


def _live_state(host: TargetHost) -> dict:
    return {
        "data": fingerprint(host),
        "databases": psql(
            host, "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database", db="postgres"
        ),
        "odoo healthy": "(healthy)" in host.exec(ODOO_STATUS),
        "host backups": _host_backups(host),
    }


def _host_backups(host: TargetHost) -> str:
    """The names in the host's backup directory (complete or not), uploads aside."""
    return host.exec("ls /var/backups/dfr/prod | grep -v incoming || true")


def _ends(host: TargetHost, tool: str, within: int, context: str = "") -> None:
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


def _refused(run, message: str) -> None:
    assert run.returncode != 0
    error = run.last_error_line()
    assert error.startswith("--> pyinfra error"), run.stderr[-2000:]
    assert message in error, error
    assert "Traceback" not in run.output


def _rebuilt(source: Path, dest: Path, change) -> Path:
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


def _restore(prod, backup_file, **data):
    return pyinfra(
        prod[1], "tasks/restore.py", data={"backup_file": backup_file, "confirm": "prod", **data}
    )


def test_backup_file_missing(prod, state):
    _refused(
        pyinfra(prod[1], "tasks/restore.py", data={"confirm": "prod"}),
        "backup_file is not set: add --data backup_file=PATH",
    )


def test_backup_file_not_found(prod, state, tmp_path):
    _refused(_restore(prod, tmp_path / "nope.dfrbak"), "not found")


def test_not_a_backup(prod, state, tmp_path):
    junk = tmp_path / "junk.dfrbak"
    junk.write_bytes(b"this is not a backup\n" * 1000)
    _refused(_restore(prod, junk), "is not a backup")


def test_truncated_backup(prod, state, good_backup, tmp_path):
    cut = tmp_path / "cut.dfrbak"
    cut.write_bytes(good_backup.read_bytes()[: good_backup.stat().st_size // 2])
    _refused(_restore(prod, cut), "is truncated")


def _flipped(good_backup: Path, dest: Path, part: str) -> Path:
    def flip(name, data, manifest):
        return data[:-1] + bytes([data[-1] ^ 1]) if name == part else data

    return _rebuilt(good_backup, dest, flip)


def test_part_whose_sha256_does_not_match(prod, state, good_backup, tmp_path):
    bad = _flipped(good_backup, tmp_path / "flipped.dfrbak", "database/toc.dat")
    _refused(_restore(prod, bad), "database/toc.dat does not match its sha256")
    assert prod[0].exec("ls -A /var/backups/dfr/prod/incoming") == ""  # nothing uploaded


def test_filestore_whose_sha256_does_not_match_is_refused_on_the_host_before_the_swap(
    prod, state, good_backup, tmp_path
):
    """The filestore part is hashed where it arrives, as it is unpacked: one line all the same."""
    bad = _flipped(good_backup, tmp_path / "flipped.dfrbak", "filestore.tar")
    run = _restore(prod, bad)
    assert run.returncode != 0
    assert "filestore.tar does not match its sha256 in the manifest" in run.stderr
    assert "the live database and filestore were not touched" in run.stderr
    assert "Traceback" not in run.output
    assert prod[0].exec("ls -A /var/backups/dfr/prod/incoming") == ""


def test_manifest_from_another_odoo_major(prod, state, good_backup, tmp_path):
    def older(name, data, manifest):
        manifest["major_version"] = "17.0"
        return data

    bad = _rebuilt(good_backup, tmp_path / "odoo17.dfrbak", older)
    _refused(_restore(prod, bad), "was made by Odoo 17.0, this stack runs Odoo 18.0")


def test_production_restore_without_confirmation(prod, state, good_backup):
    run = pyinfra(prod[1], "tasks/restore.py", data={"backup_file": good_backup})
    _refused(run, "add --data confirm=prod to go ahead")


def test_not_enough_free_disk_on_the_host(prod, state, good_backup):
    host = prod[0]
    host.exec(
        "mkdir -p /mnt/small && mount -t tmpfs -o size=1m tmpfs /mnt/small && "
        "mount --bind /mnt/small /var/backups/dfr/prod"
    )
    try:
        _refused(_restore(prod, good_backup), "free some space first")
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
            manifest["files"][name] = {"size": len(data), "sha256": _sha(data)}
        return data

    bad = _rebuilt(good_backup, tmp_path / "corrupt.dfrbak", corrupt)
    run = _restore(prod, bad)
    assert run.returncode != 0
    assert "the live database and filestore were not touched" in run.stderr
    assert "Traceback" not in run.output
    assert "dfr_restore_" not in psql(
        prod[0], "SELECT string_agg(datname, ',') FROM pg_database", db="postgres"
    )


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _while_running(
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


def _no_complete_backup(directory: Path, host: TargetHost, before: str) -> None:
    assert list(directory.iterdir()) == []
    assert _host_backups(host) == before


KILL_POSTGRES = "docker kill $(docker ps -q -f label=com.docker.compose.service=postgres)"


def _cut_ssh(command: str) -> str:
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


def test_postgres_killed_during_backup(prod, tmp_path):
    host = prod[0]
    before = _live_state(host)
    run = _while_running(
        prod,
        ["tasks/backup.py", "--data", f"backup_dir={tmp_path}"],
        "pg_dump -d dfr",
        KILL_POSTGRES,
    )
    assert run.returncode != 0
    _no_complete_backup(tmp_path, host, before["host backups"])
    host.exec("cd /opt/dfr/prod && docker compose -p dfr-prod up -d --wait >/dev/null 2>&1")
    assert _live_state(host) == before


def test_backup_killed_outright_leaves_its_partial_to_the_next_backup(prod, state, tmp_path):
    """dfr-backup killed past its EXIT trap (kill -9, the OOM killer) cannot clean up: what it
    started still ends by itself (the flush loop too) and only its NAME.partial is left, which
    the next backup removes, saying so to the operator."""
    host = prod[0]
    docker("exec", "-d", host.container, "/opt/dfr/prod/bin/dfr-backup", "create")
    host.exec("for i in $(seq 1 600); do pgrep -f '[p]g_dump -d dfr' >/dev/null && exit 0; "
              "sleep 0.02; done; exit 1")  # fmt: skip
    host.exec("pkill -KILL -o -f '[d]fr-backup create'")
    _ends(host, "dfr-backup", within=60)
    _ends(host, "pg_dump", within=60)  # it holds the lock until it has written its dump
    (partial,) = set(_host_backups(host).split()) - set(state["host backups"].split())
    assert partial.endswith(".partial")
    # No copy on the host: its retention would prune the module's good_backup's copy.
    run = pyinfra(prod[1], "tasks/backup.py",
                  data={"backup_dir": tmp_path, "backup_keep_on_host": "false"})  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"removing {partial}, left by a backup that never finished" in run.stderr
    assert len(backups_in(tmp_path)) == 1
    assert _host_backups(host) == state["host backups"]  # the partial is gone


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
    _ends(host, "dfr-backup", within=60)
    (made,) = set(_host_backups(host).split()) - set(state["host backups"].split())
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
    _ends(host, "dfr-backup", within=60)
    _ends(host, "pg_dump", within=60)

    run = pyinfra(inventory, "tasks/backup.py",
                  data={"backup_dir": tmp_path, "backup_keep_on_host": "false"})  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"removing {left.name}, left by a backup or fetch that never finished" in run.stderr
    (made,) = tmp_path.iterdir()
    assert made.name.endswith(".dfrbak")


def test_ssh_cut_during_backup_stream(prod, tmp_path):
    host = prod[0]
    before = _live_state(host)
    run = _while_running(
        prod,
        ["tasks/backup.py", "--data", f"backup_dir={tmp_path}"],
        "tar -C /var/backups/dfr/prod/prod-dfr",
        _cut_ssh("tar -C /var/backups/dfr/prod/prod-dfr"),
    )
    assert run.returncode != 0
    assert list(tmp_path.iterdir()) == []  # neither a .dfrbak nor a .partial here
    after = _live_state(host)
    # The host's own copy was complete and checked before the stream began: it stays, valid.
    new_copies = set(after.pop("host backups").split()) - set(before.pop("host backups").split())
    for name in new_copies:
        assert host.exec(f"test -s /var/backups/dfr/prod/{name}/manifest.json && echo ok") == "ok"
    assert after == before


def test_ssh_cut_during_restore_upload(prod, state, good_backup, tmp_path):
    elsewhere = tmp_path / "from-elsewhere.dfrbak"  # not a copy the host keeps: uploaded
    elsewhere.write_bytes(good_backup.read_bytes())
    run = _while_running(
        prod,
        ["tasks/restore.py", "--data", f"backup_file={elsewhere}", "--data", "confirm=prod"],
        "incoming/",
        _cut_ssh("tar -x --no-same-owner -C /var/backups"),
    )
    assert run.returncode != 0
    # Nothing of the upload (its sudo, shell, dd and tar) runs on without its operator.
    _ends(prod[0], "dfr-restore", within=60, context=run.stderr)
    complete = prod[0].exec("ls /var/backups/dfr/prod/incoming | grep -v partial || true")
    assert complete == ""


def test_ssh_cut_while_the_uploaded_filestore_arrives_during_the_restore(
    prod, state, good_backup, tmp_path
):
    """The database part is up and the host's restore is unpacking the filestore as it
    arrives when the connection drops: the restore, left without its operator and with a
    truncated filestore, still cleans up (the state fixture checks the rest)."""
    host = prod[0]
    elsewhere = _rebuilt(good_backup, tmp_path / "from-elsewhere.dfrbak", _with_a_large_file)
    filestore_tar = "tar -x --no-same-owner -C /var/lib/docker/volumes"
    run = _while_running(
        prod,
        ["tasks/restore.py", "--data", f"backup_file={elsewhere}", "--data", "confirm=prod"],
        filestore_tar,
        _cut_ssh(filestore_tar),
    )
    assert run.returncode != 0
    _ends(host, "dfr-restore", within=60, context=run.stderr)
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
    backed_up = _live_state(host)
    psql(host, "UPDATE farmer SET name = 'changed after the backup'")
    elsewhere = tmp_path / "from-elsewhere.dfrbak"  # not the host's copy: uploaded
    shutil.copyfile(backup, elsewhere)
    filestore_tar = "'[t]ar -x --no-same-owner -C /var/lib/docker/volumes'"
    run = _while_running(
        prod,
        ["tasks/restore.py", "--data", f"backup_file={elsewhere}", "--data", "confirm=prod"],
        "pg_restore -U",
        f"sleep 0.3; while pgrep -f {filestore_tar} >/dev/null; do sleep 0.01; done; "
        "pkill -f '[s]shd: dfr'",
    )
    assert run.returncode != 0  # the operator's run lost its host
    _ends(host, "dfr-restore", within=120, context=run.stderr)
    # Docker's own healthcheck runs every 10 s: until its first run it says "starting".
    host.exec(f"for i in $(seq 1 60); do {ODOO_STATUS} | grep -q '(healthy)' && exit 0; "
              "sleep 1; done; exit 1")  # fmt: skip
    after = _live_state(host)
    databases = set(after.pop("databases").split(",")) - set(backed_up.pop("databases").split(","))
    assert after.pop("host backups").split() == backed_up.pop("host backups").split()
    assert after == backed_up  # the backup's data, served by a healthy Odoo
    (previous,) = databases  # the data from before the restore, kept
    assert previous.startswith("dfr_old_")
    assert psql(host, "SELECT DISTINCT name FROM farmer", db=previous) == "changed after the backup"
    assert host.exec("ls -A /var/backups/dfr/prod/incoming") == ""
    psql(host, f'DROP DATABASE "{previous}"', db="postgres")
    host.exec(f"rm -rf /var/lib/docker/volumes/dfr-prod_odoo-data/_data/filestore/{previous}")


def _with_a_large_file(name: str, data: bytes, manifest: dict) -> bytes:
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
    manifest["files"][name] = {"size": grown.tell(), "sha256": _sha(grown.getvalue())}
    return grown.getvalue()


def test_host_copy_that_rotted_is_refused_before_the_swap(prod, state, good_backup):
    host = prod[0]
    part = f"/var/backups/dfr/prod/{good_backup.name}/filestore.tar"
    host.exec(f"cp {part} /tmp/part.good && printf x | dd of={part} bs=1 seek=1000 "
              "conv=notrunc status=none")  # fmt: skip
    try:
        run = _restore(prod, good_backup)
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
    before = _live_state(host)

    run = _restore(prod, broken, restore_health_timeout=10)
    assert run.returncode != 0
    assert "Odoo did not come up healthy on the restored data" in run.stderr
    assert "restore rolled back" in run.stderr
    after = _live_state(host)
    databases = set(after.pop("databases").split(",")) - set(before.pop("databases").split(","))
    assert after == before  # the previous data and filestore, served by a healthy Odoo
    (restored,) = databases  # the restored copy, kept for inspection
    assert restored.startswith("dfr_restore_")
    psql(host, f'DROP DATABASE "{restored}"', db="postgres")
    host.exec(f"rm -rf {filestore}/{restored} /var/backups/dfr/prod/{broken.name}")


def test_filestore_file_changing_while_archived(prod, tmp_path):
    """Odoo writing to an attachment while the backup reads it: the backup cannot hold that
    file's true content, so it fails and says to run it again, and leaves no backup."""
    host = prod[0]
    filestore = "/var/lib/docker/volumes/dfr-prod_odoo-data/_data/filestore/dfr"
    # Large enough that the tar is still reading it when the watcher has found it open.
    growing = f"{filestore}/9f/9f1e0c5b2f0d4b7e8a3c6d2e1f0a9b8c7d6e5f40"
    tar = "'[f]ilestore.list -cf -$'"  # the tar that streams the filestore, not its sizing pass
    before = _live_state(host)
    host.exec(f"mkdir -p {filestore}/9f && head -c 300M /dev/urandom >{growing}")
    try:
        run = _while_running(
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
    _no_complete_backup(tmp_path, host, before["host backups"])
    assert _live_state(host) == before


def test_disk_filling_during_backup(prod, tmp_path):
    host = prod[0]
    before = _live_state(host)
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
    assert _live_state(host) == before


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
        host.exec("cd /opt/dfr/prod && docker compose -p dfr-prod up -d --wait >/dev/null 2>&1")


def test_restore_while_an_odoo_one_off_container_runs(prod, good_backup):
    """An operator's `docker compose run odoo …` (a shell, say) carries Odoo's service label:
    the restore stops, swaps and health-checks the service's container, and leaves that one be."""
    host = prod[0]
    one_off = "dfr-prod-odoo-operator-shell"
    host.exec(f"cd /opt/dfr/prod && docker compose -p dfr-prod run -d --no-deps --name {one_off} "
              "odoo sleep 600 >/dev/null")  # fmt: skip
    psql(host, "UPDATE farmer SET name = 'changed after the backup'")  # what the restore undoes
    try:
        run = _restore(prod, good_backup, restore_health_timeout=30)
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
         "--data", "confirm=prod", "--data", "drop_old=true"],
        cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # The first stays busy meanwhile: frozen as soon as its pg_restore runs.
        host.exec("for i in $(seq 1 6000); do pkill -STOP -f '^pg_restore -U' && exit 0; "
                  "sleep 0.01; done; exit 1")  # fmt: skip
        try:
            refused = _restore(prod, second)
        finally:
            host.exec("pkill -CONT -f '^pg_restore -U'")
    finally:
        _, stderr = restoring.communicate(timeout=600)
    assert restoring.returncode == 0, stderr[-3000:]  # Odoo healthy through nginx on it
    assert refused.returncode != 0
    assert (
        "ERROR: another restore is running on this host: run this one once it has ended"
        in refused.stderr
    ), refused.stderr[-3000:]
    assert (
        "removing incoming/cut-short.dfrbak.partial, left by an upload or restore that never "
        "finished" in stderr
    )
    assert host.exec("ls -A /var/backups/dfr/prod/incoming") == ""
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
