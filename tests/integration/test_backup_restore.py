"""Backup and restore over SSH: byte-for-byte round trip, staging refresh, Odoo's zip format."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import runpy
import tarfile
import zipfile
from pathlib import Path

import pytest
import zstandard

from tasks.archive import manifest_bytes, verify
from tests.harness.hosts import HostPool, TargetHost
from tests.harness.images import docker_ready_image, target_image
from tests.harness.pyinfra_run import PyinfraRun, pyinfra
from tests.harness.tcp_proxy import switching_proxy
from tests.harness.waiting import wait_for
from tests.integration.backups import (
    add_file,
    assert_neutralized,
    backups_in,
    damage,
    fingerprint,
    seed,
)
from tests.integration.stack import curl, env_secrets, logs_in, psql, stack_inventory


@pytest.fixture(scope="module")
def prod(start_hosts, pool: HostPool, base_images, distro_docker_data) -> tuple[TargetHost, Path]:
    (host,) = start_hosts(docker_ready_image(), prefix="bprod")
    inventory = stack_inventory(pool, [host], "prod", base_images, distro_docker_data)
    run = pyinfra(inventory, "deploy.py")
    assert run.returncode == 0, run.stderr[-3000:]
    seed(host, f"{host.name}.prod.dfr.test")
    return host, inventory


@pytest.fixture(scope="module")
def staging(
    start_hosts, pool: HostPool, base_images, distro_docker_data
) -> tuple[TargetHost, Path]:
    (host,) = start_hosts(docker_ready_image(), prefix="bstaging")
    inventory = stack_inventory(pool, [host], "staging", base_images, distro_docker_data)
    run = pyinfra(inventory, "deploy.py")
    assert run.returncode == 0, run.stderr[-3000:]
    return host, inventory


@pytest.fixture(scope="module")
def backup_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("backups")


@pytest.fixture(scope="module")
def original(prod) -> dict[str, str]:
    return fingerprint(prod[0])


@pytest.fixture(scope="module")
def backup_run(prod, original, backup_dir) -> PyinfraRun:
    run = pyinfra(prod[1], "tasks/backup.py", data={"backup_dir": backup_dir})
    assert run.returncode == 0, run.stderr[-3000:]
    return run


@pytest.fixture(scope="module")
def backup_file(backup_run, backup_dir) -> Path:
    (archive,) = [p for p in backups_in(backup_dir) if p.suffix == ".dfrbak"]
    return archive


@pytest.mark.smoke
def test_backup_holds_database_filestore_and_a_manifest(backup_file, prod, original):
    assert backup_file.stat().st_mode & 0o777 == 0o600
    with tarfile.open(backup_file) as tar:
        manifest = json.load(tar.extractfile("./manifest.json"))
        names = {m.name.removeprefix("./") for m in tar.getmembers() if m.isfile()}
    assert manifest["format"] == "dfr-backup/1"
    assert manifest["major_version"] == "18.0"
    assert manifest["pg_version"].startswith("17.")
    assert manifest["pg_dump"] == {"format": "directory", "compression": "zstd:1", "jobs": 2}
    assert {"base", "web", "dfr_base"} <= set(manifest["modules"])
    assert manifest["dfr_deploy_version"] == Path("VERSION").read_text().strip()
    assert set(manifest["files"]) == names - {"manifest.json"}
    assert "database/toc.dat" in names and "filestore.tar" in names
    assert any(name.endswith(".dat.zst") for name in names)


def test_backup_shows_progress_and_keeps_a_copy_on_the_host(backup_run, backup_file, prod):
    assert "MB/s" in backup_run.stderr and "ETA" in backup_run.stderr
    host_copy = prod[0].exec(f"ls /var/backups/dfr/prod/{backup_file.name}/manifest.json")
    assert host_copy.endswith("manifest.json")


def test_nothing_of_a_backup_runs_on_after_it(prod):
    """dfr-backup flushes the backup to disk from a background loop while it writes it. Run
    here outside an SSH session, whose end would hang up on anything left behind."""
    host = prod[0]
    name = host.exec("/opt/dfr/prod/bin/dfr-backup create 2>/dev/null").split()[0]
    try:
        assert host.exec("pgrep -fa '[d]fr-backup' || true") == ""
    finally:
        host.exec(f"/opt/dfr/prod/bin/dfr-backup remove {name}")


def test_a_backup_the_host_keeps_is_fetched_checked_as_it_arrives(prod, backup_file, tmp_path):
    """fetch= copies a backup the host keeps (the nightly one, say) here, under its own name."""
    host, inventory = prod
    kept = "/var/backups/dfr/prod"
    newest = host.exec(f"ls {kept} | grep -E 'T[0-9]{{6}}Z[.]dfrbak$' | sort | tail -n1")
    run = pyinfra(inventory, "tasks/backup.py", data={"backup_dir": tmp_path, "fetch": "latest"})
    assert run.returncode == 0, run.stderr[-3000:]
    (fetched,) = backups_in(tmp_path)
    assert fetched.name == newest
    assert fetched.stat().st_mode & 0o777 == 0o600
    assert (
        verify(fetched)["files"]
        == json.loads(host.exec(f"cat {kept}/{newest}/manifest.json"))["files"]
    )
    assert "MB/s" in run.stderr
    assert f"{host.name}: transfers go through OpenSSH" in run.stderr

    # A kept copy damaged on the host's disk: refused as it arrives, nothing left here.
    damaged = "prod-dfr-20991231T000000Z.dfrbak"
    host.exec(
        f"cp -a {kept}/{newest} {kept}/{damaged}; printf X >>{kept}/{damaged}/database/toc.dat"
    )
    try:
        bad = pyinfra(inventory, "tasks/backup.py",
                      data={"backup_dir": tmp_path / "bad", "fetch": damaged})  # fmt: skip
    finally:
        host.exec(f"rm -rf {kept}/{damaged}")
    assert bad.returncode != 0
    assert "database/toc.dat does not match its sha256" in bad.stderr
    assert list((tmp_path / "bad").iterdir()) == []

    missing = pyinfra(
        inventory,
        "tasks/backup.py",
        data={"backup_dir": tmp_path / "bad", "fetch": "prod-x.dfrbak"},
    )
    assert missing.returncode != 0
    assert "no backup prod-x.dfrbak in /var/backups/dfr/prod" in missing.stderr
    assert list((tmp_path / "bad").iterdir()) == []


def test_a_host_lying_about_a_backups_name_gets_nothing_fetched_or_written(
    prod, backup_file, tmp_path
):
    """A compromised host (here its ``du``, whose output ends dfr-backup's answer) names a path,
    or another backup than the one asked for: refused in one line, nothing written anywhere."""
    host, inventory = prod
    liar = "/usr/local/bin/du"
    kept = host.exec("ls /var/backups/dfr/prod | grep -E '[.]dfrbak$' | sort | tail -n1")
    answers = {
        "latest": ("../../lied 1", "not a backup's name and size"),
        kept: ("prod-dfr-20200101T000000Z.dfrbak 1", f"when {kept} was asked for"),
    }
    try:
        for wanted, (lie, refusal) in answers.items():
            host.exec(f"cat >{liar} && chmod 755 {liar}",
                      input=f"#!/bin/sh\nprintf '1\\n{lie}\\n'\n".encode())  # fmt: skip
            run = pyinfra(inventory, "tasks/backup.py",
                          data={"backup_dir": tmp_path / "fetched", "fetch": wanted})  # fmt: skip
            assert run.returncode != 0
            assert refusal in run.stderr and "nothing was fetched" in run.stderr
            assert list(tmp_path.iterdir()) == []  # not even backup_dir was made
            assert not (tmp_path.parent / "lied").exists()
    finally:
        host.exec(f"rm -f {liar}")


def test_transfers_go_through_paramiko_where_openssh_cannot_log_in(prod, tmp_path):
    """An ``ssh`` that is refused (a key only paramiko can use, say): the fetch still works,
    through pyinfra's own connection, and says so."""
    host, inventory = prod
    refused = tmp_path / "bin" / "ssh"
    refused.parent.mkdir()
    refused.write_text("#!/bin/sh\necho 'dfr@host: Permission denied (publickey).' >&2\nexit 255\n")
    refused.chmod(0o755)
    run = pyinfra(inventory, "tasks/backup.py",
                  data={"backup_dir": tmp_path / "fetched", "fetch": "latest"},
                  env={"PATH": f"{refused.parent}:{os.environ['PATH']}"})  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert (
        f"{host.name}: transfers go through paramiko "
        "(ssh: dfr@host: Permission denied (publickey).)" in run.stderr
    )
    (fetched,) = backups_in(tmp_path / "fetched")
    kept = f"/var/backups/dfr/prod/{fetched.name}/manifest.json"
    assert verify(fetched)["files"] == json.loads(host.exec(f"cat {kept}"))["files"]


def test_a_host_answering_with_another_key_gets_no_transfer(
    prod, backup_file, start_hosts, tmp_path
):
    """A man in the middle lets pyinfra's own connection reach the host and answers the next
    ones with a host key of his own: OpenSSH, pinned to the key paramiko verified, refuses him,
    and the fetch goes through pyinfra's connection instead, checked as ever."""
    host, inventory = prod
    (impostor,) = start_hosts(target_image(), prefix="impostor")
    # Every target starts from the same image, host keys included: the impostor makes its own.
    impostor.exec("rm -f /etc/ssh/ssh_host_* && ssh-keygen -A && systemctl restart ssh")
    ((name, data),) = runpy.run_path(str(inventory))["targets"]
    through_proxy = tmp_path / "inventory" / inventory.name  # prod.py: the prod group's data
    through_proxy.parent.mkdir()
    with switching_proxy(host.address, impostor.address) as proxy:
        known_hosts = tmp_path / "known_hosts"  # the operator's: the real host's keys only
        known_hosts.write_text("".join(
            f"[127.0.0.1]:{proxy.port} {' '.join(key.split()[:2])}\n"
            for key in host.exec("cat /etc/ssh/ssh_host_*_key.pub").splitlines()
        ))  # fmt: skip
        data.update(ssh_hostname="127.0.0.1", ssh_port=proxy.port,
                    ssh_known_hosts_file=str(known_hosts))  # fmt: skip
        through_proxy.write_text(f"targets = {[(name, data)]!r}\n")
        run = pyinfra(through_proxy, "tasks/backup.py",
                      data={"backup_dir": tmp_path / "fetched", "fetch": "latest"})  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert proxy.later_connections >= 1  # OpenSSH's connections did reach the impostor
    assert f"{name}: transfers go through paramiko (ssh: Host key verification failed.)" in (
        run.stderr
    )

    # By identifier, not by unit: journald names the unit from the sender's /proc entry, gone
    # when the connection's sshd logged its last line and exited before journald read it.
    def impostor_saw() -> str:
        return impostor.exec("journalctl -t sshd --no-pager")

    wait_for("the impostor's sshd to log the refused connection",
             lambda: "[preauth]" in impostor_saw(), timeout=30)  # fmt: skip
    assert "Accepted" not in impostor_saw()
    (fetched,) = backups_in(tmp_path / "fetched")
    assert verify(fetched)["db_name"] == "dfr"


@pytest.mark.smoke
def test_round_trip_restores_every_table_and_file_byte_for_byte(prod, original, backup_file):
    host, inventory = prod
    damage(host)
    assert fingerprint(host) != original
    run = pyinfra(inventory, "tasks/restore.py",
                  data={"backup_file": backup_file, "confirm": "prod"})  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert fingerprint(host) == original
    # Planner statistics for every restored table: Odoo's queries are not planned blind.
    assert psql(host, "SELECT count(*) FROM pg_stat_user_tables WHERE last_analyze IS NULL") == "0"
    # The host still kept this very backup: restored from that copy, nothing uploaded.
    assert "from the copy the host kept of it" in run.output
    assert "Upload" not in run.output
    kept = psql(
        host, "SELECT datname FROM pg_database WHERE datname LIKE 'dfr_old_%'", db="postgres"
    )
    assert kept.startswith("dfr_old_")  # the damaged database is kept until removed
    reply = curl(host, f"{host.name}.prod.dfr.test", f"https://{host.name}.prod.dfr.test/web/login",
                 "-o", "/dev/null", "-w", "%{http_code}")  # fmt: skip
    assert reply.stdout == "200"


def test_production_backup_restored_on_staging_is_neutralized_and_served(
    prod, staging, original, backup_file
):
    host, inventory = staging
    run = pyinfra(inventory, "tasks/restore.py", data={"backup_file": backup_file})
    assert run.returncode == 0, run.stderr[-3000:]
    assert_neutralized(host)
    restored = fingerprint(host)
    assert restored["table farmer"] == original["table farmer"]
    assert {k: v for k, v in restored.items() if k.startswith("file")} == {
        k: v for k, v in original.items() if k.startswith("file")
    }
    domain = f"{host.name}.staging.dfr.test"
    login = curl(host, domain, f"https://{domain}/web/login", "-o", "/dev/null",
                 "-w", "%{http_code}")  # fmt: skip
    assert login.stdout == "200"

    # The copy keeps production's admin password, not staging's, also once Odoo starts again
    # (its entrypoint applies staging's password only when that secret changes).
    prod_admin = env_secrets("prod")["DFR_ODOO_ADMIN_USER_PASSWORD"]
    staging_admin = env_secrets("staging")["DFR_ODOO_ADMIN_USER_PASSWORD"]
    assert prod_admin != staging_admin
    assert logs_in(host, domain, "admin", prod_admin)
    assert not logs_in(host, domain, "admin", staging_admin)
    host.exec("docker restart $(docker ps -q --filter label=com.docker.compose.service=odoo)")

    def login_page() -> bool:
        page = curl(host, domain, f"https://{domain}/web/login", "-o", "/dev/null",
                    "-w", "%{http_code}")  # fmt: skip
        return page.stdout == "200"

    wait_for("staging's Odoo to serve its login page again", login_page, timeout=120)
    assert logs_in(host, domain, "admin", prod_admin)
    assert not logs_in(host, domain, "admin", staging_admin)


def test_odoo_zip_export_restores_through_the_same_path(prod, staging, original, backup_dir):
    """With OpenSSH turned off: paramiko carries the export's download and the restore's upload."""
    paramiko_only = {"openssh_transfers": False}
    export_data = {"backup_dir": backup_dir, "format": "odoo-zip", **paramiko_only}
    run = pyinfra(prod[1], "tasks/backup.py", data=export_data)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "transfers go through" not in run.stderr
    (export,) = [p for p in backups_in(backup_dir) if p.suffix == ".zip"]
    with zipfile.ZipFile(export) as archive:
        names = archive.namelist()
        assert names[0] == "dump.sql"
        assert json.loads(archive.read("manifest.json"))["major_version"] == "18.0"
        assert any(name.startswith("filestore/") for name in names)
    host, inventory = staging
    psql(host, "UPDATE farmer SET name = 'changed on staging'")
    run = pyinfra(inventory, "tasks/restore.py",
                  data={"backup_file": export, "drop_old": True, **paramiko_only})  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "transfers go through" not in run.stderr
    assert fingerprint(host)["table farmer"] == original["table farmer"]
    assert (
        psql(host, "SELECT count(*) FROM pg_database WHERE datname LIKE 'dfr_old_%'", db="postgres")
        == "1"
    )  # fmt: skip  (drop_old removed this restore's old copy)


def test_a_zip_made_by_odoos_own_database_manager_restores(prod, staging, original, tmp_path):
    """``odoo db dump`` writes the same zip as the database manager's backup button. The tar
    it is converted into on the controller is gone after the run."""
    host, _ = prod
    zipped = tmp_path / "odoo-manager.zip"
    odoo_zip = host.exec(
        "cd /opt/dfr/prod && docker compose -p dfr-prod run --rm --no-deps -T odoo "
        "sh -c 'odoo db dump dfr - 2>/dev/null | base64 -w0'"
    )
    zipped.write_bytes(base64.b64decode(odoo_zip))
    with zipfile.ZipFile(zipped) as archive:
        assert archive.namelist()[0] == "dump.sql"
    staging_host, inventory = staging
    controller_tmp = tmp_path / "controller-tmp"
    controller_tmp.mkdir()
    run = pyinfra(inventory, "tasks/restore.py", data={"backup_file": zipped},
                  env={"TMPDIR": str(controller_tmp)})  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert fingerprint(staging_host)["table farmer"] == original["table farmer"]
    assert list(controller_tmp.iterdir()) == []


def _in_the_0_1_0_layout(backup: Path, dest: Path) -> Path:
    """``backup`` laid out as dfr-deploy 0.1.0 wrote backups: its filestore part made as 0.1.0
    made it (``filestore.tar.zst``) and named so in the manifest."""
    with tarfile.open(backup) as source, tarfile.open(dest, "w") as old:
        for member in source.getmembers():
            name = member.name.removeprefix("./")
            if name == "manifest.json":
                manifest = json.load(source.extractfile(member))
            elif name == "filestore.tar":
                packed = _as_0_1_0_archived(source.extractfile(member).read())
                add_file(old, "./filestore.tar.zst", packed)
            else:
                old.addfile(member, source.extractfile(member) if member.isfile() else None)
        del manifest["files"]["filestore.tar"]
        manifest["files"]["filestore.tar.zst"] = {
            "size": len(packed),
            "sha256": hashlib.sha256(packed).hexdigest(),
        }
        manifest["dfr_deploy_version"] = "0.1.0"
        add_file(old, "./manifest.json", manifest_bytes(manifest))
    return dest


def _as_0_1_0_archived(filestore_tar: bytes) -> bytes:
    """The same files as 0.1.0 archived them: ``tar -cf - . | zstd -3``, so in GNU tar's
    default 10 KiB records (today's tar is in 1 MiB ones)."""
    rewritten = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(filestore_tar)) as current,
        tarfile.open(fileobj=rewritten, mode="w", format=tarfile.GNU_FORMAT) as old,
    ):
        for member in current.getmembers():
            old.addfile(member, current.extractfile(member) if member.isfile() else None)
    return zstandard.ZstdCompressor(level=3).compress(rewritten.getvalue())


def test_a_backup_made_by_dfr_deploy_0_1_0_restores(staging, original, backup_file, tmp_path):
    """Backups kept from 0.1.0 hold the filestore as ``filestore.tar.zst``: they still restore,
    every file byte for byte (the host decompresses it with its postgres image's zstd)."""
    old = _in_the_0_1_0_layout(backup_file, tmp_path / "made-by-0.1.0.dfrbak")
    with tarfile.open(old) as archive:
        parts = {name.removeprefix("./") for name in archive.getnames()}
    assert "filestore.tar.zst" in parts and "filestore.tar" not in parts
    host, inventory = staging
    psql(host, "CREATE TABLE made_on_staging_before_the_restore (id int)")
    run = pyinfra(inventory, "tasks/restore.py", data={"backup_file": old, "drop_old": True})
    assert run.returncode == 0, run.stderr[-3000:]
    restored = fingerprint(host)
    assert "table made_on_staging_before_the_restore" not in restored
    # Everything but Odoo's own ir_* tables, which the staging restore neutralizes.
    as_backed_up = {k: v for k, v in original.items() if not k.startswith("table ir_")}
    assert {k: restored.get(k) for k in as_backed_up} == as_backed_up
