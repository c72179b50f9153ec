"""The Odoo test double honours the official odoo:18.0 image's contract (odoo18-facts.md),
checked for real against a PostgreSQL 15 server. See docs/odoo-test-double.md.

Two long-running double containers share one PostgreSQL: `web` (threaded, list_db off, demo data
on, extra module dfr_probe) and `prefork` (workers = 2, proxy_mode, pinned db_name). One-shot
containers run the CLI through the image's entrypoint, as `docker run IMAGE odoo ...` would.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import socket
import struct
import subprocess
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.docker_cli import docker, owner_labels
from tests.harness.images import _build, base_image, odoo_double_image
from tests.harness.waiting import wait_for

RUN = uuid.uuid4().hex[:8]
LABELS = owner_labels(RUN)
DISABLED = "The database manager has been disabled by the administrator"
MASTER = "not-the-default-master"
WEB_CONF = f"""[options]
addons_path = /mnt/extra-addons
data_dir = /var/lib/odoo
list_db = False
admin_passwd = {MASTER}
without_demo = False
unknown_key_is_ignored = 1
"""
PREFORK_CONF = """[options]
addons_path = /mnt/extra-addons
data_dir = /var/lib/odoo
db_name = dfr
workers = 2
max_cron_threads = 1
proxy_mode = True
list_db = False
limit_time_real = 600
"""
# With every connection key in the file, `odoo db` works (the entrypoint appends nothing).
DB_TOOL_CONF = """[options]
addons_path = /mnt/extra-addons
data_dir = /var/lib/odoo
db_host = db
db_port = 5432
db_user = odoo
db_password = odoo
"""
PROBE_NEUTRALIZE = (
    "INSERT INTO ir_config_parameter (key, value) VALUES ('dfr_probe.neutralized', 'yes')"
    " ON CONFLICT (key) DO UPDATE SET value = 'yes';\n"
)
WS_KEY = base64.b64encode(b"0123456789abcdef").decode()
# The body of a migration script: it records what ran, and the version it was given.
MIGRATION_SCRIPT = """def migrate(cr, version):
    cr.execute("CREATE TABLE IF NOT EXISTS dfr_migration_log (id serial, entry varchar)")
    cr.execute("INSERT INTO dfr_migration_log (entry) VALUES (%s)", ({entry!r} + version,))
"""
MIGRATION_LOG = "SELECT string_agg(entry, ', ' ORDER BY id) FROM dfr_migration_log"


def probe_module(root: Path, version: str) -> Path:
    """An extra addon with a manifest and a data/neutralize.sql, as customers' modules have."""
    module = root / "dfr_probe"
    (module / "data").mkdir(parents=True)
    (module / "__init__.py").write_text("")
    manifest = {"name": "DFR probe", "version": version, "depends": ["base"], "license": "LGPL-3"}
    (module / "__manifest__.py").write_text(repr(manifest) + "\n")
    (module / "data" / "neutralize.sql").write_text(PROBE_NEUTRALIZE)
    return module


def migrating_module(
    root: Path, name: str, version: str, scripts: tuple[str, ...] = (),
    depends: tuple[str, ...] = ("base",), raises: str = "",
) -> Path:  # fmt: skip
    """An addon at ``version`` with migration scripts (``<version dir>/<file>.py``) that log
    `<name> <script> from <version given>` to the table dfr_migration_log, the ``raises`` one
    raising ``Exception(<name> cannot migrate)`` after logging."""
    module = root / name
    module.mkdir(parents=True)
    (module / "__init__.py").write_text("")
    manifest = {"name": name, "version": version, "depends": list(depends), "license": "LGPL-3"}
    (module / "__manifest__.py").write_text(repr(manifest) + "\n")
    for script in scripts:
        path = module / "migrations" / f"{script}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        body = MIGRATION_SCRIPT.format(entry=f"{name} {script} from ")
        if script == raises:
            body += f"    raise Exception({name + ' cannot migrate'!r})\n"
        path.write_text(body)
    return root


