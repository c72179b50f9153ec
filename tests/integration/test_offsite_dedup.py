"""What a night's off-host backup sends again: little more than what changed that day.

Each day below changes production the way a working day does, makes an off-host backup, and
reads from borg the bytes its archive added to the repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness.hosts import HostPool, TargetHost
from tests.harness.images import docker_ready_image, target_image
from tests.harness.pyinfra_run import pyinfra
from tests.integration.backups import odoo
from tests.integration.offsite import BORG_ENV, archives, deploy_with_backup_host, kept_on
from tests.integration.stack import psql, stack_inventory

# Big enough that the borg chunk where a change starts (2 MiB on average, up to 8 MiB, cut
# where the repository's key says) stays small beside the dump.
ROWS = 1_200_000
FILES = 600
MIB = 1 << 20
FILESTORE = "/var/lib/odoo/filestore/dfr"


def add_attachments(host: TargetHost, count: int, size: int) -> None:
    """``count`` files of random bytes where Odoo puts attachments, ``<sha1[:2]>/<sha1>``:
    spread over the filestore's directories."""
    odoo(host, "sh", "-c",
         f"mkdir -p {FILESTORE} && cd {FILESTORE} && for i in $(seq {count}); do "
         f"head -c {size} /dev/urandom >new && s=$(sha1sum new | cut -c1-40) && "
         "mkdir -p ${s%${s#??}} && mv new ${s%${s#??}}/$s; done")  # fmt: skip


def backup_off_host(inventory: Path) -> None:
    run = pyinfra(inventory, "tasks/backup.py", data={"offsite": True})
    assert run.returncode == 0, run.stderr[-3000:]


def added_by_newest_archive(host: TargetHost) -> int:
    """The bytes the newest archive added to the repository (deduplicated, compressed)."""
    info = host.exec(BORG_ENV + f"borg info --json ::{archives(host)[-1]}")
    return int(json.loads(info)["archives"][0]["stats"]["deduplicated_size"])


@pytest.fixture(scope="module")
def prod(start_hosts, pool: HostPool, base_images, distro_docker_data):
    """Production with a backup host; a table of ROWS rows whose first fifth lost every other
    row to a cleanup (room PostgreSQL fills with the new versions of rows changed later), FILES
    attachments of 150 kB; its first off-host backup made."""
    (backup,) = start_hosts(target_image(), prefix="dbackup")
    (host,) = start_hosts(docker_ready_image(), prefix="dprod")
    inventory = stack_inventory(pool, [host], "prod", base_images, distro_docker_data)
    inventory = deploy_with_backup_host(inventory, backup)
    psql(host, f"""
        CREATE TABLE dedup_note (id serial PRIMARY KEY, body text, write_date timestamp);
        INSERT INTO dedup_note (body, write_date)
          SELECT md5(g::text) || ' ' || md5((g * 7)::text) || ' ' || md5((g * 13)::text),
                 '2026-01-01'::timestamp + g * interval '1 minute'
          FROM generate_series(1, {ROWS}) g;
        DELETE FROM dedup_note WHERE id <= {ROWS // 5} AND id % 2 = 0;
    """, user="dfr")  # fmt: skip
    psql(host, "VACUUM dedup_note", user="dfr")
    add_attachments(host, FILES, 150_000)
    backup_off_host(inventory)
    return host, inventory


def test_editing_the_newest_records_sends_little_of_the_database_again(prod):
    host, inventory = prod
    dump = int(host.exec(f"du -sb {kept_on(host)}/database | cut -f1"))
    edited = psql(host, f"""
        UPDATE dedup_note SET body = body || ' (edited)', write_date = '2026-12-04'
        WHERE id > {ROWS * 98 // 100} RETURNING id
    """, user="dfr").split()  # fmt: skip
    # Where PostgreSQL put the edited rows: mostly in the room the cleanup left, at the start.
    pages = psql(host, "SELECT (ctid::text::point)[0]::int FROM dedup_note "
                       f"WHERE id > {ROWS * 98 // 100}", user="dfr").split()  # fmt: skip
    assert len(edited) == ROWS // 50 and min(int(page) for page in pages) < 100
    backup_off_host(inventory)
    added = added_by_newest_archive(host)
    # In id order, the table's dump changes at its end: the chunks from there on are sent again
    # (2.5 MB of the 60 MB dump in one run). In the order PostgreSQL stored the rows, it changed
    # from its first pages on, and was sent again whole.
    assert added < dump // 4, f"{added} bytes sent again of a {dump}-byte dump"


def test_new_attachments_send_about_their_own_bytes(prod):
    host, inventory = prod
    add_attachments(host, 20, 100_000)
    backup_off_host(inventory)
    added = added_by_newest_archive(host)
    # The filestore's tar changes at its end: the new files and the chunk they start in. In
    # directory order each new file landed mid-tar and took the borg chunk around it (2 MiB on
    # average) along: 60 MB.
    assert added < 2 * MIB + 12 * MIB, f"{added} bytes sent for 2 MB of new files"
