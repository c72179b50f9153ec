"""Put back a previous release: its images, its configuration, gated on health.

    pyinfra inventories/prod.py tasks/rollback.py                      # the release before
    pyinfra inventories/prod.py tasks/rollback.py --data release=ID    # a named one

The release is one the host's release log records as deployed with success and still in
effect (not undone by a rollback since), whose files (``releases/<id>/``) and images are still
kept (the newest ``releases_kept``). Secrets and TLS files stay as they are now. Going back over
a release that updated modules puts back the database and filestore snapshot taken before its
update too (``bin/dfr-put-back``): the data written since is lost, so the run is refused with
the snapshot's age until ``--data confirm_snapshot=<that release>`` says so.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyinfra import host, logger
from pyinfra.api import FactBase, FunctionCommand, operation
from pyinfra.operations import server

from tasks.compose import compose_up
from tasks.config_check import CANDIDATES
from tasks.deploy_lock import hold_deploy_lock, releases_file
from tasks.errors import SettingsError, StepFailed, failing_in_one_line
from tasks.facts import ImageIds, running_postgres
from tasks.host_commands import run_on_host
from tasks.releases import ReleaseLog, ReleasePlan, release_finished, release_id, release_started
from tasks.settings import Settings
from tasks.stack import check_health_through_nginx

RELEASE_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z")
UNDONE = "dfr-put-back: undone"


class ReleaseImages(FactBase):
    """The images a kept release's compose.yaml names; None when its files are gone."""

    def command(self, compose_file: str) -> str:
        path = shlex.quote(compose_file)
        return f"if [ -f {path} ]; then echo kept; sed -n 's/^ *image: *//p' {path}; fi"

    def process(self, output: list[str]) -> list[str] | None:
        if not output or output[0] != "kept":
            return None
        return [line.strip() for line in output[1:] if line.strip()]


class SnapshotTaken(FactBase):
    """When bin/dfr-update took its snapshot before ``release``'s module update (``taken``'s
    text, or "untimed" for one taken before that was written); None when it is no longer kept."""

    def command(self, project: str, db: str, release: str) -> str:
        query = f"SELECT count(*) FROM pg_database WHERE datname = '{db}_before_{release}'"
        return (
            f"v=$(docker volume inspect -f '{{{{.Mountpoint}}}}' {project}_odoo-data 2>/dev/null)"
            f' && [ -d "$v/dfr-snapshots/{release}" ] || exit 0; id=$({running_postgres(project)})'
            f'; [ -n "$id" ] && [ "$(docker exec -u postgres "$id" psql -X -tA -d postgres -c '
            f'{shlex.quote(query)})" = 1 ] || exit 0; '
            f'cat "$v/dfr-snapshots/{release}/taken" 2>/dev/null || echo untimed'
        )

    def process(self, output: list[str]) -> str | None:
        return output[0].strip() if output and output[0].strip() else None


@dataclass(frozen=True)
class RollbackPlan:
    target: dict[str, Any]
    # the first release after the target that updated or installed modules: the snapshot taken
    # before its update goes back with the target's code
    over_update: dict[str, Any] | None = None


