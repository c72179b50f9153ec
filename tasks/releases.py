"""The release log: what each run that changed a staging/prod host did, kept on that host.

Each run that changes something appends one JSON line to ``<stack_dir>/releases.jsonl``: id,
start and end, operator, dfr-deploy VERSION, the project's git commit (dirty or not), each
image's ID, the addons' hash, the modules updated, the result and how long Odoo was unavailable
(from the engine's events: a container of odoo or nginx down until its successor is healthy). A
run that fails, is interrupted or killed is recorded too, as ``failed``, by the lock's shell
(``tasks/deploy_lock.py``). A successful release's ``compose.yaml`` and ``config/`` are kept in
``releases/<id>/`` for ``tasks/rollback.py``; the newest ``releases_kept`` (5) are kept, with
their images; older ones and images no kept release names are removed.

``pyinfra inventories/prod.py tasks/releases.py`` (``make releases ENV=prod``) prints the log.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pyinfra import host, logger, state
from pyinfra.api import FactBase, FunctionCommand, operation

from tasks.deploy_lock import holds_lock, operator, releases_file, tell_lock_holder
from tasks.errors import SettingsError, StepFailed, failing_in_one_line
from tasks.host_commands import run_on_host
from tasks.settings import Settings

PROJECT = Path(__file__).resolve().parent.parent
CONFIG_FILES = (
    "compose.yaml",
    "config/postgresql.conf",
    "config/odoo.conf",
    "config/nginx/dfr.conf",
)
SERVICES_SERVED = ("odoo", "nginx")  # a request through nginx needs both

_in_progress: dict[str, dict[str, Any]] = {}


@dataclass
class ReleasePlan:
    """What a run will release, filled in while the run is prepared (the images' tags, the
    modules it updates) and read once it executes."""

    kind: str
    tags: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


class ReleaseLog(FactBase):
    """The host's release records, oldest first (lines that are not JSON objects skipped)."""

    def command(self, path: str) -> str:
        return f"cat {shlex.quote(path)} 2>/dev/null || true"

    def process(self, output: list[str]) -> list[dict[str, Any]]:
        records = []
        for line in output:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("id"), str):
                records.append(record)
        return records


def git_state() -> dict[str, Any] | None:
    """The project's commit and whether its work tree differs from it; None outside git."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(PROJECT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "-C", str(PROJECT), "status", "--porcelain"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None  # fmt: skip
    return {"commit": commit, "dirty": bool(changes.strip())}


def kept_releases(data: Any) -> int:
    kept = data.get("releases_kept", 5)
    if isinstance(kept, bool) or not isinstance(kept, int) or not 1 <= kept <= 100:
        raise SettingsError(f"releases_kept {kept!r}: give a number of releases from 1 to 100")
    return kept


@operation()
def release_started(settings: Settings, release: ReleasePlan) -> Generator[str, None, None]:
    """Marks the start of the execution (the lock's shell then records a failed release unless
    it hears that the run ended). No change: only the run's other operations count."""
    kept_releases(host.data)  # a bad setting stops the run while it is prepared
    if not state.is_executing or not holds_lock():
        return
    started = time.time()
    record: dict[str, Any] = {
        "id": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started)),
        "kind": release.kind,
        "started": _iso(started),
        "ended": None,
        "operator": operator(),
        "version": settings.version,
        "git": git_state(),
        **release.details,
        "result": "failed",
    }
    _in_progress[host.name] = record | {"_started": started}
    tell_lock_holder("unfinished " + json.dumps(record))
    host.noop(f"release {record['id']} started")
    yield from ()  # an operation is a generator, even one that never runs a command


def release_id() -> str | None:
    """The id of the release this run is making on this host, once it executes."""
    record = _in_progress.get(host.name)
    return record["id"] if record else None


def mark_release(**fields: Any) -> None:
    """Adds ``fields`` to the record of this run, the one recorded should the run fail here."""
    record = _in_progress.get(host.name)
    if record is None:
        return
    record.update(fields)
    tell_lock_holder("unfinished " + json.dumps({k: v for k, v in record.items() if k[0] != "_"}))


@operation()
def release_finished(
    settings: Settings, release: ReleasePlan
) -> Generator[FunctionCommand, None, None]:
    """Records the release when the run changed something (and keeps its files for rollback);
    otherwise tells the lock's shell that nothing is to be recorded."""
    if not state.is_executing or host.name not in _in_progress:
        return
    if not _run_changed_host():
        _in_progress.pop(host.name)
        tell_lock_holder("finished")
        host.noop("nothing changed: no release recorded")
        return
    record = _in_progress.pop(host.name)
    yield FunctionCommand(_record, (settings, record, release.tags, kept_releases(host.data)), {})


def _run_changed_host() -> bool:
    for op_data in state.ops[host].values():
        meta = op_data.operation_meta
        try:
            if meta.did_change():
                return True
        except RuntimeError:
            continue  # not run (yet)
    return False


