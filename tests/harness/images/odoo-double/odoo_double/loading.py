"""Loading a database's modules, as Registry.new() does (odoo/modules/loading.py, registry.py).

-i marks modules (with their dependencies and auto_install followers) `to install`, -u marks the
named installed modules and every installed module depending on them `to upgrade`. The marked
modules are then loaded in dependency order (depth, then name): the updates first, then the
installs, each module in its own transaction: an update runs its `pre-` migration scripts, loads
the module (nothing to load in the double), runs its `post-` scripts and commits; only then is
the module written `installed` at its new version, in the next module's transaction. `end-`
scripts follow once every module is loaded. When anything raises, the open transaction is
rolled back, the `to …` states are reset and the error propagates to the server
("Failed to initialize database").
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from . import config, database, db_context, migration
from .database import Module
from .sql_db import Cursor

_logger = logging.getLogger("odoo.modules.loading")
_registry = logging.getLogger("odoo.modules.registry")


class ModuleError(Exception):
    pass


def load(conf: dict[str, Any], dbname: str, new: bool = False) -> None:
    """Registry.new(dbname): initialise a new database, apply -i/-u, or only check it.

    Modules are installed or updated only when asked for (-i/-u, or a new database), or when an
    interrupted run left them `to upgrade`.
    """
    init, update = config.modules_arg(conf["init"]), config.modules_arg(conf["update"])
    if new:
        init.add("base")
    with db_context(dbname):
        cnx = database.connect(conf, dbname)
        try:
            with cnx.cursor() as cr:
                _load_modules(cnx, cr, conf, init, update)
            cnx.commit()
        except Exception:
            cnx.close()  # what the failing module did is rolled back
            reset_modules_state(conf, dbname)
            _registry.error("Failed to load registry")
            raise
        finally:
            cnx.close()


def reset_modules_state(conf: dict[str, Any], dbname: str) -> None:
    with database.cursor(conf, dbname) as cr:
        if not database.table_exists(cr, "ir_module_module"):
            _logger.info("skipping reset_modules_state, ir_module_module table does not exists")
            return
        cr.execute(
            "UPDATE ir_module_module SET state = 'installed'"
            " WHERE state IN ('to remove', 'to upgrade')"
        )
        cr.execute("UPDATE ir_module_module SET state = 'uninstalled' WHERE state = 'to install'")
        _logger.warning("Transient module states were reset")


def _load_modules(
    cnx: Any, cr: database.Cursor, conf: dict[str, Any], init: set[str], update: set[str]
) -> None:
    if not database.table_exists(cr, "ir_module_module"):
        if not (init or update):
            _logger.error(
                "Database %s not initialized, you can force it with `-i base`", cnx.info.dbname
            )
            return
        _logger.info("init db")
        cr.execute(database.SCHEMA)
        database.init_parameters(cr, conf)
        init.add("base")
    available: dict[str, Module] = {}
    update_module = bool(init or update)
    if update_module:
        _logger.info("updating modules list")
        available = database.find_modules(conf)
        for module in available.values():
            cr.execute(
                "INSERT INTO ir_module_module (name, auto_install) VALUES (%s, %s)"
                " ON CONFLICT (name) DO NOTHING",
                (module.name, bool(module.manifest.get("auto_install"))),
            )
        unknown = (init | update) - set(available) - {"all"}
        if unknown:
            _logger.warning("invalid module names, ignored: %s", ", ".join(sorted(unknown)))
        _mark_install(cr, available, init - {"all"})
        _mark_install(cr, available, _mark_upgrade(cr, available, update))
    states = ("to upgrade", "to install") if update_module else ("to upgrade",)
    cr.execute(
        "SELECT name, state, coalesce(latest_version, '') FROM ir_module_module WHERE state IN %s",
        (states,),
    )
    pending = {name: (state, version) for name, state, version in cr.fetchall()}
    if pending:
        _load_marked(cnx, cr, conf, available or database.find_modules(conf), pending)
    cr.execute("SELECT count(*) FROM ir_module_module WHERE state = 'installed'")
    _logger.info("%d modules loaded", cr.fetchone()[0])


def _mark_install(cr: database.Cursor, available: dict[str, Module], names: set[str]) -> None:
    """button_install: the modules, their missing dependencies first, then the auto_install
    modules whose dependencies are then all there."""
    cr.execute("SELECT name, state FROM ir_module_module")
    states = dict(cr.fetchall())
    present = {n for n, s in states.items() if s in ("installed", "to upgrade", "to install")}
    installing = {n for n, s in states.items() if s == "to install"}
    todo: list[str] = []

    def add(name: str, wanted_by: str) -> None:
        if name in present or name in todo:
            return
        if name not in available:
            raise ModuleError(
                f'You try to install module "{wanted_by}" that depends on module "{name}".\n'
                "But the latter module is not available in your system."
            )
        for dependency in available[name].depends:
            add(dependency, name)
        todo.append(name)

    for name in sorted(n for n in names if n in available):
        add(name, name)
    while True:
        done, new = present | set(todo), installing | set(todo)
        extra = sorted(
            n for n, m in available.items() if n not in done and m.auto_install_ready(done, new)
        )
        if not extra:
            break
        for name in extra:
            add(name, name)
    if todo:
        cr.execute("UPDATE ir_module_module SET state = 'to install' WHERE name = ANY(%s)", (todo,))


def _mark_upgrade(cr: database.Cursor, available: dict[str, Module], names: set[str]) -> set[str]:
    """button_upgrade: the named installed modules (`all`: every one) and the installed modules
    depending on them. Returns their dependencies, for those not installed yet to be."""
    cr.execute(
        "SELECT name FROM ir_module_module WHERE state IN ('installed', 'to upgrade') ORDER BY name"
    )
    installed = [name for (name,) in cr.fetchall() if name in available]
    todo = list(installed) if "all" in names else [n for n in installed if n in names]
    index = 0
    while index < len(todo):
        upgraded = todo[index]
        index += 1
        todo += [n for n in installed if n not in todo and upgraded in available[n].depends]
    if todo:
        cr.execute("UPDATE ir_module_module SET state = 'to upgrade' WHERE name = ANY(%s)", (todo,))
    dependencies = set()
    for name in todo:
        for dependency in available[name].depends:
            if dependency not in available:
                raise ModuleError(
                    f"You try to upgrade the module {name} that depends on the module:"
                    f" {dependency}.\nBut this module is not available in your system."
                )
            dependencies.add(dependency)
    return dependencies


def _graph_order(available: dict[str, Module], names: list[str]) -> list[str]:
    """The module graph's order: by depth in the dependency tree, then by name."""

    @functools.cache
    def depth(name: str) -> int:
        depends = [d for d in available[name].depends if d in available]
        return 1 + max(map(depth, depends)) if depends else 0

    return sorted(names, key=lambda n: (depth(n), n))


