"""The Odoo-like dataset of ``bench/backup_restore.py``, and access to the stack that holds it.

Deterministic (seed 42, Python's ``random`` and PostgreSQL's own pgbench generator) and scaled
by ``scale`` (1.0 = the reference size of the backup-practice notes, section B.3: a ~2.3 GB
database and a ~1.07 GB filestore):

* ``pgbench_*`` (``pgbench -i -s 100·scale``, server-side generation): narrow numeric tables,
  the stand-in for account_move_line, stock_move …, with their primary keys;
* ``mail_message`` (800 000·scale rows): an html-ish ``body`` of 40–99 words from a 5 000-word
  vocabulary, a subject, a jsonb translated ``record_name`` as Odoo 17/18 stores translations,
  timestamps; 4 indexes;
* ``ir_attachment`` stored in the database (16 000·scale rows of ``db_datas bytea``): half
  16 KiB random (images), half ~20 KiB repetitive XML; plus one row per filestore file;
* the filestore ``filestore/dfr/<sha1[:2]>/<sha1>``: 2 075·scale random files, log-uniform
  20 KB–2 MB (JPEG/PNG/PDF stand-ins, ~84 % of the bytes), and 2 423·scale text files,
  log-uniform 2–400 KB.
"""

from __future__ import annotations

import math
import random
import shlex
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

from tests.harness.docker_cli import docker
from tests.harness.hosts import TargetHost

SEED = 42
PROJECT = "dfr-prod"
STACK_DIR = "/opt/dfr/prod"
DB = "dfr"
BIG_TABLES = ("pgbench_accounts", "pgbench_branches", "pgbench_tellers", "mail_message",
              "ir_attachment")  # fmt: skip


class BenchError(RuntimeError):
    """A step of the benchmark failed, or a restore did not verify: the run fails."""


@dataclass(frozen=True)
class Dataset:
    scale: float
    seed: int = SEED

    @property
    def pgbench_scale(self) -> int:
        return max(1, round(100 * self.scale))

    @property
    def messages(self) -> int:
        return max(100, round(800_000 * self.scale))

    @property
    def db_attachments(self) -> int:
        """Half random, half XML: always an even number."""
        return 2 * max(10, round(8_000 * self.scale))

    @property
    def binary_files(self) -> int:
        return max(2, round(2_075 * self.scale))

    @property
    def text_files(self) -> int:
        return max(2, round(2_423 * self.scale))

    def describe(self) -> str:
        return (
            f"scale {self.scale:g} (1 = the reference of backup-practice.md B.3), seed "
            f"{self.seed}: `pgbench -i -s {self.pgbench_scale}` (server-side generation) + "
            f"`mail_message` ({_n(self.messages)} rows: html-ish body of 40–99 words from a "
            f"5 000-word vocabulary, subject, jsonb translated `record_name`, timestamps; 4 "
            f"indexes) + `ir_attachment` ({_n(self.db_attachments)} `db_datas bytea` rows, half "
            f"16 KiB random, half ~20 KiB repetitive XML, plus one row per filestore file) "
            f"in the stack's `dfr` database, then `VACUUM ANALYZE; CHECKPOINT`; filestore "
            f"`filestore/dfr/<sha1[:2]>/<sha1>` of {_n(self.binary_files)} random files "
            f"(log-uniform 20 KB–2 MB) and {_n(self.text_files)} text files (log-uniform "
            f"2–400 KB)"
        )


def _n(count: int) -> str:
    return f"{count:,}".replace(",", " ")