def releases_in_effect(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The successful deploys the stack stands on, oldest first: a rollback to a release
    undoes the deploys after it."""
    in_effect: list[dict[str, Any]] = []
    for record in records:
        if record.get("result") != "ok":
            continue
        if record.get("kind") == "deploy":
            in_effect.append(record)
        elif record.get("kind") == "rollback" and record.get("rolled_back_to"):
            in_effect = [done for done in in_effect if done["id"] <= record["rolled_back_to"]]
    return in_effect


def rollback_target(records: list[dict[str, Any]], asked: str | None) -> RollbackPlan:
    """The release to go back to: ``asked``, or the deploy before the one running now."""
    in_effect = releases_in_effect(records)
    if not in_effect:
        raise SettingsError("no successful release is recorded on this host: nothing to go back to")
    running = in_effect[-1]["id"]
    if asked:
        found = [record for record in in_effect if record["id"] == asked]
        if not found:
            known = ", ".join(record["id"] for record in in_effect[-5:])
            raise SettingsError(f"release {asked!r} is not a successful deploy in effect here "
                                f"(latest: {known}): see make releases")  # fmt: skip
        target = found[0]
    elif len(in_effect) < 2:
        raise SettingsError(f"no release before {running} is recorded: nothing to go back to")
    else:
        target = in_effect[-2]
    if target["id"] == running:
        raise SettingsError(f"release {running} is the one running: nothing to do")
    for record in in_effect:
        if record["id"] > target["id"] and (
            record.get("modules_updated") or record.get("modules_installed")
        ):
            if not RELEASE_ID.fullmatch(record["id"]):
                raise SettingsError(f"release {record['id']!r} of the release log is not a "
                                    "release id: check the host's releases.jsonl")  # fmt: skip
            return RollbackPlan(target, record)
    return RollbackPlan(target)


def snapshot_confirmed(settings: Settings, plan: RollbackPlan) -> str:
    """The id of the release whose snapshot goes back, once the operator has confirmed the loss
    of the data written since; else a one-line refusal saying how much that is."""
    update = plan.over_update
    assert update is not None
    changed = [*(update.get("modules_updated") or []), *(update.get("modules_installed") or [])]
    modules = ",".join(changed)
    taken = host.get_fact(SnapshotTaken, project=settings.project, db=settings.db_name,
                          release=update["id"])  # fmt: skip
    if taken is None:
        raise SettingsError(
            f"release {update['id']} updated modules ({modules}) after {plan.target['id']} and "
            "the snapshot taken before it is no longer kept (the newest two are): restore the "
            "backup made before that release instead (docs/backup-restore.md)"
        )
    when = taken if taken != "untimed" else str(update.get("started"))
    since = snapshot_age(when, time.time())
    if str(host.data.get("confirm_snapshot") or "") != update["id"]:
        raise SettingsError(
            f"going back to {plan.target['id']} puts back the database and filestore as they "
            f"were before release {update['id']} updated {modules}, at {when} ({since} ago): "
            f"everything written since is lost; add --data confirm_snapshot={update['id']} to go "
            "ahead"
        )
    logger.warning(
        f"{host.name}: the data written in the last {since} (since {when}) is replaced by the "
        "snapshot; it is set aside until two newer snapshots exist (docs/operations.md)"
    )
    return update["id"]


def snapshot_age(when: str, now: float) -> str:
    """``2 h 5 min`` from an ISO 8601 UTC time to ``now``."""
    try:
        taken = datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "an unknown time"
    minutes = max(0, int(now - taken.timestamp()) // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d"] if days else []
    parts += [f"{hours} h"] if days or hours else []
    return " ".join([*parts, f"{minutes} min"])


@operation()
def put_back_snapshot(
    settings: Settings, snapshot_of: str, kept: str
) -> Generator[FunctionCommand, None, None]:
    """The kept release's files and the snapshot taken before ``snapshot_of``'s update, up and
    healthy (``bin/dfr-put-back``); undone on the host if they do not become healthy."""
    yield FunctionCommand(_put_back, (settings, snapshot_of, kept), {})


@failing_in_one_line
def _put_back(settings: Settings, snapshot_of: str, kept: str) -> None:
    rollback = release_id() or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    command = shlex.join([f"{settings.stack_dir}/bin/dfr-put-back", snapshot_of, rollback, kept])
    ok, output = run_on_host(command)
    if ok:
        return
    said = [line.strip() for line in output.stdout_lines if line.strip()]
    if said and said[-1] == UNDONE:
        raise StepFailed(f"{host.name}: the release put back with the snapshot did not become "
                         "healthy; what ran before runs again, on its own data")  # fmt: skip
    reason = " / ".join(said or output.stderr_lines[-1:]) or "no reason given"
    raise StepFailed(f"{host.name}: putting back the snapshot failed: {reason}")


def rollback(settings: Settings, asked: str | None) -> None:
    records = host.get_fact(ReleaseLog, path=releases_file(settings)) or []
    plan = rollback_target(records, asked)
    target = plan.target
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
    snapshot_of = snapshot_confirmed(settings, plan) if plan.over_update else None
    details = {"rolled_back_to": target["id"]}
    if snapshot_of:
        details["snapshot_put_back"] = snapshot_of
    release = ReleasePlan("rollback", tuple(images), details)
    release_started(name="Open the release record", settings=settings, release=release)
    if snapshot_of:
        put_back_snapshot(
            name=f"Put back release {target['id']} with the database and filestore of before "
            f"release {snapshot_of} (Odoo stopped meanwhile; newer data set aside)",
            settings=settings,
            snapshot_of=snapshot_of,
            kept=kept,
        )
    else:
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
