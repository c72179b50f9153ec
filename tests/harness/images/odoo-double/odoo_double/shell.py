"""`odoo shell -d DB` with a script on stdin (odoo/cli/shell.py, odoo18-facts.md 2): the script
runs with ``env`` bound, as the superuser, and its changes are rolled back at the end unless it
commits (``env.cr.commit()``).

The double's ``env`` knows only what dfr-deploy's scripts use: ``env.ref(xmlid)`` of a
``res.users`` record, that record's ``password`` (set: stored hashed, as res.users does) and
``login``, and ``env.cr`` (execute, fetch*, commit, rollback). Anything else raises, naming the
double.
"""

from __future__ import annotations

from typing import Any

from . import database
from .sql_db import Cursor

DOUBLE = "is not implemented by the Odoo test double"


class Users:
    """A ``res.users`` record."""

    def __init__(self, cr: Any, res_id: int) -> None:
        object.__setattr__(self, "_cr", cr)
        object.__setattr__(self, "id", res_id)

    @property
    def login(self) -> str:
        self._cr.execute("SELECT login FROM res_users WHERE id = %s", (self.id,))
        return self._cr.fetchone()[0]

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "password":
            raise NotImplementedError(f"res.users.{name} = … {DOUBLE}")
        stored = database.hash_password(value) if value else None
        self._cr.execute("UPDATE res_users SET password = %s WHERE id = %s", (stored, self.id))


class Environment:
    def __init__(self, cr: Cursor) -> None:
        self.cr = cr

    def ref(self, xmlid: str) -> Users:
        module, _, name = xmlid.partition(".")
        self.cr.execute(
            "SELECT model, res_id FROM ir_model_data WHERE module = %s AND name = %s",
            (module, name),
        )
        row = self.cr.fetchone()
        if not row:
            raise ValueError(f"External ID not found in the system: {xmlid}")
        if row[0] != "res.users":
            raise NotImplementedError(f"env.ref of a {row[0]} record {DOUBLE}")
        return Users(self.cr, row[1])


def run_script(conf: dict[str, Any], dbname: str, script: str) -> None:
    """Runs ``script`` with ``env``; what it did not commit is rolled back."""
    cnx = database.connect(conf, dbname)
    try:
        with cnx.cursor() as cr:
            env = Environment(Cursor(cnx, cr))
            exec(compile(script, "<stdin>", "exec"), {"env": env})
        cnx.rollback()
    finally:
        cnx.close()