class Stack:
    """The prod stack on a target host: commands in its containers, timed on the host's clock.

    Harness use (``docker exec`` into the target), not the system under test. The target is a
    container of this machine, so its clock is this machine's clock.
    """

    def __init__(self, host: TargetHost) -> None:
        self.host = host
        self.pg = self.sh(f"docker ps -q --filter label=com.docker.compose.project={PROJECT} "
                          "--filter label=com.docker.compose.service=postgres")  # fmt: skip
        self.odoo = self.sh(f"docker ps -q --filter label=com.docker.compose.project={PROJECT} "
                            "--filter label=com.docker.compose.service=odoo")  # fmt: skip
        if not self.pg or not self.odoo:
            raise BenchError("the prod stack's postgres and odoo containers are not running")
        self.pg_image = self.sh(f"docker inspect -f '{{{{.Config.Image}}}}' {self.pg}")

    def sh(self, command: str, input: bytes | None = None, timeout: float = 3600) -> str:
        """Run ``command`` with bash on the target host, as root; its stdout."""
        return docker("exec", "-i", self.host.container, "bash", "-o", "pipefail", "-c",
                      command, input=input, timeout=timeout)  # fmt: skip

    def timed(self, command: str, timeout: float = 3600) -> float:
        """Seconds ``command`` took on the host (its output discarded, failure raises)."""
        out = self.sh(f"s=$(date +%s.%N); {{ {command} ; }} >/dev/null; e=$(date +%s.%N); "
                      'echo "$s $e"', timeout=timeout)  # fmt: skip
        start, end = (float(x) for x in out.split()[-2:])
        return end - start

    def psql(self, sql: str, db: str = DB, user: str = "postgres") -> str:
        return self.sh(f"docker exec -i -u postgres {self.pg} psql -X -v ON_ERROR_STOP=1 "
                       f"-U {user} -d {db} -tAq", input=sql.encode())  # fmt: skip

    def copy_in(self, table: str, columns: str, chunks: Iterator[bytes], user: str = "dfr") -> None:
        """``COPY table (columns) FROM STDIN`` (text format), streamed from this machine."""
        sql = f"COPY {table} ({columns}) FROM STDIN"
        inner = (f"docker exec -i -u postgres {self.pg} psql -X -v ON_ERROR_STOP=1 -U {user} "
                 f"-d {DB} -c {shlex.quote(sql)}")  # fmt: skip
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(
                ["docker", "exec", "-i", self.host.container, "bash", "-c", inner],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors,
            )  # fmt: skip
            assert proc.stdin is not None
            try:
                for chunk in chunks:
                    proc.stdin.write(chunk)
            finally:
                proc.stdin.close()
            if proc.wait(timeout=3600) != 0:
                errors.seek(0)
                text = errors.read().decode(errors="replace")
                raise BenchError(f"COPY {table} failed: {text[-1000:]}")

    def compose(self, *args: str, timeout: float = 600) -> str:
        return self.sh(f"cd {STACK_DIR} && docker compose -p {PROJECT} {' '.join(args)}",
                       timeout=timeout)  # fmt: skip

    def wait_for_postgres(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = docker("exec", self.host.container, "sh", "-c",
                           f"docker exec -u postgres {self.pg} psql -X -tAq -d postgres "
                           "-c 'SELECT pg_is_in_recovery()'", check=False)  # fmt: skip
            if ready == "f":
                return
            time.sleep(0.5)
        raise BenchError(f"postgres did not accept connections within {timeout:.0f} s")

    def database_bytes(self, db: str = DB) -> int:
        return int(self.psql("SELECT pg_database_size(current_database())", db=db))

    def filestore_stats(self, db: str = DB) -> tuple[int, int]:
        """(files, bytes) of ``filestore/<db>`` in the Odoo data volume (Odoo may be stopped)."""
        out = self.sh(f"docker run --rm --network none -v {PROJECT}_odoo-data:/odoo:ro "
                      f"--entrypoint sh {self.pg_image} -c \"find /odoo/filestore/{db} -type f "
                      "-printf '%s\\n' 2>/dev/null || true\"")  # fmt: skip
        sizes = [int(x) for x in out.split()]
        return len(sizes), sum(sizes)

    def fingerprint(self, db: str = DB) -> dict[str, int]:
        """Row counts of the big tables, bytes in mail_message bodies and attachment data,
        indexes in the public schema, and the filestore's file count and bytes."""
        sql = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in BIG_TABLES) + (
            " UNION ALL SELECT 'mail_message body bytes', sum(octet_length(body)) "
            "FROM mail_message UNION ALL SELECT 'ir_attachment db_datas bytes', "
            "sum(octet_length(db_datas)) FROM ir_attachment UNION ALL SELECT 'indexes', "
            "count(*) FROM pg_indexes WHERE schemaname = 'public'"
        )
        rows = dict(line.split("|") for line in self.psql(sql, db=db).splitlines())
        prints = {k: int(v) for k, v in rows.items()}
        prints["filestore files"], prints["filestore bytes"] = self.filestore_stats(db)
        return prints


