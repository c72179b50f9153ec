"""Seeding, damaging and fingerprinting a stack's data for the backup and restore tests."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path
from urllib.parse import quote

from tests.harness.hosts import TargetHost
from tests.integration.stack import curl, psql

SEED_SQL = """
CREATE TABLE farmer (id serial PRIMARY KEY, name text NOT NULL, village text,
                     area_ha numeric(12,4), registered date, photo bytea);
INSERT INTO farmer (name, village, area_ha, registered, photo)
SELECT 'Farmer ' || i || ' — Ñandú 農家 ✓', 'Village ' || (i % 17), i * 1.2345,
       date '2020-01-01' + i, decode(md5(i::text), 'hex')
FROM generate_series(1, 2000) AS i;
CREATE TABLE plot (id serial PRIMARY KEY, farmer_id int REFERENCES farmer (id),
                   geo jsonb, yield_kg numeric);
INSERT INTO plot (farmer_id, geo, yield_kg)
SELECT 1 + i % 2000, jsonb_build_object('lat', i / 7.0, 'lon', -i / 3.0, 'tag', 'φ' || i),
       i * 0.5 FROM generate_series(1, 5000) AS i;
CREATE INDEX plot_farmer ON plot (farmer_id);
SELECT lo_from_bytea(0, convert_to(repeat('large object ✓ ', 2000), 'UTF8'));
"""

# Files an operator's filestore really has besides attachments: nested, empty, unicode names.
EXTRA_FILES = """
set -e
cd /var/lib/odoo/filestore/dfr
mkdir -p nested/déjà/vu
printf '' > nested/empty
head -c 300000 /dev/urandom > 'nested/déjà/vu/données ✓.bin'
printf 'plain text\\n' > 'ünïcödé.txt'
"""


def seed(host: TargetHost, domain: str) -> None:
    psql(host, SEED_SQL, user="dfr")
    for name, body in (("photo.bin", _random(200_000)), ("empty.txt", b""),
                       ("notes ✓.txt", "Ñandú 農家\n".encode() * 100)):  # fmt: skip
        reply = curl(host, domain, f"https://{domain}/dfr-test-double/attachment?name={quote(name)}",
                     "-X", "POST", "-H", "Content-Type: application/octet-stream",
                     "--data-binary", "@-", input=body)  # fmt: skip
        assert json.loads(reply.stdout)["store_fname"], reply.stdout + reply.stderr
    odoo(host, "sh", "-c", EXTRA_FILES)


def _random(size: int) -> bytes:
    with open("/dev/urandom", "rb") as source:
        return source.read(size)


def odoo(host: TargetHost, *command: str) -> str:
    """Run a command in the stack's Odoo container as the odoo user."""
    quoted = " ".join(_quote(part) for part in command)
    return host.exec(
        "docker exec -u odoo $(docker ps -q --filter label=com.docker.compose.service=odoo) "
        + quoted
    )


def _quote(part: str) -> str:
    return "'" + part.replace("'", "'\\''") + "'"


def fingerprint(host: TargetHost, db: str = "dfr") -> dict[str, str]:
    """A checksum of every table's content, every large object and every filestore file."""
    tables = psql(host, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                        "ORDER BY tablename", db=db).split()  # fmt: skip
    prints = {}
    for table in tables:
        prints[f"table {table}"] = psql(
            host, f"SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) "
                  f"FROM {table} t", db=db,
        )  # fmt: skip
    prints["large objects"] = psql(
        host, "SELECT string_agg(oid || ':' || md5(lo_get(oid)), ',' ORDER BY oid) "
              "FROM pg_largeobject_metadata", db=db,
    )  # fmt: skip
    files = odoo(host, "sh", "-c", f"cd /var/lib/odoo/filestore/{db} && "
                 "find . -type f -print0 | sort -z | xargs -0 -r sha256sum")  # fmt: skip
    for line in files.splitlines():
        digest, name = line.split("  ", 1)
        prints[f"file {name}"] = digest
    return prints


def assert_neutralized(host: TargetHost) -> None:
    """The live database is neutralized as odoo neutralize leaves it: marked so, no active cron
    but the autovacuum, no mail server but an invalid one."""
    assert psql(host, "SELECT value FROM ir_config_parameter "
                      "WHERE key = 'database.is_neutralized'") == "true"  # fmt: skip
    assert psql(host, "SELECT count(*) FROM ir_cron WHERE active") == psql(
        host, "SELECT count(*) FROM ir_cron c JOIN ir_model_data d ON d.res_id = c.id "
              "AND d.model = 'ir.cron' WHERE c.active AND d.name = 'autovacuum_job'",
    )  # fmt: skip
    assert psql(host, "SELECT smtp_host FROM ir_mail_server WHERE active") == "invalid"


def damage(host: TargetHost) -> None:
    psql(host, "DROP TABLE plot; DELETE FROM farmer WHERE id % 3 = 0; "
               "UPDATE farmer SET name = 'overwritten' WHERE id = 1;", user="dfr")  # fmt: skip
    odoo(host, "sh", "-c", "cd /var/lib/odoo/filestore/dfr && rm -rf nested && "
                           "rm -f \"$(find . -type f -size +100k | head -n1)\"")  # fmt: skip


def add_file(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    """Writes ``data`` into ``archive`` as the regular file ``name``."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def backups_in(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if not p.name.endswith(".partial"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_quiet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, check=False)