def _load_order(available: dict[str, Module], pending: dict[str, tuple[str, str]]) -> list[str]:
    """Updates whose dependencies are all installed first, then the installs and the updates
    waiting for one of them (STEP 3 of load_modules), each part in the graph's order."""

    @functools.cache
    def waits(name: str) -> bool:
        return any(
            pending.get(d, ("",))[0] == "to install" or waits(d)
            for d in available[name].depends
            if d in available
        )

    names = _graph_order(available, [n for n in pending if n in available])
    first = [n for n in names if pending[n][0] == "to upgrade" and not waits(n)]
    return first + [n for n in names if n not in first]


def _load_marked(
    cnx: Any,
    cr: database.Cursor,
    conf: dict[str, Any],
    available: dict[str, Module],
    pending: dict[str, tuple[str, str]],
) -> None:
    todo = _load_order(available, pending)
    script_cr = Cursor(cnx, cr)
    demo = not conf["without_demo"]
    _logger.info("loading %d modules...", len(todo))
    for index, name in enumerate(todo, 1):
        module, (state, installed) = available[name], pending[name]
        _logger.info("Loading module %s (%d/%d)", name, index, len(todo))
        if state == "to upgrade":
            for stage in ("pre", "post"):
                migration.migrate_module(
                    script_cr, name, module.path, stage, installed, module.version
                )
        else:
            cr.execute("UPDATE ir_module_module SET demo = %s WHERE name = %s", (demo, name))
            if name == "base":
                database.load_base_data(cr, demo)
        cnx.commit()
        cr.execute(
            "UPDATE ir_module_module SET state = 'installed', latest_version = %s,"
            " write_date = now() AT TIME ZONE 'UTC' WHERE name = %s",
            (module.version, name),
        )
        done = "updated to" if state == "to upgrade" else "installed"
        _logger.info("module %s: %s %s", name, done, module.version)
    for name in _graph_order(available, todo):
        state, installed = pending[name]
        if state == "to upgrade":
            module = available[name]
            migration.migrate_module(script_cr, name, module.path, "end", installed, module.version)