def verify(stack: Stack, expected: dict[str, int], db: str, what: str) -> None:
    found = stack.fingerprint(db)
    wrong = {k: (v, found.get(k)) for k, v in expected.items() if found.get(k) != v}
    if wrong:
        details = ", ".join(f"{k}: expected {a}, found {b}" for k, (a, b) in wrong.items())
        raise BenchError(f"{what}: the restored data does not verify: {details}")


# --- generation -----------------------------------------------------------------------------

MAIL_MESSAGE_DDL = """
CREATE TABLE mail_message (
    id serial PRIMARY KEY, subject varchar, body text, model varchar, res_id integer,
    record_name jsonb, message_type varchar NOT NULL, author_id integer,
    date timestamp, create_date timestamp, write_date timestamp);
"""
MAIL_MESSAGE_COLUMNS = (
    "subject, body, model, res_id, record_name, message_type, author_id, date, create_date, "
    "write_date"
)
INDEXES = """
CREATE INDEX mail_message_model_res_id_idx ON mail_message (model, res_id);
CREATE INDEX mail_message_author_id_idx ON mail_message (author_id);
CREATE INDEX mail_message_date_idx ON mail_message (date);
CREATE INDEX ir_attachment_res_idx ON ir_attachment (res_model, res_id);
"""
ATTACHMENT_COLUMNS = (
    "name, type, store_fname, checksum, file_size, mimetype, res_model, res_id, db_datas"
)
MODELS = ("sale.order", "account.move", "res.partner", "crm.lead", "stock.picking",
          "project.task")  # fmt: skip
SYLLABLES = [c + v for c in "bcdfghjklmnprstvz" for v in "aeiou"]


def vocabulary(rng: random.Random, size: int = 5000) -> list[str]:
    return ["".join(rng.choices(SYLLABLES, k=rng.randint(1, 4))) for _ in range(size)]


def mail_message_rows(ds: Dataset, chunk_rows: int = 20_000) -> Iterator[bytes]:
    rng = random.Random(ds.seed)
    words = vocabulary(rng)
    lines: list[str] = []
    epoch = 1_577_836_800  # 2020-01-01
    for i in range(1, ds.messages + 1):
        subject = " ".join(rng.choices(words, k=3 + i % 4))
        body = " ".join(rng.choices(words, k=40 + rng.randrange(60)))
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch + 120 * i))
        name = (f'{{"en_US": "Document {i}", "fr_FR": "Document {i} (fr)", '
                f'"es_ES": "Documento {i}"}}')  # fmt: skip
        lines.append(
            f"Re: {subject}\t<p>{body}</p>\t{MODELS[i % len(MODELS)]}\t{1 + (i * 7919) % 200_000}"
            f"\t{name}\t{('comment', 'notification', 'email')[i % 3]}\t{1 + (i * 31) % 5000}"
            f"\t{stamp}\t{stamp}\t{stamp}\n"
        )
        if len(lines) == chunk_rows:
            yield "".join(lines).encode()
            lines = []
    if lines:
        yield "".join(lines).encode()


def attachment_rows(ds: Dataset, chunk_rows: int = 500) -> Iterator[bytes]:
    """``db_datas`` attachments: 16 KiB random (images) and ~20 KiB repetitive XML in turn."""
    import hashlib

    rng = random.Random(ds.seed + 1)
    lines: list[str] = []
    for i in range(ds.db_attachments):
        if i % 2 == 0:
            data, mime, name = rng.randbytes(16_384), "image/png", f"image_{i}.png"
        else:
            fields = "".join(
                f'<field name="f{k}">value {k % 97} of record {i}</field>' for k in range(420)
            )
            data = f'<?xml version="1.0"?><record id="r{i}">{fields}</record>'.encode()
            mime, name = "application/xml", f"report_{i}.xml"
        lines.append(
            f"{name}\tbinary\t\\N\t{hashlib.sha1(data).hexdigest()}\t{len(data)}\t{mime}\t"
            f"{MODELS[i % len(MODELS)]}\t{1 + (i * 7919) % 200_000}\t\\\\x{data.hex()}\n"
        )
        if len(lines) == chunk_rows:
            yield "".join(lines).encode()
            lines = []
    if lines:
        yield "".join(lines).encode()


