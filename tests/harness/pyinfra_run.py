"""Run the pyinfra CLI the way an operator does and read its per-operation results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
PYINFRA = Path(sys.prefix) / "bin" / "pyinfra"


@dataclass(frozen=True)
class OpResult:
    name: str
    changed: list[str]
    no_change: list[str]
    error: list[str]


@dataclass(frozen=True)
class PyinfraRun:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def ops(self) -> list[OpResult]:
        """Per-operation results of an executed (``-y --json``) run."""
        results = json.loads(self.stdout)["results"]
        return [
            OpResult(op["name"], op["success"], op["no_change"], op["error"])
            for op in results["operations"]
        ]

    @property
    def plan(self) -> list[dict]:
        """The change plan of a ``--json`` run without ``-y``."""
        return json.loads(self.stdout)["plan"]

    def changed(self, host: str | None = None) -> list[str]:
        return [op.name for op in self.ops if (host in op.changed if host else op.changed)]

    def errors(self) -> list[str]:
        return [op.name for op in self.ops if op.error]

    def last_error_line(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""


def pyinfra(
    inventory: Path | str,
    deploy: str,
    *extra: str,
    data: dict[str, object] | None = None,
    execute: bool = True,
    json_output: bool = True,
    timeout: float = 1800,
    env: dict[str, str] | None = None,
) -> PyinfraRun:
    """``pyinfra [-y] [--json] INVENTORY DEPLOY [--data k=v ...] EXTRA`` from the project root,
    with ``env`` added to the environment."""
    args = [str(PYINFRA)]
    if execute:
        args.append("-y")
    if json_output:
        args.append("--json")
    args += [str(inventory), deploy, *extra]
    for key, value in (data or {}).items():
        args += ["--data", f"{key}={value}"]
    started = time.monotonic()
    proc = subprocess.run(
        args,
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
    return PyinfraRun(args, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
