"""Put back a previous release: its images, its configuration, gated on health.

    pyinfra inventories/prod.py tasks/rollback.py                      # the release before
    pyinfra inventories/prod.py tasks/rollback.py --data release=ID    # a named one

The release is one the host's release log records as deployed with success, whose files
(``releases/<id>/``) and images are still kept (the newest ``releases_kept``). Secrets and TLS
files stay as they are now. Releases since then that updated modules changed the database:
going back over them is refused (their code would run on a database migrated past it).
"""

from __future__ import annotations

import shlex
from typing import Any

from pyinfra import host
from pyinfra.api import FactBase
from pyinfra.operations import server

from tasks.compose import compose_up
from tasks.config_check import CANDIDATES
from tasks.deploy_lock import hold_deploy_lock, releases_file
from tasks.errors import SettingsError
from tasks.facts import ImageIds
from tasks.releases import ReleaseLog, ReleasePlan, release_finished, release_started
from tasks.settings import Settings
from tasks.stack import check_health_through_nginx


class ReleaseImages(FactBase):
    """The images a kept release's compose.yaml names; None when its files are gone."""

    def command(self, compose_file: str) -> str:
        path = shlex.quote(compose_file)
        return f"if [ -f {path} ]; then echo kept; sed -n 's/^ *image: *//p' {path}; fi"

    def process(self, output: list[str]) -> list[str] | None:
        if not output or output[0] != "kept":
            return None
        return [line.strip() for line in output[1:] if line.strip()]


def rollback_target(records: list[dict[str, Any]], asked: str | None) -> dict[str, Any]:
    """The release to go back to: ``asked``, or the deploy before the one running now."""
    done = [record for record in records if record.get("result") == "ok"]
    if not done:
        raise SettingsError("no successful release is recorded on this host: nothing to go back to")
    running = done[-1].get("rolled_back_to") or done[-1]["id"]
    deploys = [record for record in done if record.get("kind") == "deploy"]
    if asked:
        found = [record for record in deploys if record["id"] == asked]
        if not found:
            known = ", ".join(record["id"] for record in deploys[-5:]) or "none"
            raise SettingsError(f"release {asked!r} is not a successful deploy recorded here "
                                f"(latest: {known}): see make releases")  # fmt: skip
        target = found[0]
    else:
        earlier = [record for record in deploys if record["id"] < running]
        if not earlier:
            raise SettingsError(f"no release before {running} is recorded: nothing to go back to")
        target = earlier[-1]
    if target["id"] == running:
        raise SettingsError(f"release {running} is the one running: nothing to do")
    migrated = [
        record["id"]
        for record in done
        if record["id"] > target["id"]
        and (record.get("modules_updated") or record.get("modules_installed"))
    ]
    if migrated:
        raise SettingsError(
            f"release {', '.join(migrated)} updated modules after {target['id']}: its code would "
            "run on a database migrated past it; restore the backup taken before that update"
        )
    return target


def rollback(settings: Settings, asked: str | None) -> None:
    records = host.get_fact(ReleaseLog, path=releases_file(settings)) or []
    target = rollback_target(records, asked)
    kept = f"{settings.stack_dir}/releases/{target['id']}"
    images = host.get_fact(ReleaseImages, compose_file=f"{kept}/compose.yaml")
    if images is None:
        raise SettingsError(f"the files of release {target['id']} are no longer kept on "
                            f"{host.name} (see releases_kept): choose a newer one")  # fmt: skip
    present = host.get_fact(ImageIds, refs=tuple(images)) or {}
    missing = [image for image in images if image not in present]
    if missing:
        raise SettingsError(f"image {missing[0]} of release {target['id']} is no longer on "
                            f"{host.name}: choose a newer release")  # fmt: skip
    release = ReleasePlan("rollback", tuple(images), {"rolled_back_to": target["id"]})
    release_started(name="Open the release record", settings=settings, release=release)
    base = shlex.quote(settings.stack_dir)
    put_back = server.shell(
        name=f"Put back the configuration of release {target['id']}",
        commands=[
            f"cp -a {kept}/compose.yaml {base}/compose.yaml",
            f"cp -a {kept}/config/. {base}/config/",
            f"cp -a {kept}/config/. {base}/{CANDIDATES}/",
        ],
    )
    compose_up(
        name=f"Bring {settings.project} up on release {target['id']} (healthy)",
        directory=settings.stack_dir,
        project=settings.project,
        inputs=[put_back],
    )
    check_health_through_nginx(settings)
    release_finished(name="Record the rollback", settings=settings, release=release)


def rollback_entry() -> None:
    from tasks.offsite_settings import is_backup_host
    from tasks.stack import stack_settings

    if is_backup_host():  # it runs no stack
        return
    settings = stack_settings()
    hold_deploy_lock(settings, "tasks/rollback.py")
    asked = host.data.get("release")
    rollback(settings, str(asked) if asked else None)


# pyinfra runs this file as a deploy without a module name; importing it only defines.
if __name__ == "builtins":
    rollback_entry()
