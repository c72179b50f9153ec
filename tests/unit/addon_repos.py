"""Git repositories of Odoo addons for the tests: made with real git in a temporary directory
and served as local bare repositories (file://), as an upstream would be."""

from __future__ import annotations

import subprocess
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.org",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.org",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def manifest(
    name: str, version: str = "18.0.1.0.0", depends: tuple[str, ...] = ("base",), **extra: object
) -> str:
    fields = {"name": name, "version": version, "license": "LGPL-3", "depends": list(depends),
              "installable": True, **extra}  # fmt: skip
    return repr(fields) + "\n"


class Upstream:
    """A working copy with a bare repository it pushes to; ``url`` is the bare one's."""

    def __init__(self, root: Path, name: str) -> None:
        self.work = root / f"{name}-work"
        self.bare = root / f"{name}.git"
        self._git("init", "-q", "-b", "18.0", str(self.work), cwd=root)
        self._git("init", "-q", "--bare", str(self.bare), cwd=root)

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    def _git(self, *args: str, cwd: Path | None = None) -> str:
        import os

        result = subprocess.run(
            ["git", *args], cwd=cwd or self.work, env={**os.environ, **GIT_ENV},
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return result.stdout.strip()

    def module(self, name: str, subdir: str = "", files: dict[str, str] | None = None,
               **manifest_fields: object) -> None:  # fmt: skip
        directory = self.work / subdir / name
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "__init__.py").write_text("")
        (directory / "__manifest__.py").write_text(manifest(name, **manifest_fields))
        for path, text in (files or {}).items():
            (directory / path).write_text(text)

    def commit(self, message: str) -> str:
        self._git("add", "-A")
        self._git("commit", "-q", "-m", message)
        self._git("push", "-q", str(self.bare), "HEAD:refs/heads/18.0")
        return self._git("rev-parse", "HEAD")

    def tag(self, tag: str) -> None:
        self._git("tag", "-a", tag, "-m", tag)
        self._git("push", "-q", str(self.bare), f"refs/tags/{tag}")


def pure_wheel(directory: Path, name: str, version: str) -> Path:
    """A pure-Python wheel of a one-module package ``name`` (its module: ``name`` with _),
    written by hand: what an index or a wheelhouse would serve, with no network."""
    import base64
    import hashlib
    import zipfile

    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": f"VERSION = {version!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: dfr-tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel
