"""The cursor Odoo code is given (odoo/sql_db.py): it commits and rolls back itself."""

from __future__ import annotations

from typing import Any


class Cursor:
    """``env.cr`` of the shell and ``cr`` of migration scripts: the calls they make."""

    def __init__(self, cnx: Any, cr: Any) -> None:
        self._cnx, self._cr = cnx, cr
        self.dbname: str = cnx.info.dbname

    def execute(self, query: str, params: Any = None) -> None:
        self._cr.execute(query, params)

    @property
    def rowcount(self) -> int:
        return self._cr.rowcount

    def fetchone(self) -> Any:
        return self._cr.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cr.fetchall()

    def dictfetchall(self) -> list[dict[str, Any]]:
        names = [column.name for column in self._cr.description]
        return [dict(zip(names, row, strict=True)) for row in self._cr.fetchall()]

    def commit(self) -> None:
        self._cnx.commit()

    def rollback(self) -> None:
        self._cnx.rollback()
