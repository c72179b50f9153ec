"""Thin wrapper around the docker CLI for the harness."""

from __future__ import annotations

import os
import subprocess

LABEL = "dfr-test"  # every object the harness creates carries this label


def owner_labels(run: str) -> list[str]:
    """Labels of an object of run ``run``: found by label, by run, and by the process that owns
    it, so that a parallel worker's clean-up of interrupted runs leaves it alone."""
    owner = f"{LABEL}.pid={os.getpid()}"
    return ["--label", LABEL, "--label", f"{LABEL}.run={run}", "--label", owner]


class DockerError(RuntimeError):
    pass


def docker(*args: str, input: bytes | None = None, check: bool = True, timeout: float = 600) -> str:
    proc = subprocess.run(
        ["docker", *args], input=input, capture_output=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise DockerError(
            f"docker {' '.join(args[:3])} failed ({proc.returncode}): "
            f"{proc.stderr.decode(errors='replace').strip()}"
        )
    return proc.stdout.decode(errors="replace").strip()


def engine_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def image_exists(ref: str) -> bool:
    return bool(docker("image", "ls", "-q", ref, check=False))