@dataclass
class Bed:
    image: str
    network: str
    pg: str
    web: str
    prefork: str
    tmp: Path

    def name(self, role: str) -> str:
        return f"dfr-test-odoo-{role}-{RUN}"

    def create(self, name: str, *command: str, args: tuple[str, ...] = (), conf: str = "") -> str:
        """docker create + docker cp of the config file (and nothing is started)."""
        network = ("--network", self.network)
        docker("create", "--name", name, *LABELS, *network, *args, self.image, *command)
        if conf:
            path = self.tmp / f"{name}.conf"
            path.write_text(conf)
            docker("cp", str(path), f"{name}:/etc/odoo/odoo.conf")
        return name

    def once(
        self, *command: str, args: tuple[str, ...] = (), conf: str = "", addons: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a one-shot container through the entrypoint; returns its exit code and output."""
        name = self.create(
            self.name(f"once-{uuid.uuid4().hex[:6]}"), *command, args=args, conf=conf
        )
        try:
            if addons:
                docker("cp", str(addons), f"{name}:/tmp/addons")
            return subprocess.run(
                ["docker", "start", "-a", name], capture_output=True, text=True, timeout=120
            )
        finally:
            docker("rm", "-f", "-v", name, check=False)  # -v: its anonymous volumes too

    def sql(self, db: str, query: str) -> str:
        return docker("exec", self.pg, "psql", "-U", "postgres", "-d", db, "-Atc", query)

    def pairs(self, db: str, query: str) -> dict[str, str]:
        """Two-column query results as a dict."""
        return dict(line.split("|", 1) for line in self.sql(db, query).splitlines())

    def port(self, container: str, port: int) -> int:
        return int(docker("port", container, f"{port}/tcp").splitlines()[0].rsplit(":", 1)[1])


def logs(container: str) -> str:
    done = subprocess.run(["docker", "logs", container], capture_output=True, text=True)
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def bed() -> Iterator[Bed]:
    image = odoo_double_image()
    pg_image = _build("pg15-for-double-tests", base_image())
    network = f"dfr-test-odoo-{RUN}"
    docker("network", "create", *LABELS, network)
    with tempfile.TemporaryDirectory(prefix="dfr-odoo-double-") as tmp:
        names = [f"dfr-test-odoo-{role}-{RUN}" for role in ("pg", "web", "prefork")]
        bed = Bed(image, network, *names, tmp=Path(tmp))
        try:
            docker("run", "-d", "--name", bed.pg, *LABELS, "--network", network,
                   "--network-alias", "db", pg_image)  # fmt: skip
            wait_for("postgres", lambda: docker("exec", bed.pg, "pg_isready", check=False))
            ports = ("-p", "127.0.0.1::8069", "-p", "127.0.0.1::8072")
            bed.create(bed.web, "odoo", "-d", "dfr", "-i", "dfr_probe", args=ports, conf=WEB_CONF)
            docker("cp", str(probe_module(bed.tmp / "v21", "2.1")), f"{bed.web}:/mnt/extra-addons/")
            docker("start", bed.web)
            wait_for("dfr initialised", lambda: "modules loaded" in logs(bed.web))
            bed.create(bed.prefork, args=ports, conf=PREFORK_CONF)  # CMD ["odoo"]
            docker("start", bed.prefork)
            for container in (bed.web, bed.prefork):
                wait_for("health", lambda c=container: _health_ok(bed, c))
            yield bed
        finally:
            for container in (bed.web, bed.prefork, bed.pg):
                docker("rm", "-f", "-v", container, check=False)
            docker("network", "rm", network, check=False)


def _health_ok(bed: Bed, container: str) -> bool:
    try:
        return request(bed.port(container, 8069), "/web/health")[0] == 200
    except OSError:
        return False


def request(
    port: int, path: str, method: str = "GET", headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        reply = conn.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        conn.close()


def handshake(port: int, **overrides: str | None) -> tuple[int, dict[str, str], socket.socket]:
    headers = {"Host": f"127.0.0.1:{port}", "Upgrade": "websocket", "Connection": "Upgrade",
               "Sec-WebSocket-Key": WS_KEY, "Sec-WebSocket-Version": "13",
               "Origin": "http://localhost"}  # fmt: skip
    headers.update(overrides)
    lines = [f"{k}: {v}" for k, v in headers.items() if v is not None]
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(("GET /websocket HTTP/1.1\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode())
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = sock.recv(4096)
        if not chunk:
            break
        raw += chunk
    head = raw.split(b"\r\n\r\n")[0].decode().split("\r\n")
    reply = dict(line.split(": ", 1) for line in head[1:])
    return int(head[0].split()[1]), {k.lower(): v for k, v in reply.items()}, sock


def test_image_keeps_the_official_contract(bed: Bed):
    config = json.loads(docker("image", "inspect", bed.image))[0]["Config"]
    assert config["User"] == "odoo"
    assert config["Entrypoint"] == ["/entrypoint.sh"] and config["Cmd"] == ["odoo"]
    assert set(config["ExposedPorts"]) == {"8069/tcp", "8071/tcp", "8072/tcp"}
    assert set(config["Volumes"]) == {"/var/lib/odoo", "/mnt/extra-addons"}
    assert "ODOO_RC=/etc/odoo/odoo.conf" in config["Env"]
    assert config["Labels"]["dfr.test-double"] == "odoo"
    script = (
        "id; stat -c '%U %n' /etc/odoo/odoo.conf /var/lib/odoo /mnt/extra-addons;"
        " grep -E '^[a-z_]+ *=' /etc/odoo/odoo.conf; command -v odoo curl wait-for-psql.py;"
        " python3 -m pip install --dry-run nothing 2>&1 | head -1"
    )
    out = bed.once("bash", "-c", script).stdout
    assert "uid=100(odoo) gid=101(odoo)" in out
    assert "odoo /etc/odoo/odoo.conf\nodoo /var/lib/odoo\nodoo /mnt/extra-addons" in out
    assert "addons_path = /mnt/extra-addons\ndata_dir = /var/lib/odoo\n/usr/bin/odoo" in out
    assert "/usr/local/bin/wait-for-psql.py" in out and "/usr/bin/curl" in out
    assert "externally-managed-environment" in out  # PEP 668, as on Ubuntu 24.04


def test_wait_for_psql_gives_up_after_the_timeout(bed: Bed):
    args = ("--db_host", "nowhere.invalid", "--db_port", "5432", "--db_user", "odoo")
    done = bed.once("wait-for-psql.py", *args, "--db_password", "odoo", "--timeout", "2")
    assert done.returncode == 1 and "Database connection failure" in done.stderr


def test_health_answers_json_without_cache(bed: Bed):
    for port in (bed.port(bed.web, 8069), bed.port(bed.prefork, 8069), bed.port(bed.prefork, 8072)):
        status, headers, body = request(port, "/web/health")
        assert (status, json.loads(body)) == (200, {"status": "pass"})
        assert headers["content-type"].startswith("application/json")
        assert headers["cache-control"] == "no-store"


def test_missing_database_is_created_and_initialised(bed: Bed):
    owner = bed.sql("postgres", "SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding),"
                    " datcollate FROM pg_database WHERE datname = 'dfr'")  # fmt: skip
    assert owner == "odoo|UTF8|C"
    modules = bed.pairs(
        "dfr", "SELECT name, state || ':' || coalesce(latest_version, '') FROM ir_module_module"
    )
    assert modules["base"] == "installed:18.0.1.3"
    assert modules["web"] == modules["bus"] == "installed:18.0.1.0"  # auto_install
    assert modules["dfr_probe"] == "installed:18.0.2.1"  # -i, found in /mnt/extra-addons
    assert modules["mail"] == "uninstalled:"
    params = bed.pairs("dfr", "SELECT key, value FROM ir_config_parameter")
    assert uuid.UUID(params["database.uuid"]) and uuid.UUID(params["database.secret"])
    assert params["web.base.url"] == "http://localhost:8069"
    cron = "SELECT c.active FROM ir_cron c JOIN ir_model_data d ON d.res_id = c.id AND"
    assert bed.sql("dfr", f"{cron} d.model = 'ir.cron' AND d.name = 'autovacuum_job'") == "t"
    # without_demo = False in the file is the boolean False: demo data is loaded
    assert bed.sql("dfr", "SELECT login FROM res_users ORDER BY id") == "admin\ndemo"
    assert "Azure Interior" in bed.sql("dfr", "SELECT name FROM res_partner")


def test_without_demo_false_on_the_command_line_disables_demo(bed: Bed):
    done = bed.once("odoo", "-d", "nodemo", "--without-demo=False", "--stop-after-init")
    assert done.returncode == 0, done.stderr
    assert bed.sql("nodemo", "SELECT login FROM res_users") == "admin"
    assert (
        bed.sql("nodemo", "SELECT DISTINCT demo FROM ir_module_module WHERE state = 'installed'")
        == "f"
    )


def test_existing_empty_database_is_not_initialised(bed: Bed):
    bed.sql("postgres", "CREATE DATABASE preexisting OWNER odoo")
    done = bed.once("odoo", "-d", "preexisting", "--stop-after-init")
    assert done.returncode == 0
    assert "Database preexisting not initialized, you can force it with `-i base`" in done.stderr
    assert (
        bed.sql("preexisting", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == "0"
    )


def test_database_user_postgres_is_refused(bed: Bed):
    done = bed.once("--db_user=postgres", args=("--entrypoint", "odoo"))
    assert done.returncode == 1
    assert "Using the database user 'postgres' is a security risk, aborting." in done.stderr


def test_modules_are_updated_only_when_asked(bed: Bed):
    addons = probe_module(bed.tmp / "v22", "2.2").parent
    version = "SELECT latest_version FROM ir_module_module WHERE name = 'dfr_probe'"
    plain = bed.once(
        "odoo", "-d", "dfr", "--addons-path=/tmp/addons", "--stop-after-init", addons=addons
    )
    assert plain.returncode == 0, plain.stderr
    assert bed.sql("dfr", version) == "18.0.2.1"
    upgraded = bed.once("odoo", "-d", "dfr", "--addons-path=/tmp/addons", "-u", "dfr_probe",
                        "--stop-after-init", addons=addons)  # fmt: skip
    assert upgraded.returncode == 0, upgraded.stderr
    assert bed.sql("dfr", version) == "18.0.2.2"


def test_missing_dependency_fails_init_with_status_255(bed: Bed):
    addons = bed.tmp / "broken"
    module = probe_module(addons / "x", "1.0")
    (module / "__manifest__.py").write_text("{'depends': ['not_installed_anywhere']}\n")
    done = bed.once("odoo", "-d", "broken", "--addons-path=/tmp/addons/x", "--stop-after-init",
                    "-i", "dfr_probe,nosuchmodule", addons=addons)  # fmt: skip
    assert done.returncode == 255
    assert "invalid module names, ignored: nosuchmodule" in done.stderr
    assert (
        "CRITICAL broken odoo.service.server: Failed to initialize database `broken`."
        in done.stderr
    )


def update(bed: Bed, db: str, addons: Path, *modules: str) -> subprocess.CompletedProcess[str]:
    """`odoo -d db -u modules --stop-after-init` with ``addons`` as the addons path."""
    return bed.once("odoo", "-d", db, "--addons-path=/tmp/addons", "-u", ",".join(modules),
                    "--stop-after-init", addons=addons)  # fmt: skip


def install(bed: Bed, db: str, addons: Path, *modules: str) -> subprocess.CompletedProcess[str]:
    return bed.once("odoo", "-d", db, "--addons-path=/tmp/addons", "-i", ",".join(modules),
                    "--stop-after-init", addons=addons)  # fmt: skip


def versions(bed: Bed, db: str) -> dict[str, str]:
    return bed.pairs(
        db, "SELECT name, state || ':' || latest_version FROM ir_module_module"
        " WHERE name LIKE 'dfr_mig%'",
    )  # fmt: skip


def test_fresh_install_runs_no_migration_script(bed: Bed):
    scripts = ("1.1.0/pre-log", "1.1.0/post-log", "1.1.0/end-log", "0.0.0/post-log")
    addons = migrating_module(bed.tmp / "fresh", "dfr_mig_a", "1.1.0", scripts)
    done = install(bed, "mig_fresh", addons, "dfr_mig_a")
    assert done.returncode == 0, done.stderr
    assert versions(bed, "mig_fresh") == {"dfr_mig_a": "installed:18.0.1.1.0"}
    table = "SELECT count(*) FROM pg_tables WHERE tablename = 'dfr_migration_log'"
    assert bed.sql("mig_fresh", table) == "0"
    assert "Running migration" not in done.stderr


def test_update_runs_the_migration_scripts_in_order(bed: Bed):
    before = migrating_module(bed.tmp / "mig-1.0", "dfr_mig_a", "1.0.0")
    migrating_module(before, "dfr_mig_user", "1.0.0", depends=("dfr_mig_a",))
    done = install(bed, "mig_update", before, "dfr_mig_user")
    assert done.returncode == 0, done.stderr
    # Short and full version directories; 1.0.0 (installed) and 1.2.0 (future) must not run.
    scripts = ("1.1.0/post-log", "18.0.1.1.0/pre-log", "1.1.0/end-log", "0.0.0/pre-log",
               "0.0.0/post-log", "1.0.0/pre-log", "1.2.0/post-log")  # fmt: skip
    after = migrating_module(bed.tmp / "mig-1.1", "dfr_mig_a", "1.1.0", scripts)
    # A module depending on an updated one is updated too (button_upgrade), and the dependency
    # its new version adds is installed first.
    migrating_module(after, "dfr_mig_user", "1.0.1", ("1.0.1/pre-log",),
                     depends=("dfr_mig_a", "mail"))  # fmt: skip
    done = update(bed, "mig_update", after, "dfr_mig_a")
    assert done.returncode == 0, done.stderr
    assert bed.sql("mig_update", MIGRATION_LOG) == ", ".join(
        [
            "dfr_mig_a 0.0.0/pre-log from 18.0.1.0.0",
            "dfr_mig_a 18.0.1.1.0/pre-log from 18.0.1.0.0",
            "dfr_mig_a 1.1.0/post-log from 18.0.1.0.0",
            "dfr_mig_a 0.0.0/post-log from 18.0.1.0.0",
            "dfr_mig_user 1.0.1/pre-log from 18.0.1.0.0",
            "dfr_mig_a 1.1.0/end-log from 18.0.1.0.0",
        ]
    )
    assert versions(bed, "mig_update") == {
        "dfr_mig_a": "installed:18.0.1.1.0",
        "dfr_mig_user": "installed:18.0.1.0.1",
    }
    assert bed.sql("mig_update", "SELECT state FROM ir_module_module WHERE name = 'mail'") == (
        "installed"
    )
    assert "odoo.modules.migration: module dfr_mig_a: Running migration [>18.0.1.1.0] pre-log" in (
        done.stderr
    )


def test_failing_migration_fails_the_update_and_keeps_the_modules_before_it(bed: Bed):
    before = migrating_module(bed.tmp / "fail-1.0", "dfr_mig_a", "1.0.0")
    migrating_module(before, "dfr_mig_b", "1.0.0")
    assert install(bed, "mig_fail", before, "dfr_mig_a", "dfr_mig_b").returncode == 0
    after = migrating_module(bed.tmp / "fail-1.1", "dfr_mig_a", "1.1.0",
                             ("1.1.0/pre-log", "1.1.0/post-log"))  # fmt: skip
    migrating_module(after, "dfr_mig_b", "1.1.0", ("1.1.0/pre-log",), raises="1.1.0/pre-log")
    done = update(bed, "mig_fail", after, "dfr_mig_a", "dfr_mig_b")
    assert done.returncode == 255
    assert done.stderr.rstrip().splitlines()[-1] == "Exception: dfr_mig_b cannot migrate"
    assert (
        "CRITICAL mig_fail odoo.service.server: Failed to initialize database `mig_fail`."
        in done.stderr
    )
    # dfr_mig_a (loaded first) was committed with its scripts' work; Odoo 18 records a module
    # at its new version only after that commit, so the failure of the next one loses that.
    assert bed.sql("mig_fail", MIGRATION_LOG) == (
        "dfr_mig_a 1.1.0/pre-log from 18.0.1.0.0, dfr_mig_a 1.1.0/post-log from 18.0.1.0.0"
    )
    assert versions(bed, "mig_fail") == {
        "dfr_mig_a": "installed:18.0.1.0.0",
        "dfr_mig_b": "installed:18.0.1.0.0",
    }


def test_update_left_unfinished_is_resumed_at_the_next_start(bed: Bed):
    before = migrating_module(bed.tmp / "resume-1.0", "dfr_mig_a", "1.0.0")
    assert install(bed, "mig_resume", before, "dfr_mig_a").returncode == 0
    # What a run killed during `-u dfr_mig_a` leaves (a failing one resets the state).
    bed.sql(
        "mig_resume", "UPDATE ir_module_module SET state = 'to upgrade' WHERE name = 'dfr_mig_a'"
    )
    after = migrating_module(bed.tmp / "resume-1.1", "dfr_mig_a", "1.1.0", ("1.1.0/pre-log",))
    done = bed.once("odoo", "-d", "mig_resume", "--addons-path=/tmp/addons", "--stop-after-init",
                    addons=after)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert bed.sql("mig_resume", MIGRATION_LOG) == "dfr_mig_a 1.1.0/pre-log from 18.0.1.0.0"
    assert versions(bed, "mig_resume") == {"dfr_mig_a": "installed:18.0.1.1.0"}


def test_login_page_and_login(bed: Bed):
    port = bed.port(bed.web, 8069)
    status, headers, body = request(port, "/web/login")
    assert status == 200 and b'class="oe_login_form"' in body and b'name="password"' in body
    assert b"Manage Databases" not in body  # list_db = False hides the link
    assert "HttpOnly" in headers["set-cookie"] and "Secure" not in headers["set-cookie"]
    form = b"login=admin&password=admin"
    status, headers, _ = request(
        port, "/web/login", "POST", {"Content-Type": "application/x-www-form-urlencoded"}, form
    )
    assert (status, headers["location"]) == (303, "/odoo")


def authenticate(port: int, db: str, login: str, password: str) -> dict:
    """JSON-RPC /web/session/authenticate, as a client (and the deploy's check) calls it."""
    params = {"db": db, "login": login, "password": password}
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "call", "params": params}).encode()
    headers = {"Content-Type": "application/json"}
    status, _, answer = request(port, "/web/session/authenticate", "POST", headers, body)
    assert status == 200
    return json.loads(answer)


