"""Backup and restore of the whole instance (database + filestore), ours against the others.

    .venv/bin/python -m bench.backup_restore [--scale S] [--runs N]

On one production-like target host (the harness's docker-ready Debian 12, the prod stack
deployed with deploy.py, stand-in base images uploaded), loads the Odoo-like dataset of
bench/odoo_dataset.py and measures on the same data in the same run:

1. ours: ``pyinfra INVENTORY tasks/backup.py --data backup_dir=...`` (the whole command; from
   the host copy's file times also ``dfr-backup create`` alone, its pg_dump and its filestore
   part), the same pg_dump alone (database only), the kept backup fetched alone
   (``tasks/backup.py --data fetch=NAME``: the transfer and its in-flight check), and
   ``pyinfra INVENTORY tasks/restore.py --data backup_file=... --data confirm=prod`` twice:
   from the copy the host kept, and of the same backup under another name (uploaded);
2. Odoo's method: ``odoo db dump`` (plain ``pg_dump --no-owner`` + filestore copy + manifest,
   ZIP_DEFLATED, as Odoo's dump_db) and ``odoo db load`` (new database, ``psql -f``, filestore
   moved in, as Odoo's restore_db), run in the stack's Odoo container on the host;
3. pgBackRest full backup (zst-3, process-max 2) of the cluster and its restore until the
   cluster is out of recovery; ``pg_basebackup -Ft --compress=server-zstd:3`` as a second
   physical row (backup only); pg_basebackup alone if no pgBackRest >= 2.53 can be had;
4. the physical limit: a cold ``tar | cat >/dev/null`` of PGDATA (without pg_wal) and of the
   filestore, and ``zstd -T0 -1`` over the same PGDATA bytes (warm);
5. raw SSH throughput: 1 GiB of ``head -c … /dev/zero`` through tasks/transfer.py's download
   (OpenSSH's ``ssh``, or pyinfra's paramiko connection where ``ssh`` cannot log in), to
   /dev/null and written to a file as backups are (tasks/disk_writer.py) (this file, run by
   pyinfra as a deploy).

For our pyinfra commands and raw SSH it also records whose CPU they used: this whole machine's
CPU seconds (``/proc/stat``, the target's side included) and the pyinfra process's (getrusage).

Every restore is verified (row counts and data bytes of the big tables, index count, filestore
file count and bytes); a failed verification fails the benchmark. Prints a Markdown section
and writes it into docs/benchmarks.md (replacing its previous version). Only the objects of this
run's own HostPool are removed at the end: other sessions may share the Docker engine.
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import platform
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.odoo_dataset import DB, PROJECT, BenchError, Dataset, Stack, generate, verify
from tasks.docker_settings import file_sha256
from tasks.openssh import CIPHERS
from tests.harness.docker_cli import LABEL, docker
from tests.harness.hosts import HostPool
from tests.harness.images import (
    CACHE,
    COMPOSE_BINARY,
    docker_ready_image,
    nginx_image,
    odoo_double_image,
    postgres_image,
)
from tests.harness.pyinfra_run import PROJECT as PROJECT_ROOT
from tests.harness.pyinfra_run import PyinfraRun, pyinfra
from tests.integration.stack import stack_inventory

DOCS = PROJECT_ROOT / "docs" / "benchmarks.md"
HEADING = "## Backup and restore (`bench/backup_restore.py`)"
HOST_BACKUPS = "/var/backups/dfr/prod"  # /backups in the postgres container
PGBR_DIR = f"{HOST_BACKUPS}/pgbackrest"
PGBR_CONF = "/backups/pgbackrest/pgbackrest.conf"
PGBR = f"pgbackrest --config={PGBR_CONF} --stanza=dfr"
PGBR_IMAGE = "dfr-bench/postgres-pgbackrest:latest"  # on the target only
PGBR_MIN = (2, 53)  # the first pgBackRest release that supports PostgreSQL 17
RAW_SSH_BYTES = 1 << 30
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Our backup's pg_dump compression, as files/backup/dfr-backup.sh sets it.
DUMP_COMPRESSION = re.search(
    r"^DUMP_COMPRESSION=(\S+)$",
    (Path(__file__).resolve().parent.parent / "files/backup/dfr-backup.sh").read_text(),
    re.M,
)[1]  # type: ignore[index]
ODOO_COPY = "dfr_odoo_bench"
# The running Odoo container's own configuration, secrets included (files/odoo/dfr-entrypoint.sh).
ODOO_EXEC = "-u odoo -e ODOO_RC=/run/dfr-odoo/odoo.conf"
PROGRESS = re.compile(
    r"(?P<label>[^\s].*?): (?P<mb>[\d,]+\.\d) MB at (?P<rate>[\d,]+\.\d) MB/s"
    r"(?:, \d+ %, ETA \d+ s)?, (?P<s>[\d.]+) s\s*$"
)


# --- pgBackRest for PostgreSQL 17 on Debian 12 --------------------------------------------


@dataclass
class PgBackRest:
    """The .debs to install in the postgres container, or why there are none."""

    debs: list[Path] = field(default_factory=list)
    version: str = ""
    note: str = ""


def _apt(*args: str, lists: Path | None = None, cwd: Path | None = None) -> str:
    options: list[str] = []
    if lists is not None:
        options = [f"-o=Dir::Etc::sourcelist={lists / 'sources.list'}",
                   "-o=Dir::Etc::sourceparts=-", f"-o=Dir::State::lists={lists / 'lists'}",
                   f"-o=Dir::Cache={lists / 'cache'}", "-o=APT::Sandbox::User=root"]  # fmt: skip
    tool = "apt-cache" if args[0] in ("policy", "show") else "apt-get"
    proc = subprocess.run([tool, *options, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, check=False)  # fmt: skip
    return proc.stdout if proc.returncode == 0 else ""


def _candidate(lists: Path | None = None) -> str | None:
    found = re.search(r"Candidate: (\S+)", _apt("policy", "pgbackrest", lists=lists))
    return found[1] if found and found[1] != "(none)" else None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text.split("-")[0])[:3])


def pgbackrest_packages() -> PgBackRest:
    """pgBackRest >= 2.53 from Debian: bookworm, else bookworm-backports, else trixie's build
    (its binary runs on bookworm's libraries; its package is not installable there as a whole:
    it depends on trixie's t64-renamed libraries)."""
    cache = CACHE / "pgbackrest"
    cached = cache / "found.json"
    if cached.exists():
        found = json.loads(cached.read_text())
        debs = [cache / name for name in found["debs"]]
        if all(p.exists() for p in debs):
            return PgBackRest(debs, found["version"], found["note"])
    cache.mkdir(parents=True, exist_ok=True)
    seen = [f"bookworm: {_candidate() or 'none'}"]
    suites: list[tuple[str, Path | None]] = []
    if (bookworm := _candidate()) and _version(bookworm) >= PGBR_MIN:
        suites.append(("bookworm", None))
    for suite in ("bookworm-backports", "trixie"):
        lists = cache / f"apt-{suite}"
        (lists / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (lists / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        (lists / "sources.list").write_text(
            "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
            f"http://deb.debian.org/debian {suite} main\n"
        )
        _apt("update", lists=lists)
        version = _candidate(lists)
        seen.append(f"{suite}: {version or 'none'}")
        if version and _version(version) >= PGBR_MIN:
            suites.append((suite, lists))
    note = "apt-cache policy pgbackrest: " + ", ".join(seen)
    if not suites:
        return PgBackRest(note=note + f" — none is >= {'.'.join(map(str, PGBR_MIN))}")
    suite, lists = suites[0]
    version = _candidate(lists) or ""
    for old in cache.glob("*.deb"):
        old.unlink()
    _apt("download", f"pgbackrest={version}", lists=lists, cwd=cache)
    _apt("download", "libssh2-1", cwd=cache)  # bookworm's: the binary links libssh2.so.1
    debs = sorted(cache.glob("pgbackrest_*.deb")) + sorted(cache.glob("libssh2-1_*.deb"))
    if len(debs) != 2:
        return PgBackRest(note=note + f" — downloading pgbackrest {version} failed")
    if suite != "bookworm":
        note += (f"; used {suite}'s pgbackrest {version}: its binary, unmodified, on the "
                 "postgres container's bookworm libraries plus bookworm's libssh2-1")  # fmt: skip
    cached.write_text(json.dumps({"debs": [p.name for p in debs], "version": version,
                                  "note": note}))  # fmt: skip
    return PgBackRest(debs, version, note)


def install_pgbackrest(stack: Stack, found: PgBackRest) -> str:
    """Into the running postgres container, and as an image for the one-shot restore container.

    Returns the version ``pgbackrest version`` reports; raises BenchError if it does not run.
    """
    uid = stack.sh(f"docker exec {stack.pg} id -u postgres")
    stack.sh(f"install -d -o {uid} -m 0700 {PGBR_DIR} {PGBR_DIR}/repo && "
             f"install -d -m 0755 {PGBR_DIR}/debs")  # fmt: skip
    for deb in found.debs:
        docker("cp", str(deb), f"{stack.host.container}:{PGBR_DIR}/debs/{deb.name}")
    conf = (
        "[global]\nrepo1-path=/backups/pgbackrest/repo\nrepo1-retention-full=1\n"
        "compress-type=zst\ncompress-level=3\nprocess-max=2\nstart-fast=y\n"
        "log-level-console=warn\nlog-level-file=off\n\n"
        "[dfr]\npg1-path=/var/lib/postgresql/data\npg1-socket-path=/var/run/postgresql\n"
    )
    stack.sh(f"cat > {PGBR_DIR}/pgbackrest.conf && chown {uid} {PGBR_DIR}/pgbackrest.conf",
             input=conf.encode())  # fmt: skip
    try:
        version = stack.sh(
            f"docker exec -u 0 {stack.pg} sh -c 'dpkg -i /backups/pgbackrest/debs/libssh2-1_*.deb "
            ">/dev/null && dpkg-deb --fsys-tarfile /backups/pgbackrest/debs/pgbackrest_*.deb | "
            "tar -x -C / ./usr/bin/pgbackrest && pgbackrest version'"
        )
        stack.sh(f"docker commit {stack.pg} {PGBR_IMAGE} >/dev/null")
    except Exception as error:  # any failure means: no pgBackRest here
        raise BenchError(f"pgBackRest does not run in the postgres container: {error}") from None
    return version


# --- steps ---------------------------------------------------------------------------------


Results = dict[str, float]


def drop_caches() -> bool:
    """Cold page cache (this machine's kernel is the target's too)."""
    command = ["sh", "-c", "sync && echo 3 > /proc/sys/vm/drop_caches"]
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


def _cpu_times() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields[:8]) - idle, sum(fields[:8])


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds used so far by this whole machine (both sides of the SSH connection: the
    target is a container here) and by this process's finished children (pyinfra)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return _cpu_times()[0] / CLOCK_TICKS, children.ru_utime + children.ru_stime


def quiet_gate(limit: float = 0.15, max_wait: float = 90) -> float:
    """Wait until this machine is less than ``limit`` busy over 2 s (at most ``max_wait`` s);
    return the busy share of the last window."""
    deadline = time.monotonic() + max_wait
    while True:
        busy0, total0 = _cpu_times()
        time.sleep(2)
        busy1, total1 = _cpu_times()
        share = (busy1 - busy0) / max(total1 - total0, 1)
        if share < limit or time.monotonic() > deadline:
            return share


class Bench:
    def __init__(self, stack: Stack, inventory: Path, workdir: Path, cold: bool) -> None:
        self.stack, self.inventory, self.workdir, self.cold = stack, inventory, workdir, cold
        self.busy: list[float] = []
        self.cpu = (0.0, 0.0)  # CPU seconds of the last pyinfra run: the machine's, pyinfra's

    def prepare(self) -> None:
        """Gate on a quiet machine, then drop the page cache."""
        self.busy.append(quiet_gate())
        if self.cold:
            drop_caches()

    def run_pyinfra(self, deploy: str, *extra: str, **data: object) -> PyinfraRun:
        before = _cpu_seconds()
        run = pyinfra(self.inventory, deploy, *extra, data=data, timeout=3600)
        after = _cpu_seconds()
        self.cpu = (after[0] - before[0], after[1] - before[1])
        if run.returncode != 0:
            raise BenchError(f"pyinfra {deploy} failed: {run.stderr[-3000:]}")
        return run

    def record_cpu(self, r: Results, key: str) -> None:
        r[f"{key}.cpu"], r[f"{key}.cpu.here"] = self.cpu

    def timed_in(self, mounts: str, script: str, image: str | None = None) -> tuple[float, str]:
        """Seconds of ``script`` inside a one-shot container (its start not counted), and the
        script's output."""
        inner = (f's=$(date +%s.%N); out=$({script}); e=$(date +%s.%N); '
                 'printf "%s\\n%s %s\\n" "$out" "$s" "$e"')  # fmt: skip
        out = self.stack.sh(
            f"docker run --rm --network none {mounts} --entrypoint bash "
            f"{image or self.stack.pg_image} -o pipefail -c {shlex.quote(inner)}"
        )
        *lines, times = out.splitlines()
        start, end = (float(x) for x in times.split())
        return end - start, "\n".join(lines).strip()

    # 5. raw SSH
    def raw_ssh(self, r: Results) -> str:
        self.prepare()
        run = self.run_pyinfra("bench/backup_restore.py", raw_ssh_bytes=RAW_SSH_BYTES)
        _, rate, seconds = progress(run, "raw ssh")
        r["ssh.s"], r["ssh.mbps"] = seconds, rate
        r["ssh.run.s"] = run.seconds
        self.record_cpu(r, "ssh")
        self.prepare()
        to_file = self.run_pyinfra("bench/backup_restore.py", raw_ssh_bytes=RAW_SSH_BYTES,
                                   raw_ssh_to=self.workdir / "zeros.partial")  # fmt: skip
        _, r["ssh.file.mbps"], r["ssh.file.s"] = progress(to_file, "raw ssh")
        if "transfers go through OpenSSH" in run.stderr:
            return f"OpenSSH's ssh, {CIPHERS.split(',')[0]}"
        cipher = re.search(r"paramiko cipher: (.*)", run.stderr)
        return f"paramiko, {cipher[1].strip()}" if cipher else "unknown"

    # 4. physical limits
    def physical(self, r: Results) -> None:
        pgdata = f"-v {PROJECT}_pgdata:/data:ro"
        filestore = f"-v {PROJECT}_odoo-data:/odoo:ro"
        self.prepare()
        r["phys.pgdata.s"], _ = self.timed_in(pgdata, "tar -C /data --exclude=./pg_wal -cf - . "
                                                      "| cat >/dev/null")  # fmt: skip
        r["phys.zstd.s"], out = self.timed_in(pgdata, "tar -C /data --exclude=./pg_wal -cf - . "
                                                      "| zstd -q -T0 -1 -c | wc -c")  # fmt: skip
        r["phys.zstd.bytes"] = float(out)
        self.prepare()
        r["phys.fs.s"], _ = self.timed_in(filestore, f"tar -C /odoo/filestore/{DB} -cf - . "
                                                     "| cat >/dev/null")  # fmt: skip

    # 1. ours
    def ours_backup(self, r: Results) -> Path:
        backup_dir = self.workdir / "backups"
        backup_dir.mkdir(exist_ok=True)
        self.prepare()
        run = self.run_pyinfra("tasks/backup.py", backup_dir=backup_dir)
        r["ours.backup.s"] = run.seconds
        self.record_cpu(r, "ours.backup")
        (archive,) = sorted(backup_dir.glob("*.dfrbak"))
        r["ours.backup.bytes"] = archive.stat().st_size
        _, r["ours.sent.mbps"], r["ours.sent.s"] = progress(run, archive.name)
        # The host keeps a copy: its file times give dfr-backup create and its parts.
        d = f"{HOST_BACKUPS}/{archive.name}"
        times = self.stack.sh(
            f"stat -c '%n %.9W %.9Y' {d} {d}/database {d}/filestore.tar {d}/manifest.json "
            f"&& echo last $(find {d}/database -type f -printf '%T@\\n' | sort -n | tail -n1) "
            f"&& du -sb {d}/database {d}/filestore.tar"
        ).splitlines()
        born = {ln.split()[0]: float(ln.split()[1]) for ln in times[:4]}
        changed = {ln.split()[0]: float(ln.split()[2]) for ln in times[:4]}
        last_dump_write = float(times[4].split()[1])
        r["ours.create.s"] = changed[f"{d}/manifest.json"] - born[d]
        r["ours.db.s"] = last_dump_write - born[f"{d}/database"]
        fs = f"{d}/filestore.tar"
        r["ours.fs.s"] = changed[fs] - born[fs]
        r["ours.db.bytes"] = float(times[5].split()[0])
        r["ours.fs.bytes"] = float(times[6].split()[0])
        return archive

    def ours_database_only(self, r: Results) -> None:
        """Our backup's pg_dump command alone (what pgBackRest's row does: the database only)."""
        r["ours.dbonly.s"], r["ours.dbonly.bytes"] = self.timed_into(
            "bench-dump",
            f"pg_dump -d {DB} --format=directory --jobs=2 --compress={DUMP_COMPRESSION} "
            "--no-owner -f /backups/bench-dump/db",
        )

    def timed_into(self, directory: str, command: str) -> tuple[float, float]:
        """Seconds of ``command`` run as postgres in the postgres container, writing into a fresh
        ``/backups/<directory>`` (cold cache), and the bytes it wrote there; then removed."""
        uid = self.stack.sh(f"docker exec {self.stack.pg} id -u postgres")
        target = f"{HOST_BACKUPS}/{directory}"
        self.stack.sh(f"rm -rf {target} && install -d -o {uid} -m 0700 {target}")
        self.prepare()
        seconds = self.stack.timed(f"docker exec -u postgres {self.stack.pg} {command}")
        written = float(self.stack.sh(f"du -sb {target} | cut -f1"))
        self.stack.sh(f"rm -rf {target}")
        return seconds, written

    def ours_stream(self, r: Results, archive: Path) -> None:
        """The SSH transfer alone, with its in-flight check: the host's copy of the backup
        fetched by the product's command (`tasks/backup.py --data fetch=NAME`: the host reads
        it ahead of the tar it sends, this side checks every part's sha256 as it arrives and
        writes it around the page cache). Cold: the page cache is dropped first."""
        self.prepare()
        fetched = self.workdir / "fetched"
        run = self.run_pyinfra("tasks/backup.py", fetch=archive.name, backup_dir=fetched)
        _, r["ours.stream.mbps"], r["ours.stream.s"] = progress(run, archive.name)
        r["ours.stream.run.s"] = run.seconds
        self.record_cpu(r, "ours.stream")
        shutil.rmtree(fetched)

    def ours_restore(self, r: Results, archive: Path, expected: dict[str, int]) -> None:
        """From the copy the host kept of the backup (same manifest: nothing uploaded), then
        from an upload: the same file under another name, of which the host has no copy."""
        self._restore(r, "ours", archive, expected)
        uploaded = archive.rename(archive.with_name("upload-" + archive.name))
        run = self._restore(r, "ours.up", uploaded, expected)
        _, r["ours.upload.mbps"], r["ours.upload.s"] = progress(run, f"upload {uploaded.name}")
        uploaded.unlink()
        self.stack.sh(f"/opt/dfr/prod/bin/dfr-backup remove {archive.name}")

    def _restore(
        self, r: Results, key: str, backup_file: Path, expected: dict[str, int]
    ) -> PyinfraRun:
        self.prepare()
        # -vvv: pyinfra prints the host's output, dfr-restore's time-stamped log lines with it.
        run = self.run_pyinfra("tasks/restore.py", "-vvv", backup_file=backup_file,
                               confirm="prod")  # fmt: skip
        r[f"{key}.restore.s"] = run.seconds
        self.record_cpu(r, f"{key}.restore")
        r.update({f"{key}.{phase}": seconds for phase, seconds in restore_phases(run).items()})
        verify(self.stack, expected, DB, f"our restore (tasks/restore.py, {backup_file.name})")
        self.drop_old_databases()
        return run

    def drop_old_databases(self) -> None:
        for old in self.stack.psql("SELECT datname FROM pg_database WHERE datname LIKE "
                                   "'dfr_old_%'", db="postgres").split():  # fmt: skip
            self.stack.psql(f'DROP DATABASE "{old}" WITH (FORCE)', db="postgres")
            self.stack.sh(
                f"docker exec -u 0 {self.stack.odoo} rm -rf /var/lib/odoo/filestore/{old}"
            )

    # 2. Odoo's method
    def odoo(self, r: Results, expected: dict[str, int]) -> None:
        odoo, zipped = self.stack.odoo, "/var/lib/odoo/bench/odoo.zip"
        self.stack.sh(f"docker exec -u odoo {odoo} mkdir -p /var/lib/odoo/bench")
        self.prepare()
        r["odoo.backup.s"] = self.stack.timed(
            f"docker exec {ODOO_EXEC} {odoo} odoo db dump {DB} {zipped}"
        )
        r["odoo.backup.bytes"] = float(self.stack.sh(f"docker exec {odoo} stat -c %s {zipped}"))
        self.prepare()
        r["odoo.restore.s"] = self.stack.timed(
            f"docker exec {ODOO_EXEC} {odoo} odoo db load {ODOO_COPY} {zipped}"
        )
        verify(self.stack, expected, ODOO_COPY, "Odoo's restore (odoo db load)")
        self.stack.psql(f'DROP DATABASE "{ODOO_COPY}" WITH (FORCE)', db="postgres")
        self.stack.sh(f"docker exec -u 0 {odoo} rm -rf /var/lib/odoo/bench "
                      f"/var/lib/odoo/filestore/{ODOO_COPY}")  # fmt: skip

    # 3. physical backups
    def physical_wal(self, on: bool) -> None:
        """The stack runs wal_level = minimal (templates/postgresql.conf.j2); pg_basebackup and
        pgBackRest need replica WAL and WAL senders: set for their steps, then reset (each a
        postgres restart, not timed)."""
        s = self.stack
        s.compose("stop", "odoo")
        if on:
            s.psql("ALTER SYSTEM SET wal_level = replica;\nALTER SYSTEM SET max_wal_senders = 10;")
        else:
            s.psql("ALTER SYSTEM RESET wal_level;\nALTER SYSTEM RESET max_wal_senders;")
        s.sh(f"docker restart {s.pg} >/dev/null")
        s.wait_for_postgres()
        s.compose("up", "-d", "--wait", "odoo")

    def basebackup(self, r: Results) -> None:
        r["bb.backup.s"], r["bb.backup.bytes"] = self.timed_into(
            "bench-basebackup",
            "pg_basebackup -D /backups/bench-basebackup -Ft -X stream -c fast "
            "--compress=server-zstd:level=3,workers=2",
        )

    def pgbackrest(self, r: Results, expected: dict[str, int], first: bool) -> None:
        s, pg = self.stack, self.stack.pg
        s.compose("stop", "odoo")
        s.psql(f"ALTER SYSTEM SET archive_mode = on;\n"
               f"ALTER SYSTEM SET archive_command = '{PGBR} archive-push %p';\n")  # fmt: skip
        s.sh(f"docker restart {pg} >/dev/null")
        s.wait_for_postgres()
        # pgBackRest reports on stdout: sent to stderr so that a failure shows why.
        if first:
            s.sh(f"docker exec -u postgres {pg} {PGBR} stanza-create >&2")
        s.sh(f"docker exec -u postgres {pg} {PGBR} check >&2")
        self.prepare()
        r["pgbr.backup.s"] = s.timed(f"docker exec -u postgres {pg} {PGBR} --type=full backup")
        info = json.loads(s.sh(f"docker exec -u postgres {pg} {PGBR} --output=json info"))
        r["pgbr.backup.bytes"] = float(info[0]["backup"][-1]["info"]["repository"]["delta"])
        # Restore the cluster into an empty data directory, start it, wait for promotion.
        s.compose("stop", "postgres")
        s.sh(f"docker run --rm --network none -v {PROJECT}_pgdata:/data --entrypoint find "
             f"{s.pg_image} /data -mindepth 1 -delete")  # fmt: skip
        self.prepare()
        promoted = (f"docker exec -u postgres {pg} psql -X -tAq -d postgres "
                    "-c 'SELECT pg_is_in_recovery()' 2>/dev/null")  # fmt: skip
        r["pgbr.restore.s"] = s.timed(
            f"docker run --rm --user postgres --network none "
            f"-v {PROJECT}_pgdata:/var/lib/postgresql/data -v {HOST_BACKUPS}:/backups "
            f"--entrypoint pgbackrest {PGBR_IMAGE} --config={PGBR_CONF} --stanza=dfr "
            f"--type=immediate --target-action=promote restore && docker start {pg} && n=0 && "
            f'until [ "$({promoted})" = f ]; do n=$((n+1)); [ $n -lt 6000 ] || exit 1; '
            "sleep 0.1; done"
        )
        verify(s, expected, DB, "pgBackRest restore")
        s.psql("\n".join(f"ALTER SYSTEM RESET {name};" for name in (
            "archive_mode", "archive_command", "restore_command", "recovery_target",
            "recovery_target_action")))  # fmt: skip
        s.sh(f"docker restart {pg} >/dev/null")
        s.wait_for_postgres()
        s.compose("up", "-d", "--wait", "odoo")


RESTORE_PHASES = (  # dfr-restore's log lines: (start, end, key)
    # createdb + pg_restore -j 3, the filestore unpacked and every part's sha256, at once
    ("restoring into the new database", "every part matches", "r.db.s"),
    # tables, modules, attachments ∥ vacuumdb --analyze-only
    ("checking the new database", "tables, ", "r.check.s"),
    ("swapping", "Odoo is healthy", "r.swap.s"),  # stop Odoo, rename, start it until healthy
)


def restore_phases(run: PyinfraRun) -> Results:
    """Seconds of dfr-restore's phases and of the whole script, from its log lines."""
    stamps: list[tuple[str, float]] = []
    for found in re.finditer(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z dfr-restore\[\w+\] (.*)",
                             run.stderr):  # fmt: skip
        when = calendar.timegm(time.strptime(found[1], "%Y-%m-%dT%H:%M:%S"))
        stamps.append((found[3], when + float(found[2] or 0)))
    phases: Results = {}
    for start, end, key in RESTORE_PHASES:
        began = next((w for t, w in stamps if t.startswith(start)), None)
        ended = next((w for t, w in stamps if t.startswith(end)), None)
        if began is not None and ended is not None:
            phases[key] = ended - began
    if stamps:
        phases["r.host.s"] = stamps[-1][1] - stamps[0][1]
    return phases


def progress(run: PyinfraRun, label: str) -> tuple[float, float, float]:
    """(MB, MB/s, seconds) of the last transfer whose label contains ``label``."""
    for line in reversed(run.stderr.splitlines()):
        found = PROGRESS.search(line)
        if found and label in found["label"]:
            return (float(found["mb"].replace(",", "")), float(found["rate"].replace(",", "")),
                    float(found["s"]))  # fmt: skip
    raise BenchError(f"no transfer progress line for {label!r} in the pyinfra output")


# --- report --------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}".replace(",", " ")


def _phases(m: dict[str, float], key: str) -> str:
    keys = [f"{key}.{phase}" for _, _, phase in RESTORE_PHASES]
    if not all(k in m for k in keys):
        return "—"
    return " + ".join(f"{m[k]:.1f}" for k in keys)


def report(
    m: dict[str, float], ds: Dataset, sizes: dict[str, float], context: dict[str, str], runs: int
) -> str:
    db, fs = sizes["db"], sizes["fs"]
    mb = 1e6

    def rate(size: float, key: str) -> str:
        return _fmt(size / m[key] / mb, 0) if key in m else "—"

    def size(key: str) -> str:
        return _fmt(m[key] / mb, 0) if key in m else "—"

    def sec(key: str) -> str:
        return _fmt(m.get(key))

    rows = [
        (
            "**ours, whole instance**: `pyinfra INVENTORY tasks/backup.py` (made and streamed "
            "at once, verified as it arrives) → `tasks/restore.py --data confirm=prod` from the "
            "copy the host kept (verified there, nothing uploaded)",
            sec("ours.backup.s"),
            rate(db + fs, "ours.backup.s"),
            size("ours.backup.bytes"),
            sec("ours.restore.s"),
            rate(db + fs, "ours.restore.s"),
        ),
        (
            "↳ the restore of a backup the host does not hold: its database part uploaded, "
            "then restored while its filestore arrives",
            "",
            "",
            "",
            sec("ours.up.restore.s"),
            rate(db + fs, "ours.up.restore.s"),
        ),
        (
            "↳ host side: `dfr-backup create` (pg_dump ∥ the filestore sent as it is tarred, then "
            "the dump, manifest) / `dfr-restore` (pg_restore ∥ filestore ∥ sha256 check, checks, "
            "swap)",
            sec("ours.create.s"),
            rate(db + fs, "ours.create.s"),
            "",
            sec("ours.r.host.s"),
            rate(db + fs, "ours.r.host.s"),
        ),
        (
            f"↳ its database part: `pg_dump -Fd -j 2 --compress={DUMP_COMPRESSION}` / restore "
            "phases: pg_restore ∥ filestore ∥ sha256 + checks ∥ ANALYZE + swap (Odoo stopped, "
            "started, healthy)",
            sec("ours.db.s"),
            rate(db, "ours.db.s"),
            size("ours.db.bytes"),
            _phases(m, "ours"),
            "",
        ),
        (
            "↳ its filestore part: a plain `tar` (mostly compressed media), sent as it is made "
            "while pg_dump runs",
            sec("ours.fs.s"),
            rate(fs, "ours.fs.s"),
            size("ours.fs.bytes"),
            "",
            "",
        ),
        (
            f"↳ **database only**: the same `pg_dump -Fd -j 2 --compress={DUMP_COMPRESSION}` "
            "alone (what pgBackRest's row backs up)",
            sec("ours.dbonly.s"),
            rate(db, "ours.dbonly.s"),
            size("ours.dbonly.bytes"),
            "",
            "",
        ),
        (
            "↳ SSH transfer alone: the host's copy fetched, cold (`tasks/backup.py --data "
            "fetch=NAME`: read ahead on the host, sha256 of every part as it arrives, written "
            "to disk) / the restore's upload, its filestore paced by the restore that reads it",
            sec("ours.stream.s"),
            _fmt(m.get("ours.stream.mbps"), 0),
            "",
            sec("ours.upload.s"),
            _fmt(m.get("ours.upload.mbps"), 0),
        ),
        (
            "**Odoo's method, whole instance**: `odoo db dump` (plain `pg_dump --no-owner` + "
            "filestore copy + manifest, ZIP_DEFLATED) → `odoo db load` (new DB, `psql -f`, "
            "filestore moved in), on the host",
            sec("odoo.backup.s"),
            rate(db + fs, "odoo.backup.s"),
            size("odoo.backup.bytes"),
            sec("odoo.restore.s"),
            rate(db + fs, "odoo.restore.s"),
        ),
    ]
    if "pgbr.backup.s" in m:
        rows.append((f"**pgBackRest {context['pgbackrest']} full** (cluster, zst-3, process-max 2)"
                     " → restore into an empty PGDATA + start until out of recovery",
                     sec("pgbr.backup.s"), rate(db, "pgbr.backup.s"), size("pgbr.backup.bytes"),
                     sec("pgbr.restore.s"), rate(db, "pgbr.restore.s")))  # fmt: skip
    rows += [
        (
            "`pg_basebackup -Ft -X stream --compress=server-zstd:3,workers=2` (cluster)",
            sec("bb.backup.s"),
            rate(db, "bb.backup.s"),
            size("bb.backup.bytes"),
            "—",
            "",
        ),
        (
            f"physical limit: cold `tar \\| cat >/dev/null` of PGDATA without pg_wal "
            f"({_fmt(sizes['pgdata'] / mb, 0)} MB)",
            sec("phys.pgdata.s"),
            rate(sizes["pgdata"], "phys.pgdata.s"),
            "",
            "",
            "",
        ),
        (
            "compressor limit: `tar \\| zstd -T0 -1` of the same bytes, warm",
            sec("phys.zstd.s"),
            rate(sizes["pgdata"], "phys.zstd.s"),
            size("phys.zstd.bytes"),
            "",
            "",
        ),
        (
            "physical limit: cold `tar \\| cat >/dev/null` of the filestore",
            sec("phys.fs.s"),
            rate(fs, "phys.fs.s"),
            "",
            "",
            "",
        ),
        (
            f"raw SSH: {RAW_SSH_BYTES >> 20} MiB of `head -c … /dev/zero` through "
            f"tasks/transfer.py ({context['cipher']})",
            sec("ssh.s"),
            _fmt(m.get("ssh.mbps"), 0),
            "",
            "",
            "",
        ),
        (
            "↳ the same written to a file, as a backup is (tasks/disk_writer.py: O_DIRECT)",
            sec("ssh.file.s"),
            _fmt(m.get("ssh.file.mbps"), 0),
            "",
            "",
            "",
        ),
    ]
    table = ["| method | backup s | MB/s | output MB | restore s | MB/s |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    table += ["| " + " | ".join(row) + " |" for row in rows]

    def ratio(a: str, b: str) -> float | None:
        return m[a] / m[b] if a in m and b in m and m[b] else None

    goals = [
        (
            "whole-instance backup vs Odoo's zip (the whole pyinfra command, streamed here, "
            "against the zip made on the host)",
            "≥ 5×",
            ratio("odoo.backup.s", "ours.backup.s"),
            5.0,
        ),
        (
            "whole-instance restore vs Odoo's (the whole pyinfra command, from the host's copy "
            "as Odoo's load is from a zip on the host)",
            "≥ 2×",
            ratio("odoo.restore.s", "ours.restore.s"),
            2.0,
        ),
        (
            "… the same, of a backup uploaded from here",
            "≥ 2×",
            ratio("odoo.restore.s", "ours.up.restore.s"),
            2.0,
        ),
        (
            "database backup vs pgBackRest full (our pg_dump alone / pgBackRest)",
            "≥ 1×",
            ratio("pgbr.backup.s", "ours.dbonly.s"),
            1.0,
        ),
        (
            "streaming efficiency: our download (checked as it arrives) / raw SSH",
            "≥ 80 %",
            ratio("ours.stream.mbps", "ssh.mbps"),
            0.8,
        ),
        (
            "… the same against raw SSH written to a file (what every download also does; "
            "for context, not the goal)",
            "",
            ratio("ours.stream.mbps", "ssh.file.mbps"),
            None,
        ),
    ]
    if "pgbr.backup.s" not in m:
        goals[3] = ("database backup vs **pg_basebackup** (pgBackRest could not be measured)",
                    "≥ 1×", ratio("bb.backup.s", "ours.dbonly.s"), 1.0)  # fmt: skip
    goal_rows = ["| ratio | goal | measured | met |", "|---|---|---|---|"]
    for text, goal, value, needed in goals:
        shown = "—" if value is None else (f"{value:.0%}" if "%" in goal else f"{value:.2f}×")
        if not goal and value is not None:
            shown = f"{value:.0%}"
        met = "—" if value is None or needed is None else ("yes" if value >= needed else "**no**")
        goal_rows.append(f"| {text} | {goal} | {shown} | {met} |")

    lines = [
        HEADING,
        "",
        f"Command: `.venv/bin/python -m bench.backup_restore --scale "
        f"{ds.scale:g}{f' --runs {runs}' if runs > 1 else ''}` ({context['when']}, "
        f"{runs} run{'s' if runs > 1 else ''}{', medians' if runs > 1 else ''}).",
        "",
        f"Machine: {context['machine']}. One production-like target over SSH (the harness's "
        "docker-ready Debian 12 container with its own Docker engine, on this machine: target "
        "and controller share the same cores and disk), the prod stack deployed with "
        f"`deploy.py` (PostgreSQL {context['pg']} stand-in, the Odoo test double), "
        f"`backup_jobs = 2`, `restore_jobs = 3`. {context['cache']}",
        "",
        f"Dataset ({context['dataset_time']}): {ds.describe()}. Measured: database "
        f"{_fmt(db / mb, 0)} MB (`pg_database_size`), filestore {_fmt(fs / mb, 0)} MB in "
        f"{_fmt(sizes['files'], 0)} files, PGDATA without pg_wal {_fmt(sizes['pgdata'] / mb, 0)} "
        "MB.",
        "",
        "MB/s is the size of what is backed up over the time: database + filestore for the "
        "whole-instance rows, the database for the database-only and cluster rows "
        "(`pg_database_size`, as in backup-practice.md B.4), the bytes read for the limits, "
        "the bytes moved for SSH. Every restore was verified: row counts and data bytes of "
        "`pgbench_accounts`, `pgbench_branches`, `pgbench_tellers`, `mail_message`, "
        "`ir_attachment`, the number of indexes, and the filestore's file count and bytes "
        "(the pgBackRest row restores the cluster only; the filestore is not its business).",
        "",
        *table,
        "",
        *goal_rows,
        "",
        *where_the_time_goes(m),
        *cpu_split(m),
        "How the rows were taken:",
        "",
        "* ours: the time of the whole `pyinfra` command. Backup: connect, facts, the backup "
        "tools' operations, `dfr-backup create --stream` (pg_dump while the filestore's tar is "
        "sent as it is made, then the dump, the manifest last; sha256-checked here as it "
        "arrives and written around the page cache), rename, retention. Restore: "
        "the local manifest (the host keeps this very backup: compared by the sha256 of the "
        "manifest, which names every part's sha256) or the local sha256 check and the upload, "
        "then `dfr-restore` — pg_restore -j 3 into a new database, the filestore and the "
        "sha256 of every part at once, checks, swap with Odoo stopped and started until "
        "healthy — and the health check through nginx. `dfr-backup create` and its parts come "
        "from the file times of the copy kept on the host (birth of the backup directory to "
        "the manifest's last write; birth of `database/` to the last write of a dump file; "
        "birth to last write of "
        "`filestore.tar`); `dfr-restore`'s phases from its log lines (milliseconds); the "
        "SSH rates from tasks/transfer.py's own progress line. PostgreSQL runs with the "
        "stack's `wal_level = minimal` for ours and Odoo's method alike (replica WAL only for "
        "the physical rows, which need it);",
        "* SSH: transfers go through OpenSSH's `ssh` (tasks/openssh.py), AES-GCM first, pinned "
        "to the host key pyinfra's paramiko connection verified; that connection (the "
        "deploy's commands, and transfers where `ssh` cannot log in) negotiates AES-GCM too "
        "(group_data/all.py), as paramiko's own first choice, aes128-ctr with hmac-sha2-256, "
        'computes its MAC in Python per packet (section "SSH cipher" below);',
        "* writing here: through the page cache this VM's kernel spends 2.3–3.2 s of system "
        "time on 1.4 GB (`dd bs=1M`), with O_DIRECT 0.15 s (`dd bs=4M oflag=direct`, "
        "1.2–1.7 GB/s), so downloads are written with O_DIRECT (tasks/disk_writer.py);",
        "* Odoo's method runs in the stack's Odoo container, as the database manager would: "
        "pg_dump and psql talk to PostgreSQL over the compose network; the zip stays on the "
        "host (no transfer is counted for it);",
        f"* {context['pgbackrest_note']};",
        "* the page cache was dropped before every timed step"
        f"{'' if context['cold'] == 'yes' else ' (not permitted here: warm cache)'}, "
        "after waiting for this machine to be < 15 % busy over 2 s "
        f"(busy share before the steps: {context['busy']}).",
    ]
    if context.get("noise"):
        lines += ["", f"Noise: {context['noise']}"]
    return "\n".join(_wrap(line) for line in lines) + "\n"


def _wrap(line: str, width: int = 100) -> str:
    """Prose wrapped like the rest of the docs; table rows and headings as they are."""
    if not line or line.startswith(("|", "#")):
        return line
    indent = "  " if line.startswith("* ") else ""
    return textwrap.fill(line, width, subsequent_indent=indent, break_long_words=False,
                         break_on_hyphens=False)  # fmt: skip


def where_the_time_goes(m: dict[str, float]) -> list[str]:
    """Decomposition of our commands, from the measured parts (empty if parts are missing)."""
    needed = ("ours.backup.s", "ours.create.s", "ours.db.s", "ours.fs.s", "ours.restore.s",
              "ours.r.host.s", "ours.up.restore.s", "ours.up.r.host.s", "ours.upload.s",
              "odoo.backup.s", "odoo.restore.s")  # fmt: skip
    if not all(k in m for k in needed):
        return []
    backup_rest = m["ours.backup.s"] - m["ours.create.s"]
    restore_rest = m["ours.restore.s"] - m["ours.r.host.s"]
    upload_rest = m["ours.up.restore.s"] - m["ours.up.r.host.s"]
    return [
        "Where our time goes:",
        "",
        f"* backup {m['ours.backup.s']:.1f} s = `dfr-backup create` {m['ours.create.s']:.1f} s "
        f"on the host (pg_dump {m['ours.db.s']:.1f} s while the filestore is tarred and sent "
        f"as it is made, {m['ours.fs.s']:.1f} s; then the dump sent, then the manifest with "
        "the sha256 of every part) + "
        f"{backup_rest:.1f} s of pyinfra (connect, facts, the backup tools' operations, the "
        "size estimate for the ETA, the last bytes, retention);",
        f"* restore from the host's copy {m['ours.restore.s']:.1f} s = `dfr-restore` "
        f"{m['ours.r.host.s']:.1f} s (phases in the table) + {restore_rest:.1f} s of pyinfra "
        "(the local manifest read, connect, facts, operations, the health check through "
        f"nginx); from an upload {m['ours.up.restore.s']:.1f} s = `dfr-restore` "
        f"{m['ours.up.r.host.s']:.1f} s, started once the database part is uploaded and fed "
        f"the filestore while it restores the database (the whole upload took "
        f"{m['ours.upload.s']:.1f} s) + {upload_rest:.1f} s of pyinfra (the local sha256 check "
        "of every part, connect, facts, the database part's upload, the health check);",
        f"* Odoo's `odoo db load` ({m['odoo.restore.s']:.1f} s) restores into a new database "
        "and moves the filestore in, nothing else: it checks no checksum, gathers no planner "
        "statistics, does not stop or restart Odoo and swaps nothing; ours checks and analyzes "
        f"the new database ({m.get('ours.r.check.s', 0):.1f} s), restarts Odoo "
        f"({m.get('ours.r.swap.s', 0):.1f} s of the swap phase) and checks the result before and "
        "after.",
        "",
    ]


def cpu_split(m: dict[str, float]) -> list[str]:
    """Whose CPU each command used: the target and this machine (the controller) share the same
    cores here, which two real machines would not."""
    commands = (
        ("raw SSH (1 GiB of zeros to /dev/null)", "ssh.run.s", "ssh"),
        ("the kept backup fetched (`--data fetch=NAME`)", "ours.stream.run.s", "ours.stream"),
        ("backup (`tasks/backup.py`)", "ours.backup.s", "ours.backup"),
        ("restore from the host's copy", "ours.restore.s", "ours.restore"),
        ("restore of an uploaded backup", "ours.up.restore.s", "ours.up.restore"),
    )
    cores = os.cpu_count() or 1
    rows = []
    for text, wall, key in commands:
        if not all(k in m for k in (wall, f"{key}.cpu", f"{key}.cpu.here")):
            continue
        used, here = m[f"{key}.cpu"], m[f"{key}.cpu.here"]
        rows.append(f"| {text} | {m[wall]:.1f} | {used:.1f} ({used / (cores * m[wall]):.0%}) | "
                    f"{here:.1f} | {used - here:.1f} |")  # fmt: skip
    if not rows:
        return []
    return [
        "Whose CPU the whole pyinfra commands used (CPU seconds from `/proc/stat` for the "
        "machine, `getrusage` of the pyinfra process for the controller). Target and "
        f"controller share these {cores} cores, so the controller's share (its `ssh`, "
        "the checks and writing here) is taken from the target's PostgreSQL, tar "
        "and sshd; between two machines it would not be:",
        "",
        f"| pyinfra command | wall s | CPU s, whole machine (share of {cores} cores) | "
        "of which the controller (pyinfra) | the rest (the target) |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ]


def write_docs(section: str) -> None:
    text = DOCS.read_text()
    start = text.find(HEADING)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        following = text.find("\n## ", start + len(HEADING))
        rest = text[following + 1 :] if following != -1 else ""
        text = text[:start] + section + ("\n" + rest if rest else "")
    DOCS.write_text(text)


def machine() -> str:
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    mem = re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())
    debian = Path("/etc/debian_version").read_text().strip()
    return (
        f"{os.cpu_count()} cores ({cpu[1].strip() if cpu else 'unknown CPU'}), "
        f"{int(mem[1]) / 1024**2 if mem else 0:.1f} GiB RAM, Debian {debian}, kernel "
        f"{platform.release()}, Docker {docker('version', '-f', '{{.Server.Version}}')}, "
        f"Python {platform.python_version()}"
    )


def foreign_containers(run_id: str) -> int:
    ours = set(docker("ps", "-q", "--filter", f"label={LABEL}.run={run_id}").split())
    return len(set(docker("ps", "-q").split()) - ours)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="dataset scale: 1 = ~2.3 GB database + ~1.07 GB filestore",
    )
    parser.add_argument("--runs", type=int, default=1, help="runs of every method (medians)")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    args = parser.parse_args()  # fmt: skip
    ds = Dataset(args.scale)
    found = pgbackrest_packages()
    print(f"pgBackRest: {found.note}", flush=True)
    bases = {"odoo": odoo_double_image(), "postgres": postgres_image(), "nginx": nginx_image()}
    docker_data = {
        "docker_install_mode": "distro",
        "docker_compose_plugin_src": str(COMPOSE_BINARY),
        "docker_compose_plugin_sha256": file_sha256(COMPOSE_BINARY),
    }
    measured: defaultdict[str, list[float]] = defaultdict(list)
    context = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine()}
    cold = drop_caches()
    context["cold"] = "yes" if cold else "no"
    with tempfile.TemporaryDirectory(prefix="dfr-bench-") as tmp:
        pool = HostPool(Path(tmp))
        noise = [foreign_containers(pool.run_id)]
        try:
            (host,) = pool.start(docker_ready_image(), prefix="bench")
            inventory = stack_inventory(pool, [host], "prod", bases, docker_data)
            print("deploying the prod stack", flush=True)
            run = pyinfra(inventory, "deploy.py")
            if run.returncode != 0:
                raise BenchError(f"deploy.py failed: {run.stderr[-3000:]}")
            stack = Stack(host)
            started = time.monotonic()
            expected = generate(stack, ds)
            context["dataset_time"] = f"generated in {time.monotonic() - started:.0f} s"
            sizes = {
                "db": float(stack.database_bytes()),
                "fs": float(expected["filestore bytes"]),
                "files": float(expected["filestore files"]),
                "pgdata": float(stack.sh(
                    f"docker run --rm -v {PROJECT}_pgdata:/data:ro --entrypoint du "
                    f"{stack.pg_image} -sb --exclude=pg_wal /data | cut -f1")),
            }  # fmt: skip
            context["pg"] = stack.psql("SHOW server_version")
            print(f"dataset: {json.dumps(expected)}", flush=True)
            bench = Bench(stack, inventory, Path(tmp), cold)
            pgbr_ok = bool(found.debs)
            context["pgbackrest_note"] = found.note
            if pgbr_ok:
                try:
                    context["pgbackrest"] = install_pgbackrest(stack, found).replace(
                        "pgBackRest ", ""
                    )
                    context["pgbackrest_note"] = (
                        f"pgBackRest {context['pgbackrest']}: {found.note}; installed in the "
                        "running postgres container (and committed as an image for the one-shot "
                        "restore container); `archive_mode = on` with `archive-push` only for "
                        "its backup and restore (a postgres restart each way, not timed), Odoo "
                        "stopped meanwhile; restore timed from `pgbackrest restore` "
                        "(`--type=immediate --target-action=promote`) into an emptied data "
                        "directory until `pg_is_in_recovery()` is false"
                    )
                except BenchError as error:
                    pgbr_ok = False
                    context["pgbackrest_note"] = (
                        f"**pgBackRest could not be measured**: {found.note}; {error}"
                    )
            if not pgbr_ok:
                context["pgbackrest_note"] = (
                    f"**pgBackRest could not be measured** ({found.note}): the nearest physical "
                    "method, pg_basebackup, stands in for it"
                )
            for number in range(args.runs):
                print(f"run {number + 1} of {args.runs}", flush=True)
                r: Results = {}

                def step(name: str, action: Callable[[], object], r: Results = r) -> object:
                    t0 = time.monotonic()
                    result = action()
                    took = time.monotonic() - t0
                    print(
                        f"  {name}: done in {took:.1f} s; gate {bench.busy[-1]:.0%} busy; "
                        + json.dumps({k: round(v, 2) for k, v in r.items()}),
                        flush=True,
                    )
                    return result

                context["cipher"] = str(step("raw SSH", lambda r=r: bench.raw_ssh(r)))
                step("physical limits", lambda r=r: bench.physical(r))
                archive = Path(str(step("our backup", lambda r=r: bench.ours_backup(r))))
                step("our download", lambda r=r, a=archive: bench.ours_stream(r, a))
                step("our pg_dump alone", lambda r=r: bench.ours_database_only(r))
                step("Odoo's zip", lambda r=r: bench.odoo(r, expected))
                bench.physical_wal(True)
                step("pg_basebackup", lambda r=r: bench.basebackup(r))
                if pgbr_ok:
                    step("pgBackRest", lambda r=r, first=number == 0: bench.pgbackrest(
                        r, expected, first))  # fmt: skip
                bench.physical_wal(False)
                step("our restore", lambda r=r, a=archive: bench.ours_restore(r, a, expected))
                for key, value in r.items():
                    measured[key].append(value)
                print("  " + json.dumps({k: round(v, 2) for k, v in r.items()}), flush=True)
            noise.append(foreign_containers(pool.run_id))
        finally:
            pool.close()
    medians = {k: statistics.median(v) for k, v in measured.items()}
    context["busy"] = (
        f"{min(bench.busy):.0%}–{max(bench.busy):.0%}" if bench.busy else "not measured"
    )
    context["cache"] = (
        "Page cache dropped before each timed step." if cold else "Page cache could not be "
        "dropped (warm runs)."
    )  # fmt: skip
    if max(noise) > 0:
        context["noise"] = (
            f"other containers were running on this Docker engine (another session's tests): "
            f"{noise[0]} at the start, {noise[-1]} at the end; the quiet gate waited for idle "
            "moments, but their work may still have overlapped some steps."
        )
    section = report(medians, ds, sizes, context, args.runs)
    print("raw: " + json.dumps({"medians": medians, "sizes": sizes, "context": context}))
    print()
    print(section)
    if not args.no_docs:
        write_docs(section)
        print(f"written into {DOCS.relative_to(PROJECT_ROOT)}")


# --- run by pyinfra as a deploy: the raw SSH throughput ------------------------------------


def _stream_zeros(size: int, dest: str | None) -> None:
    from pyinfra import host, logger
    from pyinfra.connectors.ssh import SSHConnector

    from tasks.disk_writer import DiskWriter
    from tasks.transfer import download

    if isinstance(host.connector, SSHConnector):
        transport = host.connector.client.get_transport()
        logger.info(f"paramiko cipher: {transport.local_cipher}, mac {transport.local_mac}")
    with DiskWriter(Path(dest)) if dest else open(os.devnull, "wb") as sink:
        download(f"head -c {size} /dev/zero", sink, f"{host.name}: raw ssh", total=size)
    if dest:
        os.unlink(dest)


def raw_ssh_deploy() -> None:
    from pyinfra import host
    from pyinfra.operations import python

    size = int(host.data.get("raw_ssh_bytes") or RAW_SSH_BYTES)
    dest = host.data.get("raw_ssh_to")
    python.call(name=f"Stream {size} bytes of zeros over SSH", function=_stream_zeros, size=size,
                dest=str(dest) if dest else None)  # fmt: skip


if __name__ == "builtins":
    raw_ssh_deploy()
elif __name__ == "__main__":
    try:
        main()
    except BenchError as error:
        sys.exit(f"benchmark failed: {error}")
