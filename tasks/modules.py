"""Odoo module updates: an explicit deploy step that cannot leave the stack broken.

A module is updated when its own files changed since the running image (each addon's content
hash is a label of the Odoo image), or when ``--data update_modules=a,b`` (or ``all``) asks; a
module of ``odoo_modules`` the database does not have is installed. The update runs once, with
Odoo stopped, on a snapshot of the database and filestore that ``bin/dfr-update`` puts back,
with the release before, if it fails (``files/backup/dfr-update.sh``).
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Generator
from dataclasses import dataclass

from pyinfra import host, logger
from pyinfra.api import FactBase, FunctionCommand, operation
from pyinfra.operations import server

from tasks.errors import SettingsError, StepFailed, failing_in_one_line
from tasks.facts import ComposeProject, ContainerLabel, running_postgres
from tasks.host_commands import run_on_host
from tasks.images import Image
from tasks.releases import mark_release, release_id
from tasks.settings import Settings

_MODULE = re.compile(r"[a-z0-9_]+")  # fullmatch: "$" would let a trailing newline through
ROLLED_BACK = "dfr-update: rolled back"


@dataclass(frozen=True)
class ModuleChanges:
    update: tuple[str, ...] = ()
    install: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.update or self.install)

    @property
    def operation_name(self) -> str:
        installing = f", install {','.join(self.install)}" if self.install else ""
        return (f"Update Odoo modules {','.join(self.update) or '-'}{installing} on a snapshot "
                "(Odoo stopped meanwhile)")  # fmt: skip

    def describe(self) -> str:
        parts = [f"update {','.join(self.update)}"] if self.update else []
        parts += [f"install {','.join(self.install)}"] if self.install else []
        return " and ".join(parts)


class InstalledModules(FactBase):
    """Names of the modules installed in the stack's database; None when it cannot be asked."""

    def command(self, project: str, db: str) -> str:
        postgres = running_postgres(project)
        query = "SELECT name FROM ir_module_module WHERE state = 'installed'"
        return (
            f'id=$({postgres}); [ -n "$id" ] || exit 0; echo asked; '
            f"docker exec -u postgres $id psql -X -tA -d {shlex.quote(db)} -c {shlex.quote(query)}"
            " 2>/dev/null || true"
        )

    def process(self, output: list[str]) -> set[str] | None:
        if not output or output[0] != "asked" or len(output) == 1:
            return None
        return {line.strip() for line in output[1:] if line.strip()}


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


def module_changes(settings: Settings, odoo_image: Image) -> ModuleChanges:
    """What this deploy updates and installs in the running stack's database."""
    forced = requested_modules(host.data.get("update_modules"))
    found = host.get_fact(ComposeProject, directory=settings.stack_dir, project=settings.project)
    running = (found or {}).get("have", {}).get("odoo")
    if not running:
        if forced:
            logger.info(f"{host.name}: first deployment, modules are installed, not updated")
        return ModuleChanges()
    installed = host.get_fact(InstalledModules, project=settings.project, db=settings.db_name)
    install = tuple(
        m for m in settings.odoo_modules if installed is not None and m not in installed
    )
    if forced:
        return ModuleChanges(tuple(m for m in forced if m not in install), install)
    label = host.get_fact(ContainerLabel, container=running["id"], label="dfr.module-shas")
    if label:
        deployed = dict(pair.split("=", 1) for pair in label.split(",") if "=" in pair)
        update = tuple(
            name
            for name, sha in odoo_image.module_shas
            if deployed.get(name) != sha
            and name not in install
            and (name in installed if installed is not None else name in settings.odoo_modules)
        )
    else:  # an image built before per-module hashes: all of odoo_modules when the addons changed
        deployed_sha = host.get_fact(
            ContainerLabel, container=running["id"], label="dfr.addons-sha"
        )
        changed = deployed_sha and deployed_sha != odoo_image.addons_sha
        update = tuple(m for m in settings.odoo_modules if m not in install) if changed else ()
    if update:
        logger.info(f"{host.name}: the files of {', '.join(update)} changed")
    return ModuleChanges(update, install)


def keep_running_release(settings: Settings) -> None:
    """The compose file and configuration the stack runs on, for the update to fall back on:
    taken before this deploy writes new ones."""
    base = shlex.quote(settings.stack_dir)
    server.shell(
        name="Keep the running release's compose.yaml and config/ (previous/)",
        commands=[
            f"rm -rf {base}/previous && mkdir -p {base}/previous && "
            f"cp -a {base}/compose.yaml {base}/config {base}/previous/"
        ],
    )


@operation()
def update_modules(settings: Settings, changes: ModuleChanges) -> Generator[FunctionCommand]:
    """Stops Odoo and updates on a snapshot (``bin/dfr-update``); compose up starts the new Odoo.
    A failed update is put back, and fails the run with the update's own error lines."""
    yield FunctionCommand(_update, (settings, changes), {})


@failing_in_one_line
def _update(settings: Settings, changes: ModuleChanges) -> None:
    release = release_id() or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    command = " ".join(
        shlex.quote(part)
        for part in (
            f"{settings.stack_dir}/bin/dfr-update",
            release,
            ",".join(changes.update),
            ",".join(changes.install),
        )
    )
    ok, output = run_on_host(command)
    if ok:
        mark_release(snapshot=f"{settings.db_name}_before_{release}")  # rollback's way back
        logger.info(f"{host.name}: modules: {changes.describe()} done")
        return
    said = [line.strip() for line in output.stdout_lines if line.strip()]
    if said and said[-1] == ROLLED_BACK:
        odoo_said = " / ".join(said[:-1]) or "no error line in its log"
        mark_release(result="rolled back", error=odoo_said)
        raise StepFailed(
            f"{host.name}: the module update ({changes.describe()}) failed and was rolled back: "
            f"Odoo serves the release before it, on its database and filestore as they were. "
            f"Odoo said: {odoo_said}"
        )
    reason = " / ".join(said or output.stderr_lines[-1:]) or "no reason given"
    raise StepFailed(f"{host.name}: the module update ({changes.describe()}) failed: {reason}")
