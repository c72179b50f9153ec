"""Odoo's default login must not work: on staging and production every deploy asks the host's
own nginx whether ``admin``/``admin`` logs in, and fails if it does.

A database initialised from the command line (``odoo -i base``) gives the user admin the
password admin (odoo18-facts.md 13); the Odoo image's entrypoint replaces it with the
environment's DFR_ODOO_ADMIN_USER_PASSWORD before the server answers. This check proves it.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Generator

from pyinfra import host, state
from pyinfra.api import FactBase, FunctionCommand, operation

from tasks.errors import StepFailed, failing_in_one_line
from tasks.settings import Settings

DEFAULT_LOGIN = ("admin", "admin")


class DefaultAdminLogin(FactBase):
    """True when admin/admin logs in through the host's nginx (JSON-RPC
    ``/web/session/authenticate``), False when refused, None when there was no JSON answer."""

    def command(self, domain: str, port: int, db: str) -> str:
        login, password = DEFAULT_LOGIN
        params = {"db": db, "login": login, "password": password}
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "call", "params": params})
        url = f"https://{domain}:{port}/web/session/authenticate"
        return (
            f"curl -sk --max-time 30 --retry 5 --retry-delay 2 --retry-all-errors "
            f"--resolve {domain}:{port}:127.0.0.1 -H 'Content-Type: application/json' "
            f"--data {shlex.quote(body)} {url} || true"
        )

    def process(self, output: list[str]) -> bool | None:
        try:
            reply = json.loads("\n".join(output))
        except ValueError:
            return None
        if not isinstance(reply, dict) or not ("result" in reply or "error" in reply):
            return None
        return bool((reply.get("result") or {}).get("uid"))


@operation()
def refuse_default_admin_login(settings: Settings) -> Generator[FunctionCommand, None, None]:
    """No change when admin/admin is refused; fails the run in one line when it logs in (or
    when the host's Odoo does not answer). Asked at execute time, once the stack is up: while
    the run is prepared the stack may not exist yet."""
    if not state.is_executing:
        return
    accepted = host.get_fact(
        DefaultAdminLogin, domain=settings.domain, port=settings.https_port, db=settings.db_name
    )
    if accepted is False:
        host.noop(f"admin/admin is refused at {settings.url}")
        return
    if accepted:
        problem = (
            f"{host.name}: admin/admin logs in to {settings.url}: the admin user still has "
            "Odoo's default password; set DFR_ODOO_ADMIN_USER_PASSWORD in the secrets file "
            "(a new value) and deploy again: the Odoo container applies it when it starts"
        )
    else:
        problem = (
            f"{host.name}: {settings.url}web/session/authenticate gave no JSON-RPC answer, so "
            "whether admin/admin logs in is unknown: check 'docker compose logs odoo nginx'"
        )
    yield FunctionCommand(_fail, (problem,), {})


@failing_in_one_line
def _fail(problem: str) -> None:
    raise StepFailed(problem)