def shell(bed: Bed, db: str, script: str) -> subprocess.CompletedProcess[str]:
    """`odoo shell -d db` with ``script`` on stdin, in the running web container."""
    connection = ("-e", "PGHOST=db", "-e", "PGUSER=odoo", "-e", "PGPASSWORD=odoo")
    return subprocess.run(
        ["docker", "exec", "-i", *connection, bed.web, "odoo", "shell", "-d", db],
        input=script, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_session_authenticate_checks_the_password_the_shell_sets(bed: Bed):
    port = bed.port(bed.web, 8069)
    assert authenticate(port, "dfr", "admin", "admin")["result"]["uid"]  # -i base: admin/admin
    denied = authenticate(port, "dfr", "admin", "not-it")["error"]["data"]
    assert denied["name"] == "odoo.exceptions.AccessDenied"

    set_password = 'env.ref("base.user_admin").password = "S3t-by-the-shell"\n'
    uncommitted = shell(bed, "dfr", set_password)
    assert uncommitted.returncode == 0, uncommitted.stderr
    assert "result" in authenticate(port, "dfr", "admin", "admin")  # rolled back
    committed = shell(bed, "dfr", set_password + "env.cr.commit()\n")
    assert committed.returncode == 0, committed.stderr
    assert "error" in authenticate(port, "dfr", "admin", "admin")
    assert authenticate(port, "dfr", "admin", "S3t-by-the-shell")["result"]["username"] == "admin"
    stored = bed.sql("dfr", "SELECT password FROM res_users WHERE login = 'admin'")
    assert stored.startswith("$pbkdf2-sha512$600000$")  # hashed, as res.users stores it

    failing = shell(bed, "dfr", 'env.ref("base.no_such_record")\n')
    assert failing.returncode == 1 and "External ID not found" in failing.stderr
    assert "error" in authenticate(port, "nosuchdb", "admin", "S3t-by-the-shell")


def test_database_manager_is_disabled_with_list_db_false(bed: Bed):
    port = bed.port(bed.web, 8069)
    for page in ("/web/database/manager", "/web/database/selector"):
        status, _, body = request(port, page)
        assert status == 200 and DISABLED in body.decode()
    form = f"master_pwd={MASTER}&name=dfr".encode()
    ctype = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _, body = request(port, "/web/database/drop", "POST", ctype, form)
    assert status == 200 and "Database deletion error: Access Denied" in body.decode()
    assert bed.sql("postgres", "SELECT count(*) FROM pg_database WHERE datname = 'dfr'") == "1"
    rpc = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "params": {"service": "db", "method": "list", "args": []}}
    )
    _, _, body = request(
        port, "/jsonrpc", "POST", {"Content-Type": "application/json"}, rpc.encode()
    )
    assert json.loads(body)["error"]["data"]["name"] == "odoo.exceptions.AccessDenied"