@failing_in_one_line
def _record(settings: Settings, record: dict[str, Any], tags: tuple[str, ...], kept: int) -> None:
    started = record.pop("_started")
    base = shlex.quote(settings.stack_dir)
    images = _lines(
        "for tag in " + " ".join(map(shlex.quote, tags)) + "; do "
        'echo "$tag $(docker image inspect -f \'{{.Id}}\' "$tag")"; done'
    )
    hashes = _lines(f"cd {base} && sha256sum {' '.join(CONFIG_FILES)}")
    events = _lines(
        f"docker events --since {int(started) - 1} --until {int(time.time()) + 1} "
        f"--filter type=container --filter label=com.docker.compose.project={settings.project} "
        '--format \'{{.TimeNano}} {{index .Actor.Attributes "com.docker.compose.service"}} '
        "{{.Actor.ID}} {{.Action}}'"
    )
    ended = time.time()
    record.update(
        ended=_iso(ended),
        images=dict(line.split(" ", 1) for line in images if " " in line),
        config={path: digest for digest, path in (line.split(maxsplit=1) for line in hashes)},
        odoo_unavailable_s=round(unavailable_seconds(events, ended), 1),
        result="ok",
    )
    snapshot = f"{base}/releases/{record['id']}"
    _lines(f"mkdir -p {snapshot}/config && cp -a {base}/compose.yaml {snapshot}/ && "
           f"cp -a {base}/config/. {snapshot}/config/")  # fmt: skip
    tell_lock_holder("append " + json.dumps(record))
    tell_lock_holder("finished")
    _prune(base, kept)
    logger.info(f"{host.name}: release {record['id']} recorded in {releases_file(settings)}")


def _prune(base: str, kept: int) -> None:
    """Older releases' files, and the images no kept release (nor the live compose.yaml) names,
    unless a container uses them."""
    _lines(
        f"cd {base}/releases && ls -1 | sort | head -n -{kept} | xargs -r rm -rf -- ; "
        f"named=$(cat {base}/compose.yaml {base}/releases/*/compose.yaml 2>/dev/null "
        "| sed -n 's/^ *image: *//p' | sort -u); "
        "docker image ls --format '{{.Repository}}:{{.Tag}}' "
        "| grep -E '^dfr/(odoo|postgres|nginx):' | while read -r tag; do "
        'printf "%s\\n" "$named" | grep -qxF "$tag" || docker image rm "$tag" >/dev/null 2>&1 '
        "|| true; done"
    )


def unavailable_seconds(events: list[str], now: float) -> float:
    """Seconds during which a request through nginx could not reach Odoo: while a served
    service had no container up, from engine events ``TIMENANO SERVICE CONTAINER ACTION``. A
    container is up from ``health_status: healthy`` until it is killed or dies; one whose first
    event is its end was up when the events begin, and a service none of whose containers ends
    first was up through an untouched one. (A new Odoo started next to the old one keeps the
    service up through the switch.)"""
    parsed = [line.split(" ", 3) for line in events]  # an exec's command may span lines
    parsed = [p for p in parsed if len(p) == 4 and p[0].isdigit() and p[1] in SERVICES_SERVED]
    parsed.sort(key=lambda parts: int(parts[0]))
    ending = ("kill", "die", "stop")
    first: dict[str, str] = {}  # of its life's events (health checks' exec_* come and go)
    for _, _, container, action in parsed:
        if action in (*ending, "create", "start") or action.startswith("health_status"):
            first.setdefault(container, action)
    up = {service: set() for service in SERVICES_SERVED}
    for _, service, container, _ in parsed:
        if first.get(container) in ending:
            up[service].add(container)
    for containers in up.values():
        if not containers:  # its serving container had no event (or there was none before)
            containers.add("")
    down_since = {service: None for service in SERVICES_SERVED}
    intervals: list[tuple[float, float]] = []
    for stamp, service, container, action in parsed:
        when = int(stamp) / 1e9
        if action == "health_status: healthy":
            up[service].add(container)
        elif action in ending:
            up[service].discard(container)
        if not up[service] and down_since[service] is None:
            down_since[service] = when
        elif up[service] and down_since[service] is not None:
            intervals.append((down_since[service], when))
            down_since[service] = None
    intervals += [(since, now) for since in down_since.values() if since is not None]
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        start = max(start, reach)
        if end > start:
            total += end - start
            reach = end
    return total


def _lines(command: str) -> list[str]:
    ok, output = run_on_host(command)
    if not ok:
        raise StepFailed(f"{host.name}: recording the release failed: "
                         f"{(output.stderr_lines or ['no reason given'])[-1]}")  # fmt: skip
    return output.stdout_lines


def _iso(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def describe(record: dict[str, Any]) -> str:
    """One line of ``make releases``."""
    git = record.get("git") or {}
    commit = (git.get("commit") or "no git")[:10] + (" (dirty)" if git.get("dirty") else "")
    took = ""
    if record.get("started") and record.get("ended"):
        seconds = (_parse(record["ended"]) - _parse(record["started"])).total_seconds()
        took = f"{seconds:.0f} s"
    unavailable = record.get("odoo_unavailable_s")
    updated = ",".join(record.get("modules_updated") or []) or "-"
    parts = [
        record["id"], f"{record.get('result', '?'):<11}", f"{record.get('kind', '?'):<8}",
        str(record.get("operator", "?")), f"v{record.get('version', '?')}", commit,
        f"took {took or '?'}",
        f"odoo unavailable {unavailable} s" if unavailable is not None else "",
        f"modules updated: {updated}",
    ]  # fmt: skip
    if record.get("rolled_back_to"):
        parts.append(f"back to {record['rolled_back_to']}")
    return "  ".join(part for part in parts if part)


def _parse(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")


def print_release_log(settings: Settings) -> None:
    records = host.get_fact(ReleaseLog, path=releases_file(settings)) or []
    if not records:
        logger.info(f"{host.name}: no release recorded in {releases_file(settings)}")
        return
    lines = "\n".join(describe(record) for record in reversed(records))
    logger.info(f"{host.name}: releases of {settings.env}, newest first:\n{lines}")


def releases_entry() -> None:
    from tasks.offsite_settings import is_backup_host
    from tasks.stack import stack_settings

    if is_backup_host():  # it runs no stack
        return
    print_release_log(stack_settings())


# pyinfra runs this file as a deploy without a module name; importing it only defines.
if __name__ == "builtins":
    releases_entry()
