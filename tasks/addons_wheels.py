"""Air-gapped sites (``image_source = "upload"``): the addons' Python requirements as wheels got
on the controller, for the image build to install with no package index.

``pip download`` runs as the operator, with their pip configuration (an index mirror, a
wheelhouse in ``PIP_FIND_LINKS``), for the base image's Python and platform
(``odoo_wheels_python``, ``odoo_wheels_platform``), binary wheels only: nothing is compiled on
the host. The wheels are cached by what they are for.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tasks.addons_git import cache_root
from tasks.errors import SettingsError


def wheels_root() -> Path:
    return cache_root().parent / "wheels"


def empty_wheels() -> Path:
    """An empty directory: the build context's wheels/ when nothing is to be installed."""
    path = wheels_root() / "none"
    path.mkdir(parents=True, exist_ok=True)
    return path


def addons_wheels(requirements: str, python: str, platform: str) -> Path:
    """A directory of the wheels of ``requirements`` (pinned name==version lines) and their
    dependencies, for CPython ``python`` on ``platform``."""
    if not requirements.strip():
        return empty_wheels()
    key = hashlib.sha256(f"{requirements}\n{python}\n{platform}".encode()).hexdigest()[:16]
    done = wheels_root() / key
    if done.is_dir():
        return done
    partial = wheels_root() / f"{key}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        (partial / ".requirements.txt").write_text(requirements)
        got = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q",
             "--only-binary=:all:", "--implementation", "cp", "--python-version", python,
             "--platform", platform, "--dest", str(partial),
             "--requirement", str(partial / ".requirements.txt")],
            capture_output=True, text=True, check=False, timeout=1800,
        )  # fmt: skip
        if got.returncode != 0:
            lines = [line for line in got.stderr.splitlines() if line.strip()]
            reason = lines[-1].strip() if lines else f"pip exited with {got.returncode}"
            raise SettingsError(
                f"the addons' Python wheels for image_source 'upload' could not be got: "
                f"{reason}: check your pip index (or PIP_FIND_LINKS) has them"
            )
        (partial / ".requirements.txt").unlink()
        partial.rename(done)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return done
