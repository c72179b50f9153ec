"""What the stack tests share: inventories for target hosts, and requests from outside."""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tasks.tls import self_signed_pair
from tests.harness.hosts import HostPool, TargetHost
from tests.harness.images import docker_ready_image
from tests.harness.pyinfra_run import PyinfraRun, pyinfra
from tests.unit.environments import STRONG

GOAWAY_BEFORE_ANY_STREAM = 16  # curl: "Error in the HTTP2 framing layer"
WEBSOCKET_HEADERS = [
    "Connection: Upgrade",
    "Upgrade: websocket",
    "Sec-WebSocket-Version: 13",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
]


# Staging's admin user has a password of its own: a copy of production restored there keeps
# production's (test_backup_restore.py).
ADMIN_USER_PASSWORDS = {"staging": "sG5hJ8kL2mQ7wE4rT9yU3i"}


def env_secrets(env: str) -> dict[str, str]:
    """The secrets the tests give ``env``."""
    admin = ADMIN_USER_PASSWORDS.get(env, STRONG["DFR_ODOO_ADMIN_USER_PASSWORD"])
    return {**STRONG, "DFR_ODOO_ADMIN_USER_PASSWORD": admin}


def stack_data(
    workdir: Path, host: TargetHost, env: str, base_images: dict[str, str], docker_data: dict
) -> dict:
    """Host data for ``env`` on ``host``: its own domain and certificate, our secrets, the
    harness stand-ins uploaded as base images."""
    domain = f"{host.name}.{env}.dfr.test"
    secrets = workdir / f"{env}.env"
    secrets.write_text("".join(f"{k}={v}\n" for k, v in env_secrets(env).items()))
    secrets.chmod(0o600)
    cert, key = self_signed_pair(domain)
    (workdir / f"{host.name}.crt").write_bytes(cert)
    (workdir / f"{host.name}.key").write_bytes(key)
    return {
        **docker_data,
        "dfr_domain": domain,
        "secrets_file": str(secrets),
        "tls_certificate": str(workdir / f"{host.name}.crt"),
        "tls_certificate_key": str(workdir / f"{host.name}.key"),
        "image_source": "upload",
        "odoo_modules": ["dfr_base"],
        "odoo_base_image": base_images["odoo"],
        "postgres_base_image": base_images["postgres"],
        "nginx_base_image": base_images["nginx"],
    }


def stack_inventory(
    pool: HostPool, hosts: list[TargetHost], env: str, base_images: dict, docker_data: dict
) -> Path:
    path = pool.inventory(hosts, name=env)
    lines = ["targets = ["]
    for host in hosts:
        name, data = host.inventory_entry()
        data.update(stack_data(path.parent, host, env, base_images, docker_data))
        lines.append(f"    ({name!r}, {data!r}),")
    path.write_text("\n".join([*lines, "]", ""]))
    return path


def prod_target_fixtures(prefix: str) -> tuple[Callable, ...]:
    """The module fixtures of a test file with a prod target host of its own, deployed once:
    ``target, inventory, domain, first_run = prod_target_fixtures("release")``."""

    @pytest.fixture(scope="module")
    def target(start_hosts, pool: HostPool) -> TargetHost:
        (host,) = start_hosts(docker_ready_image(), prefix=prefix)
        return host

    @pytest.fixture(scope="module")
    def inventory(pool, target, base_images, distro_docker_data) -> Path:
        return stack_inventory(pool, [target], "prod", base_images, distro_docker_data)

    @pytest.fixture(scope="module")
    def domain(target) -> str:
        return f"{target.name}.prod.dfr.test"

    @pytest.fixture(scope="module")
    def first_run(inventory) -> PyinfraRun:
        run = pyinfra(inventory, "deploy.py")
        assert run.returncode == 0, run.stderr[-4000:]
        return run

    return target, inventory, domain, first_run


def curl(
    host: TargetHost, domain: str, url: str, *args: str, input: bytes | None = None
) -> subprocess.CompletedProcess:
    """curl from this machine to ``host`` as if ``domain`` resolved to it."""
    proc = subprocess.run(
        ["curl", "-sS", "-k", "--max-time", "10", "--resolve", f"{domain}:443:{host.address}",
         "--resolve", f"{domain}:80:{host.address}", *args, url],
        capture_output=True, input=input, check=False,
    )  # fmt: skip
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace"),
    )  # fmt: skip


def authenticate(host: TargetHost, domain: str, login: str, password: str) -> dict:
    """JSON-RPC ``/web/session/authenticate`` from outside, through the host's nginx."""
    params = {"db": "dfr", "login": login, "password": password}
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "call", "params": params})
    reply = curl(host, domain, f"https://{domain}/web/session/authenticate",
                 "-H", "Content-Type: application/json", "--data-binary", "@-",
                 input=body.encode())  # fmt: skip
    assert reply.returncode == 0, reply.stderr
    return json.loads(reply.stdout)


def logs_in(host: TargetHost, domain: str, login: str, password: str) -> bool:
    answer = authenticate(host, domain, login, password)
    assert "result" in answer or answer["error"]["data"]["name"] == "odoo.exceptions.AccessDenied"
    return bool(answer.get("result", {}).get("uid"))


def psql(host: TargetHost, sql: str, db: str = "dfr", user: str = "postgres") -> str:
    """Run SQL (as the superuser, or ``user``) in the stack's PostgreSQL container on ``host``."""
    return host.exec(
        "docker exec -i $(docker ps -q --filter label=com.docker.compose.service=postgres) "
        f"psql -X -v ON_ERROR_STOP=1 -U {user} -d {db} -tAq",
        input=sql.encode(),
    )


@contextlib.contextmanager
def requests_through_nginx(host: TargetHost, domain: str, path: str) -> Iterator[list[str]]:
    """Requests ``path`` through the host's nginx one after another while the block runs; the
    list holds each answer's HTTP status, or "000 <curl's error>" for no answer (within 30 s:
    on this 2-core machine a busy test run can hold one request for seconds).

    Over HTTP/2, as browsers talk to it. A request whose new connection nginx closed with
    GOAWAY before it processed any stream (a worker that got a graceful reload's signal just
    after accepting it; curl says "HTTP2 framing layer") is sent again once, as browsers do
    with requests a GOAWAY left unprocessed (RFC 9113, 8.7)."""
    codes: list[str] = []
    done = threading.Event()

    def request() -> subprocess.CompletedProcess:
        return curl(host, domain, f"https://{domain}{path}", "-o", "/dev/null",
                    "-w", "%{http_code}", "--max-time", "30")  # fmt: skip

    def loop() -> None:
        while not done.is_set():
            answer = request()
            if answer.returncode == GOAWAY_BEFORE_ANY_STREAM:
                answer = request()
            codes.append(answer.stdout if answer.returncode == 0 else f"000 {answer.stderr}")

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    try:
        yield codes
    finally:
        done.set()
        worker.join()