# Runs inside the Odoo container (as odoo) with the filestore's volume: writes the files, prints
# one ir_attachment row per file (tab-separated, the COPY columns of ATTACHMENT_COLUMNS).
FILESTORE_SCRIPT = r"""
import hashlib, math, os, random, sys

binary, text, seed, root = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = random.Random(seed)
syllables = [c + v for c in "bcdfghjklmnprstvz" for v in "aeiou"]
words = ["".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(5000)]
kinds = ["bin"] * binary + ["txt"] * text
rng.shuffle(kinds)
models = ["sale.order", "account.move", "res.partner", "crm.lead", "stock.picking"]


def loguniform(lo, hi):
    return int(math.exp(rng.uniform(math.log(lo), math.log(hi))))


out = []
for n, kind in enumerate(kinds):
    if kind == "bin":
        size = loguniform(20_000, 2_000_000)
        data = rng.randbytes(size)
        mime, ext = [("image/jpeg", "jpg"), ("image/png", "png"), ("application/pdf", "pdf")][n % 3]
    else:
        size = loguniform(2_000, 400_000)
        parts, total = [], 0
        while total < size:
            line = " ".join(rng.choices(words, k=12)) + "\n"
            parts.append(line)
            total += len(line)
        data = "".join(parts).encode()[:size]
        mime, ext = "text/plain", "txt"
    sha = hashlib.sha1(data).hexdigest()
    os.makedirs(os.path.join(root, sha[:2]), exist_ok=True)
    with open(os.path.join(root, sha[:2], sha), "wb") as handle:
        handle.write(data)
    out.append(f"file_{n}.{ext}\tbinary\t{sha[:2]}/{sha}\t{sha}\t{size}\t{mime}\t"
               f"{models[n % 5]}\t{1 + n}\t\\N\n")
sys.stdout.write("".join(out))
"""


def generate(stack: Stack, ds: Dataset, log: bool = True) -> dict[str, int]:
    """Load the dataset into the stack's database and filestore; return its fingerprint."""

    def step(text: str) -> None:
        if log:
            print(f"  dataset: {text}", flush=True)

    step(f"pgbench -i -s {ds.pgbench_scale}")
    stack.sh(f"docker exec -u postgres {stack.pg} pgbench -i -I dtGvp -q "
             f"-s {ds.pgbench_scale} -U dfr {DB}")  # fmt: skip
    step(f"mail_message, {ds.messages:,} rows")
    stack.psql(MAIL_MESSAGE_DDL, user="dfr")
    stack.copy_in("mail_message", MAIL_MESSAGE_COLUMNS, mail_message_rows(ds))
    step(f"ir_attachment, {ds.db_attachments:,} rows in the database")
    stack.copy_in("ir_attachment", ATTACHMENT_COLUMNS, attachment_rows(ds))
    step(f"filestore, {ds.binary_files + ds.text_files:,} files")
    root = f"/var/lib/odoo/filestore/{DB}"
    rows = stack.sh(
        f"docker exec -i -u odoo {stack.odoo} sh -c 'mkdir -p {root} && python3 - "
        f"{ds.binary_files} {ds.text_files} {ds.seed} {root}'",
        input=FILESTORE_SCRIPT.encode(),
    )
    stack.copy_in("ir_attachment", ATTACHMENT_COLUMNS, iter([rows.encode() + b"\n"]))
    step("indexes, VACUUM ANALYZE, CHECKPOINT")
    stack.psql(INDEXES, user="dfr")
    stack.psql("VACUUM ANALYZE")
    stack.psql("CHECKPOINT")
    return stack.fingerprint()


def log_uniform_mean(lo: float, hi: float) -> float:
    """Mean size of a log-uniform draw (documentation of the filestore's expected size)."""
    return (hi - lo) / math.log(hi / lo)
