"""``make addons_update``: resolve each addons repository's ref upstream and write the lock.

    python -m tasks.addons_lock [INVENTORY ...]     (default: inventories/{dev,staging,prod}.py)

The repositories are read as pyinfra would give them to each host of the inventories
(group_data/all.py, the inventory's groups' files, then the host's own data), no host is
contacted. Prints what changed per repository (old..new commit and, when the history can be
fetched, ``git log --oneline`` of the range). Run from the project root; commit addons.lock.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

from tasks import addons_git
from tasks.addons_repos import LockEntry, Repository, lock_path, read_lock, repositories, write_lock
from tasks.errors import SettingsError

DEFAULT_INVENTORIES = ("inventories/dev.py", "inventories/staging.py", "inventories/prod.py")


def _python_data(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    namespace: dict[str, Any] = {"__file__": str(path)}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # as pyinfra reads it
    return {
        k: v
        for k, v in namespace.items()
        if not k.startswith("_") and not isinstance(v, types.ModuleType) and not callable(v)
    }


def hosts_data(inventory: Path, root: Path) -> list[dict[str, Any]]:
    """Each host's data as pyinfra merges it: all, then the inventory's groups, then its own."""
    groups = _python_data(inventory)
    directories = [root / "group_data", inventory.parent / "group_data"]
    directories = list(dict.fromkeys(d.resolve() for d in directories))

    def group(name: str) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for directory in directories:
            merged.update(_python_data(directory / f"{name}.py"))
        return merged

    found = []
    for group_name, members in groups.items():
        if not isinstance(members, list | tuple):
            continue
        for member in members:
            own = member[1] if isinstance(member, tuple) and len(member) == 2 else {}
            found.append({**group("all"), **group(inventory.stem), **group(group_name), **own})
    return found


def update(inventories: list[Path], root: Path, out: Any = sys.stdout) -> int:
    """Writes each lock file the inventories' hosts use; returns the number of changed entries."""
    wanted: dict[Path, dict[tuple[str, str, str], Repository]] = {}
    for inventory in inventories:
        for data in hosts_data(inventory, root):
            path = lock_path(data, root)
            # a lock whose repositories all left the settings is emptied
            wanted.setdefault(path, {})
            for repo in repositories(data, root):
                wanted[path][repo.key] = repo
    changed = 0
    for path, repos in wanted.items():
        before = read_lock(path)
        if not repos and not before:
            continue
        entries = []
        for key, repo in sorted(repos.items()):
            commit = addons_git.resolve_ref(repo.name, repo.remote, repo.ref)
            addons_git.fetch(repo.name, repo.remote, repo.ref, commit)
            entries.append(LockEntry(repo.name, repo.url, repo.ref, commit))
            old = before.get(key) or next(
                (e for e in before.values() if e.name == repo.name and e.key not in repos), None
            )
            changed += _report(out, repo, old, commit)
        for key, entry in sorted(before.items()):
            if key not in repos and not any(e.name == entry.name for e in entries):
                print(f"{entry.name}: removed (was {entry.commit[:12]})", file=out)
                changed += 1
        write_lock(path, entries)
        print(f"{path.name}: {changed} change(s); commit it with the project", file=out)
    if not any(wanted.values()) and not changed:
        print("no addons repository in the settings: nothing to lock", file=out)
    return changed


def _report(out: Any, repo: Repository, old: LockEntry | None, commit: str) -> int:
    where = f"{repo.name} ({addons_git.shown(repo.url)} {repo.ref})"
    if old is None:
        print(f"{where}: new, at {commit[:12]}", file=out)
        return 1
    if old.commit == commit and old.key == repo.key:
        print(f"{where}: unchanged at {commit[:12]}", file=out)
        return 0
    moved = "" if old.key == repo.key else f" (was {addons_git.shown(old.url)} {old.ref})"
    print(f"{where}: {old.commit[:12]}..{commit[:12]}{moved}", file=out)
    log = addons_git.log_range(repo.remote, old.commit, commit) if old.commit != commit else []
    for line in log:
        print(f"    {line}", file=out)
    return 1


def main(argv: list[str]) -> int:
    root = Path.cwd()
    inventories = [Path(a) for a in argv] or [root / p for p in DEFAULT_INVENTORIES]
    try:
        missing = [str(p) for p in inventories if not p.is_file()]
        if missing:
            raise SettingsError(f"inventory {missing[0]} does not exist: give inventory files")
        update(inventories, root)
    except SettingsError as error:
        print(f"addons_update: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
