"""Odoo module updates: an explicit deploy step, run once before Odoo restarts on new code."""

from __future__ import annotations

import re
import shlex

from pyinfra import host, logger
from pyinfra.operations import server

from tasks.errors import SettingsError
from tasks.facts import ComposeProject, ContainerLabel
from tasks.images import Image
from tasks.settings import Settings

_MODULE = re.compile(r"[a-z0-9_]+")  # fullmatch: "$" would let a trailing newline through


def requested_modules(asked: object) -> list[str]:
    """The module names of ``--data update_modules=a,b`` (or ``all``), checked."""
    names = asked if isinstance(asked, list) else str(asked or "").split(",")
    names = [str(name).strip(" ") for name in names if str(name).strip(" ")]
    bad = [name for name in names if not _MODULE.fullmatch(name)]
    if bad:
        raise SettingsError(
            f"update_modules has {', '.join(map(repr, bad))}: give module names like dfr_base, "
            "or all"
        )
    return names


def modules_to_update(settings: Settings, odoo_image: Image) -> list[str]:
    """``--data update_modules=a,b`` (or ``all``), else the DFR modules when the addons changed."""
    names = requested_modules(host.data.get("update_modules"))
    found = host.get_fact(ComposeProject, directory=settings.stack_dir, project=settings.project)
    running = (found or {}).get("have", {}).get("odoo")
    if not running:
        if names:
            logger.info(f"{host.name}: first deployment, modules are installed, not updated")
        return []
    if names:
        return names
    if not settings.odoo_modules:
        return []
    deployed = host.get_fact(ContainerLabel, container=running["id"], label="dfr.addons-sha")
    if deployed and deployed != odoo_image.addons_sha:
        logger.info(f"{host.name}: the DFR addons changed: {', '.join(settings.odoo_modules)}")
        return list(settings.odoo_modules)
    return []


def update_modules(settings: Settings, modules: list[str]) -> None:
    """Stop Odoo, run ``-u`` with the new image once, leave the restart to ``compose up``."""
    compose = f"cd {settings.stack_dir} && docker compose -p {settings.project}"
    names = shlex.quote(",".join(modules))
    server.shell(
        name=f"Update Odoo modules {','.join(modules)} (Odoo stopped meanwhile)",
        commands=[
            f"{compose} stop odoo",
            f"{compose} run --rm --no-deps odoo odoo -d {settings.db_name} -u {names} "
            "--stop-after-init",
        ],
    )