def test_websocket_upgrades_on_the_main_port_in_threaded_mode(bed: Bed):
    port = bed.port(bed.web, 8069)
    status, headers, sock = handshake(port)
    expected = base64.b64encode(
        hashlib.sha1((WS_KEY + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    ).decode()
    with sock:
        assert status == 101 and headers["sec-websocket-accept"] == expected
        sock.sendall(bytes([0x88, 0x82]) + b"\0\0\0\0" + struct.pack("!H", 1000))  # masked close
        assert sock.recv(4)[:2] == bytes([0x88, 0x02])  # the server closes too
    assert handshake(port, Origin=None)[0] == 400
    status, headers, _ = handshake(port, **{"Sec-WebSocket-Version": "12"})
    assert status == 426 and headers["sec-websocket-version"] == "13"
    # Nothing listens on the gevent port in threaded mode.
    probe = docker("exec", bed.web, "bash", "-c", "curl -s localhost:8072; echo $?", check=False)
    assert probe.strip().endswith("7")  # connection refused


def test_websocket_needs_the_gevent_port_in_workers_mode(bed: Bed):
    status, _, sock = handshake(bed.port(bed.prefork, 8069))
    sock.close()
    assert status == 500
    assert (
        "Couldn't bind the websocket. Is the connection opened on the evented port (8072)?"
        in logs(bed.prefork)
    )
    status, _, sock = handshake(bed.port(bed.prefork, 8072))
    sock.close()
    assert status == 101
    assert request(bed.port(bed.prefork, 8072), "/web/login")[0] == 200  # the whole app


def test_proxy_headers_apply_only_with_proxy_mode_and_forwarded_host(bed: Bed):
    forwarded = {"X-Forwarded-Host": "erp.example.com", "X-Forwarded-Proto": "https",
                 "X-Forwarded-For": "203.0.113.7, 10.1.2.3"}  # fmt: skip
    info = json.loads(
        request(bed.port(bed.prefork, 8069), "/dfr-test-double/request-info", headers=forwarded)[2]
    )
    assert (info["scheme"], info["host"], info["remote_addr"]) == (
        "https",
        "erp.example.com",
        "10.1.2.3",
    )
    no_host = {k: v for k, v in forwarded.items() if k != "X-Forwarded-Host"}
    info = json.loads(
        request(bed.port(bed.prefork, 8069), "/dfr-test-double/request-info", headers=no_host)[2]
    )
    assert info["scheme"] == "http" and not info["proxy_fix_applied"]
    info = json.loads(
        request(bed.port(bed.web, 8069), "/dfr-test-double/request-info", headers=forwarded)[2]
    )
    assert info["host"].startswith("127.0.0.1:") and not info["proxy_fix_applied"]  # no proxy_mode


def test_attachment_lands_in_the_filestore_by_sha1(bed: Bed):
    data = os.urandom(2048)
    sha = hashlib.sha1(data).hexdigest()
    port = bed.port(bed.web, 8069)
    status, _, body = request(port, "/dfr-test-double/attachment?name=blob.bin", "POST", {}, data)
    stored = json.loads(body)
    assert status == 200 and stored["store_fname"] == f"{sha[:2]}/{sha}"
    path = f"/var/lib/odoo/filestore/dfr/{sha[:2]}/{sha}"
    assert docker("exec", bed.web, "sha1sum", path).split()[0] == sha
    row = bed.sql("dfr", f"SELECT checksum, file_size FROM ir_attachment WHERE id = {stored['id']}")
    assert row == f"{sha}|2048"
    assert request(port, f"/web/content/{stored['id']}")[2] == data


def test_neutralize_runs_base_and_module_neutralization(bed: Bed):
    assert bed.once("odoo", "-d", "neutral", "-i", "dfr_probe", "--stop-after-init",
                    args=("--volumes-from", bed.web)).returncode == 0  # fmt: skip
    bed.sql(
        "neutral",
        "INSERT INTO ir_mail_server (name, smtp_host) VALUES ('prod', 'smtp.example.com')",
    )
    done = bed.once("odoo", "neutralize", "-d", "neutral", args=("--volumes-from", bed.web))
    assert done.returncode == 0, done.stderr
    assert "Neutralization finished" in done.stderr
    servers = bed.sql(
        "neutral", "SELECT smtp_host, smtp_port, active FROM ir_mail_server ORDER BY id"
    )
    assert servers == "smtp.example.com|25|f\ninvalid|1025|t"
    crons = bed.sql("neutral", "SELECT cron_name, active FROM ir_cron ORDER BY id")
    assert crons == "Base: Auto-vacuum internal data|t\nBase: Portal Users Deletion|f"
    params = bed.pairs("neutral", "SELECT key, value FROM ir_config_parameter")
    assert params["database.is_neutralized"] == "true" and params["dfr_probe.neutralized"] == "yes"


def test_db_dump_and_load_use_odoos_zip_format(bed: Bed):
    # The entrypoint appends --db_* after the subcommand: `odoo db` refuses them (facts 12.10).
    refused = bed.once("odoo", "db", "dump", "dfr", "/tmp/x.zip")
    assert refused.returncode == 2 and "unrecognized arguments: --db_host db" in refused.stderr
    # With every connection key in odoo.conf the entrypoint appends nothing, and
    # wait-for-psql.py reads them from the file.
    shared = ("--volumes-from", bed.web)
    path = "/var/lib/odoo/dfr.zip"
    dump = bed.once("odoo", "db", "dump", "dfr", path, args=shared, conf=DB_TOOL_CONF)
    assert dump.returncode == 0, dump.stderr
    load = bed.once("odoo", "db", "load", "dfr_copy", path, args=shared, conf=DB_TOOL_CONF)
    assert load.returncode == 0, load.stderr
    archive = bed.tmp / "dfr.zip"
    docker("cp", f"{bed.web}:/var/lib/odoo/dfr.zip", str(archive))
    with zipfile.ZipFile(archive) as dump:
        names = dump.namelist()
        manifest = json.loads(dump.read("manifest.json"))
    assert names[0] == "dump.sql" and any(n.startswith("filestore/") for n in names)
    assert manifest["odoo_dump"] == "1" and manifest["db_name"] == "dfr"
    assert manifest["major_version"] == "18.0" and manifest["pg_version"] == "15.0"
    assert manifest["modules"]["dfr_probe"].startswith("18.0.2.")
    uuid_sql = "SELECT value FROM ir_config_parameter WHERE key = 'database.uuid'"
    assert bed.sql("dfr_copy", uuid_sql) != bed.sql("dfr", uuid_sql)  # a copy: new uuid
    count = "SELECT count(*) FROM ir_attachment"
    assert bed.sql("dfr_copy", count) == bed.sql("dfr", count)
    files = docker("exec", bed.web, "find", "/var/lib/odoo/filestore/dfr_copy", "-type", "f")
    assert len(files.split()) >= int(bed.sql("dfr", count))  # the filestore moved into place


def test_sigterm_stops_gracefully(bed: Bed):
    docker("stop", "-t", "10", bed.prefork)  # not stopped in 10 s: killed, exit code 137
    assert docker("inspect", "-f", "{{.State.ExitCode}}", bed.prefork) == "0"
    assert "Initiating shutdown" in logs(bed.prefork)
