"""deploy.py on a production-like target over SSH: healthy, locked down, idempotent."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.harness.hosts import TargetHost
from tests.harness.pyinfra_run import pyinfra
from tests.harness.waiting import wait_for
from tests.integration.conftest import group_data_file, ssh_host
from tests.integration.maintenance import MAINTENANCE_TEXT, answer
from tests.integration.stack import WEBSOCKET_HEADERS, curl, logs_in, prod_target_fixtures, psql
from tests.unit.environments import STRONG
from tests.unit.odoo_crypt import ODOO_CRYPT_CONTEXT

PROJECT = "dfr-prod"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


target, inventory, domain, first_run = prod_target_fixtures("prod")


def _containers(target: TargetHost) -> dict[str, dict]:
    out = target.exec(
        f"docker ps -a --filter label=com.docker.compose.project={PROJECT} --format "
        "'{{.Label \"com.docker.compose.service\"}} {{.ID}} {{.Status}}'"
    )
    return {
        line.split()[0]: {"id": line.split()[1], "status": line.split(" ", 2)[2]}
        for line in out.splitlines()
    }


def _ids_of(containers: dict[str, dict]) -> dict[str, str]:
    return {name: container["id"] for name, container in containers.items()}


def _ids(target: TargetHost) -> dict[str, str]:
    return _ids_of(_containers(target))


def test_three_containers_are_healthy(first_run, target):
    containers = _containers(target)
    assert sorted(containers) == ["nginx", "odoo", "postgres"]
    for name, container in containers.items():
        assert "(healthy)" in container["status"], (name, container)


@pytest.mark.smoke
def test_https_answers_health_through_nginx(first_run, target, domain):
    reply = curl(target, domain, f"https://{domain}/web/health", "-i")
    assert reply.returncode == 0, reply.stderr
    assert reply.stdout.startswith("HTTP/2 200") or reply.stdout.startswith("HTTP/1.1 200")
    assert json.loads(re.split(r"\r?\n\r?\n", reply.stdout, maxsplit=1)[1]) == {"status": "pass"}
    assert re.search(r"(?i)strict-transport-security: max-age=63072000", reply.stdout)


@pytest.mark.smoke
def test_tls_is_the_operators_certificate_and_at_least_1_2(first_run, target, domain):
    reply = curl(target, domain, f"https://{domain}/web/health", "-v", "--tls-max", "1.1")
    assert reply.returncode != 0  # TLS 1.0/1.1 refused
    reply = curl(target, domain, f"https://{domain}/web/health", "-v")
    assert f"subject: CN={domain}" in reply.stderr


def test_port_80_redirects_to_https(first_run, target, domain):
    reply = curl(target, domain, f"http://{domain}/web/login?x=1", "-i")
    assert reply.stdout.startswith("HTTP/1.1 301")
    assert f"Location: https://{domain}/web/login?x=1" in reply.stdout


def test_proxy_headers_reach_odoo(first_run, target, domain):
    reply = curl(target, domain, f"https://{domain}/dfr-test-double/request-info")
    seen = json.loads(reply.stdout)
    assert seen["scheme"] == "https"
    assert seen["host"] == domain


def test_websocket_upgrades_through_nginx_to_the_gevent_port(first_run, target, domain):
    headers = [arg for h in [*WEBSOCKET_HEADERS, f"Origin: https://{domain}"] for arg in ("-H", h)]
    reply = curl(target, domain, f"https://{domain}/websocket", "-i", "--http1.1", "-N",
                 "--max-time", "3", *headers)  # fmt: skip
    assert reply.stdout.startswith("HTTP/1.1 101"), reply.stdout[:300] + reply.stderr


@pytest.mark.smoke
def test_database_manager_is_refused(first_run, target, domain):
    reply = curl(target, domain, f"https://{domain}/web/database/manager", "-o", "/dev/null",
                 "-w", "%{http_code}")  # fmt: skip
    assert reply.stdout == "403"


def test_postgres_runs_on_the_rendered_configuration(first_run, target):
    settings = psql(
        target,
        "SELECT name || '=' || setting FROM pg_settings "
        "WHERE name IN ('wal_level', 'max_wal_size', 'config_file') ORDER BY name",
    )
    assert settings.splitlines() == [
        "config_file=/etc/postgresql/postgresql.conf",
        "max_wal_size=4096",
        "wal_level=minimal",
    ]


def test_postgres_is_not_reachable_from_outside(first_run, target):
    with pytest.raises(OSError), socket.create_connection((target.address, 5432), timeout=3):
        pass


def test_secret_files_are_root_only(first_run, target):
    infra = ssh_host(target)
    for name in ("postgres_password", "db_password", "odoo_secrets.conf"):
        secret = infra.file(f"/opt/dfr/prod/secrets/{name}")
        assert secret.mode == 0o600 and secret.user == "root", name
    assert infra.file("/opt/dfr/prod/tls/privkey.pem").mode == 0o600


def test_no_secret_in_containers_or_pyinfra_output(first_run, target):
    inspected = target.exec(
        f"docker inspect $(docker ps -aq --filter label=com.docker.compose.project={PROJECT})"
    )
    for secret in STRONG.values():
        assert secret not in inspected
        assert secret not in first_run.output


@pytest.mark.smoke
def test_second_run_changes_nothing(first_run, inventory, target):
    again = pyinfra(inventory, "deploy.py")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.ops and again.changed() == [] and again.errors() == []


@pytest.mark.smoke
def test_odoos_default_login_is_refused_and_the_configured_one_logs_in(first_run, target, domain):
    assert not logs_in(target, domain, "admin", "admin")
    assert logs_in(target, domain, "admin", STRONG["DFR_ODOO_ADMIN_USER_PASSWORD"])
    assert "admin/admin is refused" in first_run.output  # checked by the deploy itself
    stored = psql(target, "SELECT password FROM res_users WHERE login = 'admin'")
    assert stored.startswith("$pbkdf2-sha512$")  # set through the ORM, not written in clear
    assert STRONG["DFR_ODOO_ADMIN_USER_PASSWORD"] not in first_run.output


ROTATED = {
    "DFR_DB_PASSWORD": "Vb3nQ8wE5rT2yU7iO4pA9s",
    "DFR_POSTGRES_PASSWORD": "Kd6fG1hJ8kL3zX5cV9bN2m",
    "DFR_ODOO_ADMIN_PASSWD": "Wm5tB8xR2kQ7vN3cH9pL4d",
    "DFR_ODOO_ADMIN_USER_PASSWORD": "Rt7kW2qZ9xN4mB6vC3pL8s",
}


def _master_password_hash(target: TargetHost) -> str:
    """``admin_passwd`` as the running Odoo reads it (its merged configuration)."""
    return target.exec(
        f"docker exec {_containers(target)['odoo']['id']} "
        "sed -n 's/^admin_passwd = //p' /run/dfr-odoo/odoo.conf"
    )


def _postgres_accepts(target: TargetHost, user: str, password: str) -> bool:
    """A login from Odoo's container, as Odoo's own (PostgreSQL trusts only its own socket
    and loopback)."""
    out = target.exec(
        f"docker exec -e PGPASSWORD={password} {_containers(target)['odoo']['id']} "
        f"psql -X -h postgres -U {user} -d dfr -tAc 'SELECT 1' 2>&1 || true"
    )
    assert out == "1" or "password authentication failed" in out, out
    return out == "1"


def _set_secrets(inventory: Path, values: dict[str, str]) -> None:
    secrets = inventory.parent / "prod.env"
    secrets.write_text("".join(f"{k}={v}\n" for k, v in values.items()))


def test_rotated_passwords_apply_on_redeploy_and_then_nothing_changes(
    first_run, inventory, target, domain
):
    """Rotation is: edit the secrets file, deploy. Each of the stack's passwords takes effect,
    the old ones stop working; put back, the originals work again and a redeploy is a no-op."""
    master_before = _master_password_hash(target)
    _set_secrets(inventory, ROTATED)
    try:
        rotated = pyinfra(inventory, "deploy.py")
        assert rotated.returncode == 0, rotated.stderr[-3000:]
        assert all("(healthy)" in c["status"] for c in _containers(target).values())
        # the admin user's password, through nginx
        assert logs_in(target, domain, "admin", ROTATED["DFR_ODOO_ADMIN_USER_PASSWORD"])
        assert not logs_in(target, domain, "admin", STRONG["DFR_ODOO_ADMIN_USER_PASSWORD"])
        # the database role's and the superuser's (Odoo's login above went through the former)
        assert _postgres_accepts(target, "dfr", ROTATED["DFR_DB_PASSWORD"])
        assert not _postgres_accepts(target, "dfr", STRONG["DFR_DB_PASSWORD"])
        assert _postgres_accepts(target, "postgres", ROTATED["DFR_POSTGRES_PASSWORD"])
        assert not _postgres_accepts(target, "postgres", STRONG["DFR_POSTGRES_PASSWORD"])
        # the master password: what Odoo checks it against
        master = _master_password_hash(target)
        assert master != master_before
        assert ODOO_CRYPT_CONTEXT.verify(ROTATED["DFR_ODOO_ADMIN_PASSWD"], master)
        assert not ODOO_CRYPT_CONTEXT.verify(STRONG["DFR_ODOO_ADMIN_PASSWD"], master)
        for secret in ROTATED.values():
            assert secret not in rotated.output
        logs = target.exec(f"cd /opt/dfr/prod && docker compose -p {PROJECT} logs 2>&1")
        assert not [secret for secret in ROTATED.values() if secret in logs]
    finally:
        _set_secrets(inventory, STRONG)
    back = pyinfra(inventory, "deploy.py")
    assert back.returncode == 0, back.stderr[-3000:]
    assert logs_in(target, domain, "admin", STRONG["DFR_ODOO_ADMIN_USER_PASSWORD"])
    assert _postgres_accepts(target, "dfr", STRONG["DFR_DB_PASSWORD"])
    assert ODOO_CRYPT_CONTEXT.verify(STRONG["DFR_ODOO_ADMIN_PASSWD"], _master_password_hash(target))
    again = pyinfra(inventory, "deploy.py")
    assert again.returncode == 0 and again.changed() == [], again.changed()


def test_a_deploy_fails_in_one_line_while_admin_admin_logs_in(first_run, inventory, target):
    """A database whose admin password was put back to Odoo's default by hand (or never set,
    by an older version): the deploy says so and fails."""
    stored = psql(target, "SELECT password FROM res_users WHERE login = 'admin'")
    psql(target, "UPDATE res_users SET password = 'admin' WHERE login = 'admin'")
    try:
        run = pyinfra(inventory, "deploy.py")
        assert run.returncode != 0
        assert "admin/admin logs in to https://" in run.stderr
        assert "set DFR_ODOO_ADMIN_USER_PASSWORD" in run.stderr
    finally:
        psql(target, f"UPDATE res_users SET password = '{stored}' WHERE login = 'admin'")


def test_containers_run_without_privileges_they_do_not_need(first_run, target):
    for service, container in _containers(target).items():
        config = json.loads(
            target.exec(f"docker inspect -f '{{{{json .HostConfig}}}}' {container['id']}")
        )
        assert "no-new-privileges:true" in config["SecurityOpt"], service
        assert config["CapDrop"] == ["ALL"], service
        assert "SYS_ADMIN" not in (config["CapAdd"] or []) and "NET_RAW" not in config["CapAdd"]
        assert not config["Privileged"], service
        assert config["ReadonlyRootfs"], service


def test_only_tmpfs_is_writable_and_the_merged_odoo_conf_stays_in_memory(first_run, target):
    containers = _containers(target)
    for service in ("odoo", "postgres"):
        cid = containers[service]["id"]
        tmpfs = json.loads(target.exec(f"docker inspect -f '{{{{json .HostConfig.Tmpfs}}}}' {cid}"))
        assert sorted(tmpfs) == ["/run", "/tmp"], service
        probe = target.exec(f"docker exec {cid} touch /usr/dfr-probe 2>&1 || true")
        assert "Read-only file system" in probe, (service, probe)
    odoo = containers["odoo"]["id"]
    conf = "/run/dfr-odoo/odoo.conf"
    assert target.exec(f"docker exec {odoo} stat -f -c %T {conf}") == "tmpfs"
    assert target.exec(f"docker exec {odoo} stat -c '%a %U' {conf}") == "600 odoo"
    assert target.exec(f"docker exec {odoo} grep -c '^db_password = ' {conf}") == "1"
    # Odoo runs as odoo with the official image's HOME (fontconfig's cache, wkhtmltopdf)
    environ = target.exec(f"docker exec -u odoo {odoo} cat /proc/1/environ | tr '\\0' '\\n'")
    assert "HOME=/var/lib/odoo" in environ.splitlines()


def test_a_one_off_odoo_command_runs_on_the_read_only_image(first_run, target):
    """What module updates, restores (neutralize) and operators run: `compose run` of odoo."""
    script = (
        "import pathlib\n"
        "try:\n"
        "    pathlib.Path('/usr/dfr-probe').touch()\n"
        "except OSError as error:\n"
        "    print('root:', error.strerror)\n"
        "print('admin login:', env.ref('base.user_admin').login)\n"
    )
    out = target.exec(
        f"cd /opt/dfr/prod && docker compose -p {PROJECT} run --rm --no-deps -T odoo "
        "odoo shell -d dfr 2>/dev/null",
        input=script.encode(),
    )
    assert "root: Read-only file system" in out.splitlines()
    assert "admin login: admin" in out.splitlines()


def test_workers_change_is_previewed_then_recreates_only_odoo(first_run, inventory, target):
    before = _containers(target)
    psql(target, "CREATE TABLE IF NOT EXISTS kept (v text); INSERT INTO kept VALUES (1);")
    group_data_file(inventory, "odoo_workers = 3\n")
    try:
        preview = pyinfra(inventory, "deploy.py", "--dry", "--diff", execute=False,
                          json_output=False)  # fmt: skip
        assert preview.returncode == 0, preview.stderr[-3000:]
        assert re.search(r"-\s*workers = \d+", preview.output)
        assert re.search(r"\+\s*workers = 3", preview.output)
        for secret in STRONG.values():
            assert secret not in preview.output
        assert _ids(target) == _ids_of(before)

        applied = pyinfra(inventory, "deploy.py")
        assert applied.returncode == 0, applied.stderr[-3000:]
        after = _containers(target)
        assert after["odoo"]["id"] != before["odoo"]["id"]
        assert after["postgres"]["id"] == before["postgres"]["id"]
        assert after["nginx"]["id"] == before["nginx"]["id"]
        assert "workers = 3" in target.exec("cat /opt/dfr/prod/config/odoo.conf")
        assert psql(target, "SELECT count(*) FROM kept") == "1"
    finally:
        (inventory.parent / "group_data" / "prod.py").unlink()


def test_the_database_was_initialised_once_with_the_dfr_modules(first_run, target):
    installed = psql(target, "SELECT name FROM ir_module_module WHERE state = 'installed'")
    assert {"base", "web", "dfr_base"} <= set(installed.split())
    assert psql(target, "SELECT count(*) FROM ir_config_parameter WHERE key = 'database.uuid'")


def test_changed_addons_update_their_modules_once_before_odoo_restarts(
    first_run, inventory, target, tmp_path
):
    addons = tmp_path / "addons"
    shutil.copytree(PROJECT_ROOT / "files" / "addons", addons)
    manifest = addons / "dfr_base" / "__manifest__.py"
    manifest.write_text(manifest.read_text().replace("18.0.1.0.0", "18.0.1.1.0"))
    before = _ids(target)
    group_data_file(inventory, f"odoo_addons_src = {str(addons)!r}\n")
    try:
        run = pyinfra(inventory, "deploy.py")
        assert run.returncode == 0, run.stderr[-3000:]
        updates = [name for name in run.changed() if "Update Odoo modules dfr_base" in name]
        assert len(updates) == 1
        assert (
            psql(target, "SELECT latest_version FROM ir_module_module WHERE name = 'dfr_base'")
            == "18.0.1.1.0"
        )
        after = _ids(target)
        assert after["odoo"] != before["odoo"] and after["postgres"] == before["postgres"]
        assert "(healthy)" in _containers(target)["odoo"]["status"]

        again = pyinfra(inventory, "deploy.py")
        assert again.returncode == 0 and again.changed() == []
    finally:
        (inventory.parent / "group_data" / "prod.py").unlink()


def test_odoo_stops_at_once_while_it_waits_for_postgres(first_run, target):
    """A stop (a restore's swap, a rollback, docker stop) while Odoo's entrypoint waits for
    PostgreSQL ends it on SIGTERM, not by SIGKILL after the grace period."""
    odoo = _containers(target)["odoo"]["id"]
    postgres = _containers(target)["postgres"]["id"]
    target.exec(f"docker stop {postgres} >/dev/null && docker restart -t 30 {odoo} >/dev/null")
    try:
        polling = f"docker top {odoo} -o pid,args | grep -c wait-for-psql || true"
        wait_for("Odoo's entrypoint to poll for PostgreSQL", lambda: target.exec(polling) != "0")
        target.exec(f"docker stop -t 20 {odoo} >/dev/null")
        assert target.exec(f"docker inspect -f '{{{{.State.ExitCode}}}}' {odoo}") == "143"
    finally:
        target.exec(f"cd /opt/dfr/prod && docker compose -p {PROJECT} up -d --wait >/dev/null 2>&1")
    assert "(healthy)" in _containers(target)["odoo"]["status"]


def _requests_of_every_kind(domain: str) -> dict[str, list[str]]:
    """curl arguments of a page, a JSON-RPC call, a websocket upgrade and a static file."""
    login = json.dumps({"jsonrpc": "2.0", "method": "call",
                        "params": {"db": "dfr", "login": "admin", "password": "x"}})  # fmt: skip
    websocket = [*WEBSOCKET_HEADERS, f"Origin: https://{domain}"]
    return {
        "/web/login": [],
        "/web/session/authenticate": ["-H", "Content-Type: application/json", "--data", login],
        "/websocket": ["--http1.1", *[arg for h in websocket for arg in ("-H", h)]],
        "/web/static/src/img/logo.png": [],
    }


def _login_page_status(target: TargetHost, domain: str) -> str:
    return curl(target, domain, f"https://{domain}/web/login", "-o", "/dev/null",
                "-w", "%{http_code}").stdout  # fmt: skip


@pytest.mark.smoke
def test_while_odoo_is_stopped_every_request_gets_the_maintenance_page(first_run, target, domain):
    """An update's downtime seen from outside: 503 with Retry-After and a page that says so, on
    every kind of route, never a 502; Odoo started again, the same stack answers again."""
    before = _containers(target)
    target.exec(f"docker stop {before['odoo']['id']} >/dev/null")
    try:
        for path, args in _requests_of_every_kind(domain).items():
            reply = curl(target, domain, f"https://{domain}{path}", "-i", *args)
            status, headers, body = answer(reply)
            assert status == 503, (path, status, body[:300])
            assert headers["retry-after"] == "30", path
            assert headers["content-type"].startswith("text/html") and MAINTENANCE_TEXT in body
            assert not re.search(r"(?i)\b(src|href)=|url\(", body)  # nothing to fetch elsewhere
            assert headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"
    finally:
        target.exec(f"cd /opt/dfr/prod && docker compose -p {PROJECT} up -d --wait >/dev/null 2>&1")
    assert _login_page_status(target, domain) == "200"
    after = _containers(target)
    assert _ids_of(after) == _ids_of(before)
    assert all("(healthy)" in container["status"] for container in after.values())


def _inspect(target: TargetHost, container: str, template: str) -> str:
    return target.exec(f"docker inspect -f '{template}' {container}")


def _address(target: TargetHost, container: str) -> str:
    return _inspect(target, container, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")


def test_nginx_follows_a_recreated_odoo_to_its_new_address(first_run, target, domain):
    """Compose recreates Odoo alone on a configuration change and leaves nginx running; the new
    container can come back on another address (forced here: a throw-away container takes the
    old one first), and nginx reaches it without a restart."""
    before = _containers(target)
    old_odoo, nginx = before["odoo"]["id"], before["nginx"]["id"]
    old_address = _address(target, old_odoo)
    network = _inspect(
        target, old_odoo, "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}}{{end}}"
    )
    nginx_started = _inspect(target, nginx, "{{.State.StartedAt}}")
    image = _inspect(target, nginx, "{{.Config.Image}}")
    target.exec(f"docker stop {old_odoo} >/dev/null")
    squatter = target.exec(f"docker run -d --rm --network {network} --entrypoint sleep {image} 600")
    try:
        assert _address(target, squatter) == old_address
        target.exec(f"cd /opt/dfr/prod && docker compose -p {PROJECT} up -d --wait "
                    "--force-recreate --no-deps odoo >/dev/null 2>&1")  # fmt: skip
        new_odoo = _containers(target)["odoo"]["id"]
        assert new_odoo != old_odoo and _address(target, new_odoo) != old_address
        wait_for("nginx to reach the new Odoo",
                 lambda: _login_page_status(target, domain) == "200", timeout=15)  # fmt: skip
    finally:
        target.exec(f"docker rm -f {squatter} >/dev/null; cd /opt/dfr/prod && "
                    f"docker compose -p {PROJECT} up -d --wait >/dev/null 2>&1")  # fmt: skip
    after = _containers(target)
    assert after["nginx"]["id"] == nginx
    assert _inspect(target, nginx, "{{.State.StartedAt}}") == nginx_started  # never restarted
    assert after["postgres"]["id"] == before["postgres"]["id"]
    assert all("(healthy)" in container["status"] for container in after.values())


def test_a_configuration_postgresql_refuses_stops_the_deploy_before_anything_is_replaced(
    first_run, inventory, target
):
    """A typo in a PostgreSQL parameter name passes the settings checks (the parameter set is
    PostgreSQL's to know) but PostgreSQL would not start on it: the deploy stops in one line
    with PostgreSQL's own words, the running containers and their files as they were."""
    settled = pyinfra(inventory, "deploy.py")  # the stack as the project's settings describe it
    assert settled.returncode == 0, settled.stderr[-3000:]
    live = "/opt/dfr/prod/config/postgresql.conf /opt/dfr/prod/compose.yaml"
    files_before, ids_before = target.exec(f"sha256sum {live}"), _ids(target)
    group_data_file(inventory, "postgres_options = {'shared_bufers': '256MB'}\n")
    try:
        run = pyinfra(inventory, "deploy.py")
        assert run.returncode != 0
        assert "the new PostgreSQL configuration (postgresql.conf) is refused" in run.stderr
        assert 'unrecognized configuration parameter "shared_bufers"' in run.stderr
        assert "Traceback" not in run.output
        assert target.exec(f"sha256sum {live}") == files_before
        assert _ids(target) == ids_before
        assert all("(healthy)" in c["status"] for c in _containers(target).values())
    finally:
        (inventory.parent / "group_data" / "prod.py").unlink()
    again = pyinfra(inventory, "deploy.py")
    assert again.returncode == 0 and again.changed() == [], again.changed()


def test_a_base_image_changed_under_its_name_rebuilds_its_image_once(
    first_run, inventory, target, base_images, tmp_path
):
    """The operator's machine has another image under the base's name (a security update
    pulled there): the next deploy sends it, rebuilds the one image built on it under its same
    tag, recreates its container; the run after changes nothing."""
    base = f"dfr-test/nginx-drift:{os.getpid()}"
    subprocess.run(["docker", "tag", base_images["nginx"], base], check=True)
    on_base_named = {"nginx_base_image": base}
    try:
        on_base = pyinfra(inventory, "deploy.py", data=on_base_named)
        assert on_base.returncode == 0, on_base.stderr[-3000:]
        before = _containers(target)["nginx"]["id"]
        (tmp_path / "Dockerfile").write_text(f"FROM {base_images['nginx']}\nLABEL drift=updated\n")
        subprocess.run(["docker", "build", "-q", "-t", base, str(tmp_path)], check=True,
                       capture_output=True)  # fmt: skip

        updated = pyinfra(inventory, "deploy.py", data=on_base_named)
        assert updated.returncode == 0, updated.stderr[-3000:]
        builds = [name for name in updated.changed() if "Build image" in name]
        assert len(builds) == 1 and "Build image dfr/nginx:" in builds[0], builds
        after = _containers(target)["nginx"]
        assert after["id"] != before and "(healthy)" in after["status"]
        image = target.exec(f"docker inspect -f '{{{{.Image}}}}' {after['id']}")
        assert target.exec(f"docker image inspect -f '{{{{.Config.Labels.drift}}}}' {image}") == (
            "updated"
        )
        again = pyinfra(inventory, "deploy.py", data=on_base_named)
        assert again.returncode == 0 and again.changed() == [], again.changed()
    finally:
        subprocess.run(["docker", "rmi", base], check=False, capture_output=True)
    back = pyinfra(inventory, "deploy.py")
    assert back.returncode == 0, back.stderr[-3000:]
