"""Off-host backups: bytes sent and time, first and after a day's changes; restore from there.

    .venv/bin/python -m bench.offsite [--scale S] [--no-docs]

On a production-like target host and a backup host of the harness (the prod stack deployed
with deploy.py, the backup host in the inventory's backup group), loads the Odoo-like dataset
of bench/odoo_dataset.py, edits its newest 2 % of rows once (a database in use, not one just
loaded) and measures:

1. the first off-host backup (``tasks/backup.py --data offsite=true``: made on the host, sent to
   the borg repository): the whole command's time, borg's own time for the push, and the bytes
   it added to the repository (the archive's deduplicated, compressed size);
2. the same after a day's changes, two ways, each against the first: 2 % of the rows of each
   big table changed where a working day changes them (the newest rows: recent records are
   the ones edited), and 2 % changed spread over each table (every 50th row: the worst case
   for any backup of PostgreSQL, since it touches every 8 KiB page); 1 % new filestore files
   with each, where Odoo puts them (``<sha1[:2]>/<sha1>``). The goals of issue 27: bytes
   ≤ 10 % and time ≤ 25 % of the first;
3. the floor of a push's time: the last backup sent again with borg's files cache off, so
   every byte is read, chunked and hashed but nothing is new;
4. restoring the last backup into production from the off-host repository
   (``tasks/restore.py --data from=offsite``) against from the copy the host keeps
   (``--data backup_file=`` of the same backup, which the host still holds: nothing uploaded);
   goal ≤ 1.5×. Both restores are verified against the dataset's fingerprint. Unpacking the
   whole archive is timed too, with the CPU time the backup host spent serving it.

Prints a Markdown section and writes it into docs/benchmarks.md (replacing its previous
version). Only this run's own hosts are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import textwrap
import time
from pathlib import Path

from bench.odoo_dataset import DB, STACK_DIR, Dataset, Stack, generate, verify
from bench.target import stand_ins
from tests.harness.docker_cli import docker
from tests.harness.hosts import HostPool, remove_leftovers
from tests.harness.images import (
    docker_ready_image,
    target_image,
)
from tests.harness.pyinfra_run import PyinfraRun, pyinfra
from tests.integration.stack import stack_inventory

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADING = "## Off-host backups (`bench/offsite.py`)"
PASSPHRASE = "Bq7Wn2Xk9Lm4Tr8Vs3Hd6Jf1Pz5"
BORG = (
    "set -a; . /opt/dfr/prod/offsite.env; set +a; export BORG_REPO=$DFR_OFFSITE_REPOSITORY "
    "BORG_PASSCOMMAND='cat /opt/dfr/prod/offsite.passphrase' "
    "BORG_BASE_DIR=/var/lib/dfr-offsite/prod "
    'BORG_RSH="ssh -i $DFR_OFFSITE_KEY -o BatchMode=yes '
    '-o UserKnownHostsFile=/opt/dfr/prod/offsite_known_hosts"; borg '
)
# 2 % of each big table's rows: the newest ones (a working day), or spread over the table.
CHANGE_TABLES = (("pgbench_accounts", "aid", "abalance = abalance + 1"),
                 ("mail_message", "id", "subject = subject || ' (edited)'"),
                 ("ir_attachment", "id", "name = name || '.v2'"))  # fmt: skip
RECENT_CHANGES = "".join(
    f"UPDATE {table} SET {change} WHERE {key} > (SELECT max({key}) * 0.98 FROM {table});\n"
    for table, key, change in CHANGE_TABLES
)
SPREAD_CHANGES = "".join(
    f"UPDATE {table} SET {change} WHERE {key} % 50 = 0;\n" for table, key, change in CHANGE_TABLES
)


def checked(run: PyinfraRun, what: str) -> PyinfraRun:
    if run.returncode != 0:
        raise SystemExit(f"{what} failed: {run.stderr[-3000:]}")
    return run


def archive_stats(stack: Stack, name: str) -> tuple[float, int]:
    """(borg's duration in seconds, bytes the archive added to the repository)."""
    info = json.loads(stack.sh(BORG + f"info --json ::{name}"))["archives"][0]
    return float(info["duration"]), int(info["stats"]["deduplicated_size"])


def ordering(run: PyinfraRun) -> float:
    """Seconds the backup of ``run`` spent putting the dump's rows in id order."""
    found = re.search(r"rows put in id order in (\d+) ms", run.stderr)
    if not found:
        raise SystemExit("the backup did not say how long ordering the dump's rows took")
    return int(found.group(1)) / 1000


def newest_archive(stack: Stack) -> str:
    return stack.sh(BORG + "list --short --sort-by timestamp --last 1").split()[-1]


def add_files(stack: Stack, count: int) -> None:
    """``count`` new attachments where Odoo puts them: ``<sha1[:2]>/<sha1>``, so spread over
    the filestore's directories."""
    root = f"/var/lib/odoo/filestore/{DB}"
    stack.sh(f"docker exec -u odoo {stack.odoo} sh -c 'cd {root} && for i in $(seq {count}); do "
             "head -c $((200000 + i * 997)) /dev/urandom >new && s=$(sha1sum new | cut -c1-40) && "
             "mkdir -p ${s%${s#??}} && mv new ${s%${s#??}}/$s; done'")  # fmt: skip


def cpu_seconds(host_container: str) -> float:
    """CPU time the target host's container has used so far, read from its cgroup on this
    machine (cgroup v1 with Docker's cgroupfs driver, or v2 with systemd's)."""
    cid = docker("inspect", "-f", "{{.Id}}", host_container)
    v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage")
    if v1.exists():
        return int(v1.read_text()) / 1e9
    stat = Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat").read_text()
    return int(dict(line.split() for line in stat.splitlines())["usage_usec"]) / 1e6


def floor_push(stack: Stack, name: str) -> float:
    """borg's time to send backup ``name`` again with its files cache off: every byte read,
    chunked and hashed, none new. The archive is deleted again."""
    where = f"$(. {STACK_DIR}/backup.env; echo $DFR_BACKUP_DIR)/{name}"
    stack.sh(f"cd {where} && {BORG} create --files-cache=disabled --compression auto,zstd,3 "
             f"::{name}.floor .")  # fmt: skip
    seconds, added = archive_stats(stack, f"{name}.floor")
    stack.sh(BORG + f"delete ::{name}.floor")
    if added > 10_000_000:
        raise SystemExit(f"sending {name} again added {added} bytes: the floor is not a floor")
    return seconds


def day(
    stack: Stack, inventory: Path, changes: str, added: int, prefix: str
) -> tuple[PyinfraRun, float, int, str]:
    """A day's changes, then an off-host backup: (its run, push seconds, bytes, name)."""
    stack.psql(changes, user="dfr")
    add_files(stack, added)
    run = checked(pyinfra(inventory, "tasks/backup.py", data={"offsite": True}),
                  f"the off-host backup after the {prefix} changes")  # fmt: skip
    name = newest_archive(stack)
    return (run, *archive_stats(stack, name), name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--scale", type=float, default=0.25, help="dataset scale: 1 = ~2.3 GB + ~1.07 GB files"
    )
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    args = parser.parse_args()
    ds = Dataset(args.scale)
    remove_leftovers()
    bases, docker_data = stand_ins()
    with tempfile.TemporaryDirectory(prefix="dfr-bench-") as tmp:
        pool = HostPool(Path(tmp))
        try:
            (prod,) = pool.start(docker_ready_image(), prefix="bprod")
            (backup,) = pool.start(target_image(), prefix="bbackup")
            inventory = stack_inventory(pool, [prod], "prod", bases, docker_data)
            with open(inventory.parent / "prod.env", "a") as secrets:
                secrets.write(f"DFR_OFFSITE_PASSPHRASE={PASSPHRASE}\n")
            name, data = backup.inventory_entry()
            data["secrets_file"] = str(inventory.parent / "prod.env")
            inventory.write_text(inventory.read_text() + f"backup = [({name!r}, {data!r})]\n")
            checked(pyinfra(inventory, "deploy.py"), "deploy.py")
            stack = Stack(prod)
            print(f"dataset: {ds.describe()}", flush=True)
            generate(stack, ds)
            # A day of work before the first backup, so the database is one in use: a table
            # freshly loaded is in stored order, and the first time an edit moves its rows out
            # of it, its file is sent whole once (docs/offsite-backups.md).
            stack.psql(RECENT_CHANGES, user="dfr")
            database = stack.database_bytes()
            files, filestore = stack.filestore_stats()

            first = checked(pyinfra(inventory, "tasks/backup.py", data={"offsite": True}),
                            "the first off-host backup")  # fmt: skip
            first_push, first_bytes = archive_stats(stack, newest_archive(stack))
            added = max(1, files // 100)
            recent = day(stack, inventory, RECENT_CHANGES, added, "recent")
            spread = day(stack, inventory, SPREAD_CHANGES, added, "spread")
            last = spread[3]
            expected = stack.fingerprint()
            floor = floor_push(stack, last)

            extract = stack.timed(f"{STACK_DIR}/bin/dfr-offsite extract {last}")
            stack.sh(f"rm -rf $(. {STACK_DIR}/backup.env; echo $DFR_BACKUP_DIR)/incoming/"
                     f"{last}")  # fmt: skip
            served = cpu_seconds(backup.container)
            offsite = {"from": "offsite", "snapshot": last, "confirm": "prod"}
            from_offsite = checked(pyinfra(inventory, "tasks/restore.py", data=offsite),
                                   "restore from off-host")  # fmt: skip
            served = cpu_seconds(backup.container) - served
            verify(stack, expected, DB, "the restore from off-host")
            fetched = Path(tmp) / "fetched"
            checked(pyinfra(inventory, "tasks/backup.py",
                            data={"backup_dir": fetched, "fetch": last}), "fetch")  # fmt: skip
            kept = {"backup_file": fetched / last, "confirm": "prod"}
            from_host = checked(pyinfra(inventory, "tasks/restore.py", data=kept),
                                "restore from the host's copy")  # fmt: skip
            if "from the copy the host kept" not in from_host.stderr:
                raise SystemExit("the restore from the host's copy uploaded the backup")
            verify(stack, expected, DB, "the restore from the host's copy")
        finally:
            pool.close()

    rows = [
        ("first off-host backup", first, first_push, first_bytes),
        ("after the newest 2 % of rows changed, 1 % files added", *recent[0:3]),
        ("after 2 % of rows changed spread over each table, 1 % files added", *spread[0:3]),
    ]
    lines = [
        HEADING,
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on this 2-core VM (the "
        "controller, the prod host and the backup host share its cores), harness target "
        f"hosts (prod and a backup host), borg 1.2.4. Dataset: {ds.describe()}; database "
        f"{database / 1e6:,.0f} MB, "
        f"filestore {files:,} files, {filestore / 1e6:,.0f} MB. Before the first backup, the "
        "newest 2 % of rows were edited once (a database in use). Each day's changes touch "
        f"pgbench_accounts, mail_message and ir_attachment and add {added} filestore files "
        "where Odoo puts them; each row below is a backup after one more day, measured against "
        "the first.",
        "",
        "| | whole command (s) | of which rows put in order (s) | borg push (s) |"
        " bytes added to the repository (MB) | bytes vs first | push vs first |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {what} | {run.seconds:.1f} | {ordering(run):.1f} | {push:.1f} | "
            f"{size / 1e6:,.1f} | {size / first_bytes:.0%} | {push / first_push:.0%} |"
            for what, run, push, size in rows
        ],
        f"| the last backup sent again, borg's files cache off (nothing new) | | | {floor:.1f} |"
        f" | | {floor / first_push:.0%} |",
        "",
        "Goals: bytes ≤ 10 % and push ≤ 25 % of the first. The last row is the floor of any "
        "push here: borg reads, chunks and hashes every byte of a backup even when nothing in it "
        "is new.",
        "",
        "| restore of the last backup into production | s |",
        "|---|---|",
        "| from the off-host repository (`from=offsite`: the database's part unpacked, the "
        f"filestore streamed) | {from_offsite.seconds:.1f} |",
        f"| from the copy the host keeps (`backup_file=`, nothing uploaded) | "
        f"{from_host.seconds:.1f} |",
        f"| unpacking the whole archive alone (`dfr-offsite extract`) | {extract:.1f} |",
        "",
        f"From off-host: {from_offsite.seconds / from_host.seconds:.2f}× the host copy's time "
        f"(goal ≤ 1.5×). Both restores verified against the dataset's fingerprint. Serving the "
        f"off-host restore took the backup host {served:.1f} s of CPU (borg serve and sshd) on "
        "the same two cores.",
        "",
    ]
    section = "\n".join(
        line if line.startswith(("|", "#")) else textwrap.fill(line, 100) for line in lines
    )
    print(section)
    if not args.no_docs:
        text = DOCS.read_text()
        pattern = re.compile(re.escape(HEADING) + r".*?(?=\n## |\Z)", re.S)
        text = pattern.sub(section.rstrip("\n") + "\n", text) if HEADING in text else (
            text.rstrip("\n") + "\n\n" + section)  # fmt: skip
        DOCS.write_text(text)


if __name__ == "__main__":
    main()
