"""Off-host backups: bytes sent and time, first and after a day's changes; restore from there.

    .venv/bin/python -m bench.offsite [--scale S] [--no-docs]

On a production-like target host and a backup host of the harness (the prod stack deployed
with deploy.py, the backup host in the inventory's backup group), loads the Odoo-like dataset
of bench/odoo_dataset.py and measures:

1. the first off-host backup (``tasks/backup.py --data offsite=true``: made on the host, sent to
   the borg repository): the whole command's time, borg's own time for the push, and the bytes
   it added to the repository (the archive's deduplicated, compressed size);
2. the same after 2 % of the rows of the big tables were changed (spread over each table) and
   1 % new filestore files added; the goals of issue 27: bytes ≤ 10 % and time ≤ 25 % of the
   first;
3. restoring that backup into production from the off-host repository
   (``tasks/restore.py --data from=offsite``) against from the copy the host keeps
   (``--data backup_file=`` of the same backup, which the host still holds: nothing uploaded);
   goal ≤ 1.5×. Both restores are verified against the dataset's fingerprint.

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

from bench.odoo_dataset import BIG_TABLES, DB, Dataset, Stack, generate, verify
from bench.target import stand_ins
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
# 2 % of each big table's rows, spread over the table (every 50th row), and 1 % new files.
CHANGES = """
UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 50 = 0;
UPDATE mail_message SET subject = subject || ' (edited)' WHERE id % 50 = 0;
UPDATE ir_attachment SET name = name || '.v2' WHERE id % 50 = 0;
"""


def checked(run: PyinfraRun, what: str) -> PyinfraRun:
    if run.returncode != 0:
        raise SystemExit(f"{what} failed: {run.stderr[-3000:]}")
    return run


def archive_stats(stack: Stack, name: str) -> tuple[float, int]:
    """(borg's duration in seconds, bytes the archive added to the repository)."""
    info = json.loads(stack.sh(BORG + f"info --json ::{name}"))["archives"][0]
    return float(info["duration"]), int(info["stats"]["deduplicated_size"])


def newest_archive(stack: Stack) -> str:
    return stack.sh(BORG + "list --short --sort-by timestamp --last 1").split()[-1]


def add_files(stack: Stack, count: int) -> None:
    root = f"/var/lib/odoo/filestore/{DB}/zz"
    stack.sh(f"docker exec -u odoo {stack.odoo} sh -c 'mkdir -p {root} && for i in "
             f"$(seq {count}); do head -c $((200000 + i * 997)) /dev/urandom >{root}/new$i; "
             "done'")  # fmt: skip


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
            database = stack.database_bytes()
            files, filestore = stack.filestore_stats()

            first = checked(pyinfra(inventory, "tasks/backup.py", data={"offsite": True}),
                            "the first off-host backup")  # fmt: skip
            first_push, first_bytes = archive_stats(stack, newest_archive(stack))
            stack.psql(CHANGES, user="dfr")
            added = max(1, files // 100)
            add_files(stack, added)
            expected = stack.fingerprint()
            second = checked(pyinfra(inventory, "tasks/backup.py", data={"offsite": True}),
                             "the second off-host backup")  # fmt: skip
            name2 = newest_archive(stack)
            second_push, second_bytes = archive_stats(stack, name2)

            offsite = {"from": "offsite", "snapshot": name2, "confirm": "prod"}
            from_offsite = checked(pyinfra(inventory, "tasks/restore.py", data=offsite),
                                   "restore from off-host")  # fmt: skip
            verify(stack, expected, DB, "the restore from off-host")
            fetched = Path(tmp) / "fetched"
            checked(pyinfra(inventory, "tasks/backup.py",
                            data={"backup_dir": fetched, "fetch": name2}), "fetch")  # fmt: skip
            kept = {"backup_file": fetched / name2, "confirm": "prod"}
            from_host = checked(pyinfra(inventory, "tasks/restore.py", data=kept),
                                "restore from the host's copy")  # fmt: skip
            if "from the copy the host kept" not in from_host.stderr:
                raise SystemExit("the restore from the host's copy uploaded the backup")
            verify(stack, expected, DB, "the restore from the host's copy")
        finally:
            pool.close()

    rows = [
        ("first off-host backup", first.seconds, first_push, first_bytes),
        (
            "second, after 2 % rows changed and 1 % files added",
            second.seconds,
            second_push,
            second_bytes,
        ),
    ]
    lines = [
        HEADING,
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on this 2-core VM (the "
        "controller, the prod host and the backup host share its cores), harness target "
        f"hosts (prod and a backup host), borg 1.2.4. Dataset: {ds.describe()}; database "
        f"{database / 1e6:,.0f} MB, "
        f"filestore {files:,} files, {filestore / 1e6:,.0f} MB. Changes before the second: "
        f"every 50th row of {', '.join(BIG_TABLES[:1])}, mail_message and ir_attachment "
        f"updated, {added} new filestore files.",
        "",
        "| | whole command (s) | borg push (s) | bytes added to the repository (MB) |",
        "|---|---|---|---|",
        *[
            f"| {what} | {total:.1f} | {push:.1f} | {size / 1e6:,.1f} |"
            for what, total, push, size in rows
        ],
        "",
        f"Second against first: bytes {second_bytes / first_bytes:.0%} (goal ≤ 10 %), whole "
        f"command {second.seconds / first.seconds:.0%}, borg push "
        f"{second_push / first_push:.0%} (goal ≤ 25 %).",
        "",
        "| restore of the second backup into production | s |",
        "|---|---|",
        f"| from the off-host repository (`from=offsite`: extracted on the host) | "
        f"{from_offsite.seconds:.1f} |",
        f"| from the copy the host keeps (`backup_file=`, nothing uploaded) | "
        f"{from_host.seconds:.1f} |",
        "",
        f"From off-host: {from_offsite.seconds / from_host.seconds:.2f}× the host copy's time "
        "(goal ≤ 1.5×). Both restores verified against the dataset's fingerprint.",
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
