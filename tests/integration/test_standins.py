"""The stand-ins for postgres:17 and nginx:stable honour the official images' contracts."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.harness.docker_cli import LABEL, DockerError, docker, owner_labels
from tests.harness.images import nginx_image, postgres_image
from tests.harness.waiting import wait_for

PG_USER, PG_DB, PG_PASSWORD = "dfr", "app", "s3cret with spaces"
# Sourced (not executable), like the official image does with such scripts: it sees the env.
INIT_SH = """\
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE TABLE marker (id int PRIMARY KEY, note text);
INSERT INTO marker SELECT g, repeat('x', 100) FROM generate_series(1, 1000) g;
SQL
"""
INIT_SQL = "CREATE TABLE second (id int); INSERT INTO second VALUES (42);\n"


@dataclass
class Run:
    """One test's names and labels: whatever carries the labels is removed afterwards."""

    tag: str = field(default_factory=lambda: f"standins-{uuid.uuid4().hex[:8]}")

    @property
    def labels(self) -> list[str]:
        return owner_labels(self.tag)


@pytest.fixture
def run() -> Iterator[Run]:
    this = Run()
    try:
        yield this
    finally:
        remove_labelled(this.tag)


def remove_labelled(tag: str) -> None:
    selector = f"label={LABEL}.run={tag}"
    for container in docker("ps", "-aq", "--filter", selector).split():
        docker("rm", "-f", "-v", container, check=False)
    for kind in ("network", "volume"):
        for name in docker(kind, "ls", "-q", "--filter", selector).split():
            docker(kind, "rm", name, check=False)


def image_config(ref: str) -> dict:
    return json.loads(docker("image", "inspect", "-f", "{{json .Config}}", ref))


def pg_ready_over_tcp(container: str) -> bool:
    # Over TCP: during init the temporary server listens on the socket only.
    out = docker("exec", container, "pg_isready", "-h", "127.0.0.1", "-U", PG_USER, check=False)
    return "accepting connections" in out


def test_postgres_standin_image_declares_the_official_contract():
    config = image_config(postgres_image())
    assert config["Entrypoint"] == ["docker-entrypoint.sh"]
    assert config["Cmd"] == ["postgres"]
    assert config["StopSignal"] == "SIGINT"
    assert "5432/tcp" in config["ExposedPorts"]
    assert "/var/lib/postgresql/data" in config["Volumes"]
    assert "PGDATA=/var/lib/postgresql/data" in config["Env"]


def test_postgres_standin_initialises_serves_dumps_and_keeps_existing_data(
    tmp_path: Path, run: Run
):
    image = postgres_image()
    secret = tmp_path / "pg_password"
    secret.write_text(PG_PASSWORD)
    initdb = tmp_path / "initdb"
    initdb.mkdir()
    (initdb / "10-schema.sh").write_text(INIT_SH)
    (initdb / "20-second.sql").write_text(INIT_SQL)
    network, volume, server = f"dfr-test-{run.tag}", f"dfr-test-{run.tag}-pgdata", f"{run.tag}-pg"
    run_labels = run.labels
    docker("network", "create", *run_labels, network)
    docker("volume", "create", *run_labels, volume)

    def start_server() -> None:
        docker("run", "-d", "--name", server, "--network", network, *run_labels,
               "-e", f"POSTGRES_USER={PG_USER}", "-e", f"POSTGRES_DB={PG_DB}",
               "-e", "POSTGRES_PASSWORD_FILE=/run/secrets/pg_password",
               "-v", f"{secret}:/run/secrets/pg_password:ro",
               "-v", f"{initdb}:/docker-entrypoint-initdb.d:ro",
               "-v", f"{volume}:/var/lib/postgresql/data", image)  # fmt: skip
        wait_for("PostgreSQL to accept TCP connections", lambda: pg_ready_over_tcp(server))

    # A client in its own container, as Odoo would be: TCP, scram-sha-256 with the password.
    client = f"{run.tag}-client"
    docker("run", "-d", "--name", client, "--network", network, *run_labels, image, "sleep", "600")

    def sql(query: str, password: str = PG_PASSWORD) -> str:
        return docker("exec", "-e", f"PGPASSWORD={password}", client,
                      "psql", "-h", server, "-U", PG_USER, "-d", PG_DB, "-XtAc", query)  # fmt: skip

    start_server()
    assert sql("SHOW server_version").startswith("17")
    assert sql("SELECT current_user, current_database(), current_setting('server_encoding')") == (
        f"{PG_USER}|{PG_DB}|UTF8"
    )
    assert sql("SELECT count(*) FROM marker") == "1000"  # the sourced *.sh ran
    assert sql("SELECT id FROM second") == "42"  # the *.sql ran
    assert "scram-sha-256" in docker("exec", server, "tail", "-n", "1",
                                     "/var/lib/postgresql/data/pg_hba.conf")  # fmt: skip
    with pytest.raises(DockerError, match="password authentication failed"):
        sql("SELECT 1", password="wrong")
    assert docker("exec", server, "stat", "-c", "%U", "/proc/1") == "postgres"  # root dropped

    # The client tools of the contract are on PATH, and pg_dump compresses with zstd.
    for tool in ("postgres", "initdb", "pg_ctl", "psql", "pg_dump", "pg_restore", "pg_isready",
                 "pg_basebackup"):  # fmt: skip
        assert docker("exec", server, "sh", "-c", f"command -v {tool}")
    dump = docker("exec", "-u", "postgres", server, "sh", "-ec",
                  f"pg_dump -U {PG_USER} -d {PG_DB} -Fd -j 2 --compress=zstd -f /tmp/dump"
                  f" && createdb -U {PG_USER} restored"
                  f" && pg_restore -U {PG_USER} -d restored -j 2 /tmp/dump"
                  " && ls /tmp/dump")  # fmt: skip
    assert "toc.dat" in dump.split()
    assert any(name.endswith(".dat.zst") for name in dump.split()), dump
    restored = docker("exec", "-u", "postgres", server,
                      "psql", "-U", PG_USER, "-d", "restored", "-XtAc",
                      "SELECT count(*) FROM marker")  # fmt: skip
    assert restored == "1000"
    docker("exec", "-u", "postgres", server,
           "pg_basebackup", "-U", PG_USER, "-D", "/tmp/base", "-Ft", "-c", "fast")  # fmt: skip
    # dblink loads libpq from inside the server (the build's RUNPATH points elsewhere).
    remote = f"SELECT x FROM dblink('dbname={PG_DB} user={PG_USER}', 'SELECT 7') AS t(x int)"
    assert sql(f"CREATE EXTENSION dblink; {remote}").endswith("7")

    # A new container on the existing PGDATA skips initialisation and keeps the data.
    docker("stop", server)
    docker("rm", server)
    start_server()
    logs = docker("logs", server)
    assert "Skipping initialization" in logs
    assert "/docker-entrypoint-initdb.d/" not in logs  # the init scripts ran once only
    assert sql("SELECT count(*) FROM marker") == "1000"


DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
NGINX_SITE = """\
server {
    listen 8080;
    root /srv/site;
    location /healthz { return 200 "ok\\n"; }
}
"""
NGINX_TEMPLATE = """\
server {
    listen 8081;
    location / { return 200 "hello ${GREETING} via $host\\n"; }
}
"""


def test_nginx_standin_image_declares_the_official_contract():
    config = image_config(nginx_image())
    assert config["Entrypoint"] == ["/docker-entrypoint.sh"]
    assert config["Cmd"] == ["nginx", "-g", "daemon off;"]
    assert config["StopSignal"] == "SIGQUIT"
    assert {"80/tcp", "443/tcp"} <= set(config["ExposedPorts"])


def test_nginx_standin_checks_and_serves_conf_d_and_templates(tmp_path: Path, run: Run):
    image = nginx_image()
    run_labels = run.labels
    layout = docker("run", "--rm", *run_labels, "--entrypoint", "sh", image, "-c",
                    "nginx -t 2>&1; readlink /var/log/nginx/access.log /var/log/nginx/error.log;"
                    " ls /etc/nginx; grep -F 'include /etc/nginx/conf.d/*.conf;'"
                    " /etc/nginx/nginx.conf")  # fmt: skip
    assert "test is successful" in layout
    assert "/dev/stdout\n/dev/stderr" in layout
    assert "sites-enabled" not in layout  # no Debian default site

    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>standin</h1>\n")
    (tmp_path / "site.conf").write_text(NGINX_SITE)
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "hello.conf.template").write_text(NGINX_TEMPLATE)
    name = f"{run.tag}-nginx"
    docker("run", "-d", "--name", name, *run_labels, "-e", "GREETING=world",
           "-p", "127.0.0.1::80", "-p", "127.0.0.1::8080", "-p", "127.0.0.1::8081",
           "-v", f"{tmp_path / 'site.conf'}:/etc/nginx/conf.d/site.conf:ro",
           "-v", f"{site}:/srv/site:ro", "-v", f"{templates}:/etc/nginx/templates:ro",
           image)  # fmt: skip

    def get(port: int, path: str = "/") -> str:
        address = docker("port", name, f"{port}/tcp").splitlines()[0]
        with DIRECT.open(f"http://{address}{path}", timeout=5) as response:
            return response.read().decode()

    def answers() -> bool:
        try:
            return get(8080, "/healthz") == "ok\n"
        except OSError:
            return False

    wait_for("nginx to serve the conf.d site", answers, timeout=30)
    assert get(8080) == "<h1>standin</h1>\n"
    assert get(8081) == "hello world via 127.0.0.1\n"  # $host is nginx's, not envsubst's
    assert "Welcome to nginx!" in get(80)  # the official default server
    docker("exec", name, "nginx", "-t")  # raises unless the running config checks out
    assert '"GET /healthz HTTP/1.1" 200' in docker("logs", name)  # access log on stdout
    docker("stop", name)  # SIGQUIT: graceful, exits 0
    assert docker("inspect", "-f", "{{.State.ExitCode}}", name) == "0"
