"""Addons repositories: the ``odoo_addons_repositories`` setting and the lock file.

Each repository is named, with a URL (https, ssh or a local path), a ref (branch, tag or
commit), optionally the addons taken from it (``addons``), a subdirectory holding them
(``subdir``) and the modules it provides in place of another repository's (``overrides``).
Deploys use the commit the lock file (``addons.lock``, committed) records for the repository's
name, URL and ref; ``make addons_update`` writes it (tasks/addons_lock.py).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.errors import SettingsError

# Checked with fullmatch. A name is a directory of the image and an addons_path entry.
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_MODULE = re.compile(r"[a-z0-9][a-z0-9_]*")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/+-]*")
_KEYS = {"name", "url", "ref", "addons", "subdir", "overrides"}
UPDATE_HINT = "run make addons_update (and commit addons.lock)"


@dataclass(frozen=True)
class Repository:
    name: str
    url: str
    ref: str
    addons: tuple[str, ...] = ()  # empty: every module of the repository
    subdir: str = ""
    overrides: tuple[str, ...] = ()
    commit: str = ""  # from the lock; empty until looked up
    remote: str = ""  # what git is given: url, a relative path made the project's

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.name, self.url, self.ref)


def repositories(data: Any, project_root: Path) -> tuple[Repository, ...]:
    """The ``odoo_addons_repositories`` setting, checked (not yet locked)."""
    given = data.get("odoo_addons_repositories") or []
    if not isinstance(given, list | tuple):
        raise SettingsError(
            "odoo_addons_repositories is not a list: give "
            '[{"name": "oca-web", "url": "https://github.com/OCA/web.git", "ref": "18.0"}]'
        )
    found: list[Repository] = []
    for entry in given:
        repository = _repository(entry, project_root)
        if any(r.name == repository.name for r in found):
            raise SettingsError(
                f"odoo_addons_repositories names {repository.name!r} twice: give each its own name"
            )
        found.append(repository)
    return tuple(found)


def _repository(entry: object, project_root: Path) -> Repository:
    if not isinstance(entry, dict):
        raise SettingsError(f"odoo_addons_repositories has {entry!r}: give a dict per repository")
    name = entry.get("name")
    what = f"odoo_addons_repositories {name!r}"
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise SettingsError(
            f"{what}: give each repository a name of lowercase letters, digits, _ . -"
        )
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise SettingsError(
            f"{what} has unknown keys {', '.join(unknown)}: use {', '.join(sorted(_KEYS))}"
        )
    url, ref = entry.get("url"), entry.get("ref")
    if not isinstance(url, str) or not url.strip() or "\n" in url or url.startswith("-"):
        raise SettingsError(f"{what}: give its url (https://…, ssh://…, git@host:path or a path)")
    if not isinstance(ref, str) or not _REF.fullmatch(ref) or ".." in ref:
        raise SettingsError(f"{what}: give its ref, a branch, a tag or a commit")
    subdir = entry.get("subdir") or ""
    if not isinstance(subdir, str) or subdir.startswith("/") or ".." in subdir.split("/"):
        raise SettingsError(f"{what}: subdir {subdir!r} must be a path inside the repository")
    return Repository(
        name=name,
        url=url,
        remote=_local_url(url, project_root),
        ref=ref,
        addons=_modules(entry.get("addons"), f"{what} addons"),
        subdir=subdir.strip("/"),
        overrides=_modules(entry.get("overrides"), f"{what} overrides"),
    )


def _local_url(url: str, project_root: Path) -> str:
    """A relative local path is the project's: made absolute for git (the lock keeps it as
    written, the same on every operator's machine)."""
    if "://" in url or re.match(r"[^/]+@[^/]+:", url) or url.startswith("/"):
        return url
    return str(project_root / url)


def _modules(value: object, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(
        isinstance(m, str) and _MODULE.fullmatch(m) for m in value
    ):
        raise SettingsError(
            f"{what} {value!r}: give a list of module names, like ['web_responsive']"
        )
    return tuple(value)


# --- the lock file ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LockEntry:
    name: str
    url: str
    ref: str
    commit: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.name, self.url, self.ref)


def read_lock(path: Path) -> dict[tuple[str, str, str], LockEntry]:
    """The lock file's entries by (name, url, ref); an absent file is an empty lock."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        entries = [LockEntry(**entry) for entry in data["repositories"]]
    except (ValueError, KeyError, TypeError) as error:
        raise SettingsError(f"{path} is not an addons lock file ({error}): {UPDATE_HINT}") from None
    for entry in entries:
        if not _COMMIT.fullmatch(entry.commit):
            raise SettingsError(f"{path}: {entry.name} has commit {entry.commit!r}: {UPDATE_HINT}")
    return {entry.key: entry for entry in entries}


def write_lock(path: Path, entries: list[LockEntry]) -> None:
    """Written whole, sorted, one key per line: a readable diff in review."""
    ordered = sorted(entries, key=lambda e: e.key)
    text = json.dumps({"repositories": [e.__dict__ for e in ordered]}, indent=2, ensure_ascii=False)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text + "\n")
    partial.replace(path)


def locked(repos: tuple[Repository, ...], lock_path: Path) -> tuple[Repository, ...]:
    """Each repository with the commit its lock entry records; one missing (or whose url or ref
    changed since the lock was written) stops the run."""
    if not repos:
        return ()
    lock = read_lock(lock_path)
    result = []
    for repo in repos:
        entry = lock.get(repo.key)
        if entry is None:
            before = [e for e in lock.values() if e.name == repo.name]
            change = (
                f"its url or ref changed since {lock_path.name} was written"
                if before
                else f"it is not in {lock_path.name}"
            )
            raise SettingsError(f"addons repository {repo.name}: {change}: {UPDATE_HINT}")
        result.append(_with_commit(repo, entry.commit))
    return tuple(result)


def _with_commit(repo: Repository, commit: str) -> Repository:
    return dataclasses.replace(repo, commit=commit)


def lock_path(data: Any, project_root: Path) -> Path:
    path = Path(str(data.get("odoo_addons_lock") or "addons.lock"))
    return path if path.is_absolute() else project_root / path
