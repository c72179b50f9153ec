"""Git on the controller for the addons repositories: refs resolved, locked commits fetched
shallow into a cache that runs share, contents read and archived from it.

git runs as the operator, with their own credentials (ssh-agent, ~/.ssh/config, a credential
helper, GIT_SSH_COMMAND); hosts never see them. A commit already in the cache is not fetched
again.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

from tasks.errors import SettingsError

_COMMIT = re.compile(r"[0-9a-f]{40}")


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dfr-deploy" / "addons"


def shown(url: str) -> str:
    """The URL without a password it may carry (https://user:token@host/…)."""
    return re.sub(r"(://[^/@:]+):[^/@]*@", r"\1:***@", url)


def _git(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # never wait for a password on a prompt
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, check=check, timeout=1800
    )


def _last_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else f"git exited with status {result.returncode}"


def cache_dir(url: str) -> Path:
    """The bare repository caching ``url``'s fetched commits (created on first use)."""
    path = cache_root() / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}.git"
    if not (path / "HEAD").exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _git("init", "-q", "--bare", str(path))
    return path


def resolve_ref(name: str, url: str, ref: str) -> str:
    """The commit ``ref`` (a branch, a tag, a full ref name or a commit) points at upstream."""
    if _COMMIT.fullmatch(ref):
        return ref
    listed = _git("ls-remote", "--", url, check=False)
    if listed.returncode != 0:
        raise SettingsError(
            f"addons repository {name}: git ls-remote {shown(url)} failed: {_last_line(listed)}"
        )
    refs = {}
    for line in listed.stdout.decode().splitlines():
        commit, _, refname = line.partition("\t")
        refs[refname] = commit
    for candidate in (f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}", f"refs/heads/{ref}",
                      f"{ref}^{{}}", ref):  # fmt: skip
        if candidate in refs:
            return refs[candidate]
    raise SettingsError(
        f"addons repository {name}: {shown(url)} has no branch or tag {ref!r}: check its ref"
    )


def has_commit(gitdir: Path, commit: str) -> bool:
    return _git("cat-file", "-e", f"{commit}^{{commit}}", cwd=gitdir, check=False).returncode == 0


def fetch(name: str, url: str, ref: str, commit: str, depth: int = 1) -> bool:
    """``commit`` of ``url`` in the cache, fetched shallow when missing; True when fetched.
    A server that refuses fetching a commit by its ID gets asked for ``ref`` instead."""
    gitdir = cache_dir(url)
    if has_commit(gitdir, commit):
        return False
    tried = _git("fetch", "-q", f"--depth={depth}", "--", url, commit, cwd=gitdir, check=False)
    if tried.returncode != 0 or not has_commit(gitdir, commit):
        by_ref = _git("fetch", "-q", "--", url, ref, cwd=gitdir, check=False)
        if by_ref.returncode != 0 or not has_commit(gitdir, commit):
            failed = tried if tried.returncode != 0 else by_ref
            raise SettingsError(
                f"addons repository {name}: fetching {commit[:12]} from {shown(url)} failed: "
                f"{_last_line(failed)}"
            )
    return True


def log_range(url: str, old: str, new: str) -> list[str]:
    """``git log --oneline old..new`` from the cache, deepened to reach ``old``; [] when the
    history between them cannot be had (``old`` not an ancestor, or too far)."""
    gitdir = cache_dir(url)
    _git("fetch", "-q", "--depth=200", "--", url, new, cwd=gitdir, check=False)
    if not has_commit(gitdir, old):
        return []
    ancestor = _git("merge-base", "--is-ancestor", old, new, cwd=gitdir, check=False)
    if ancestor.returncode != 0:
        return []
    log = _git("log", "--oneline", "--no-decorate", f"{old}..{new}", cwd=gitdir, check=False)
    return log.stdout.decode(errors="replace").splitlines() if log.returncode == 0 else []


def _tree(commit: str, subdir: str) -> str:
    return f"{commit}:{subdir}" if subdir else f"{commit}^{{tree}}"


def module_trees(name: str, url: str, commit: str, subdir: str) -> dict[str, str]:
    """Each module (a directory holding ``__manifest__.py``) at ``subdir`` of ``commit``, with
    its git tree ID: the module's content hash."""
    gitdir = cache_dir(url)
    listed = _git("ls-tree", "-z", _tree(commit, subdir), cwd=gitdir, check=False)
    if listed.returncode != 0:
        raise SettingsError(
            f"addons repository {name}: {subdir or 'its root'} is not a directory at "
            f"{commit[:12]}: check its subdir"
        )
    trees = {}
    for entry in listed.stdout.decode().split("\0"):
        meta, _, path = entry.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[1] == "tree":
            trees[path] = parts[2]
    manifests = _git("ls-tree", "-z", "--name-only", _tree(commit, subdir), "--",
                     *(f"{p}/__manifest__.py" for p in trees), cwd=gitdir)  # fmt: skip
    with_manifest = {p.split("/")[0] for p in manifests.stdout.decode().split("\0") if p}
    return {module: trees[module] for module in sorted(with_manifest)}


def read_blob(url: str, commit: str, path: str) -> bytes | None:
    shown_path = _git("cat-file", "blob", f"{commit}:{path}", cwd=cache_dir(url), check=False)
    return shown_path.stdout if shown_path.returncode == 0 else None


def archive(url: str, commit: str, subdir: str, modules: tuple[str, ...]) -> tuple[Path, str]:
    """A tar of ``modules`` (paths relative to ``subdir``) at ``commit``, cached; returns it and
    its key (what it holds: the commit, subdir and modules)."""
    # Not the URL: a commit is the same content wherever it comes from (and a local path
    # differs between operators' machines), so the image tag is the same for everyone.
    key = hashlib.sha256(f"{commit}\n{subdir}\n{','.join(modules)}".encode()).hexdigest()
    key = key[:16]
    tar = cache_root() / "archives" / f"{key}.tar"
    if not tar.exists():
        tar.parent.mkdir(parents=True, exist_ok=True)
        partial = tar.with_name(f"{tar.name}.{os.getpid()}.partial")
        with partial.open("wb") as out:
            subprocess.run(
                ["git", "archive", "--format=tar", _tree(commit, subdir), "--", *modules],
                cwd=cache_dir(url), stdout=out, check=True,
            )  # fmt: skip
        partial.replace(tar)
    return tar, key
