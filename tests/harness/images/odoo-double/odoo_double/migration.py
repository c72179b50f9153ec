"""Module migration scripts, as odoo/modules/migration.py runs them on an update (-u).

`<module>/migrations/<version>/{pre,post,end}-*.py` (or `upgrades/` instead of `migrations/`),
each with `migrate(cr, version)`. `<version>` is the full `18.0.x.y.z` or the short `x.y.z`
(the series is prefixed); `0.0.0` is run on every version change (first in `pre`, last in `post`
and `end`). A script of version V runs when installed < V <= manifest version; `version` is the
installed version. Exceptions are not caught: they fail the load.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import re
from pathlib import Path
from typing import Any

from . import config

_logger = logging.getLogger("odoo.modules.migration")
STAGES = {"pre": "[>{}]", "post": "[{}>]", "end": "[${}]"}
SCRIPT_DIRS = ("migrations", "upgrades")
VERSION_RE = re.compile(r"^(\d+\.0\.)?\d+\.\d+(\.\d+)?$")
SIGNATURES = {(cr, version) for cr in ("cr", "_cr") for version in ("version", "_version")}


def parse_version(version: str) -> tuple[int, ...]:
    """Numeric parts, trailing zeros dropped (1.1.0 == 1.1), as odoo.tools.parse_version."""
    parts = [int(part) for part in re.findall(r"\d+", version)]
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def full_version(version: str) -> str:
    if version == "0.0.0" or version.count(".") > 2:
        return version
    return f"{config.SERIES}.{version}"


def scripts(module_path: Path) -> dict[str, list[Path]]:
    """{version directory: its .py files} of the module's migrations/ and upgrades/."""
    found: dict[str, list[Path]] = {}
    for directory in (module_path / name for name in SCRIPT_DIRS):
        if not directory.is_dir():
            continue
        for version_dir in sorted(p for p in directory.iterdir() if p.is_dir()):
            if version_dir.name == "tests":
                continue
            if not VERSION_RE.match(version_dir.name):
                _logger.warning("Invalid version for upgrade script %r", str(version_dir))
                continue
            found.setdefault(version_dir.name, []).extend(version_dir.glob("*.py"))
    return found


def applies(version: str, installed: str, current: str) -> bool:
    """installed < version <= current; a short version compares the module part only, so a
    module's 1.1 script does not run again when the series changes."""
    old, new = parse_version(installed), parse_version(current)
    if version == "0.0.0":
        return old < new
    full = parse_version(full_version(version))
    if full_version(version) != version:
        return old[2:] < full[2:] <= new[2:]
    return old < full <= new


def ordered(versions: list[str], stage: str) -> list[str]:
    result = sorted(
        (v for v in versions if v != "0.0.0"), key=lambda v: parse_version(full_version(v))
    )
    if "0.0.0" in versions:
        result.insert(0 if stage == "pre" else len(result), "0.0.0")
    return result


def migrate_module(
    cr: Any, name: str, path: Path, stage: str, installed: str, current: str
) -> None:
    """Runs the module's `stage` scripts that apply, in version then file name order."""
    found = scripts(path)
    for version in ordered(list(found), stage):
        if not applies(version, installed, current):
            continue
        for script in sorted(found[version], key=lambda p: p.name):
            if script.name.startswith(f"{stage}-"):
                _exec_script(cr, name, script, stage, STAGES[stage].format(version), installed)


def _exec_script(cr: Any, addon: str, script: Path, stage: str, shown: str, installed: str) -> None:
    spec = importlib.util.spec_from_file_location(script.stem, script)
    if spec is None or spec.loader is None:
        raise ImportError(f"module {addon}: Unable to load {stage}-migration file {script}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    migrate = getattr(module, "migrate", None)
    if migrate is None:
        raise AttributeError(
            f'module {addon}: Each {stage}-migration file must have a "migrate(cr,'
            f' installed_version)" function, not found in {script}'
        )
    if tuple(inspect.signature(migrate).parameters) not in SIGNATURES:
        raise TypeError(f"module {addon}: `migrate`'s signature should be `(cr, version)`")
    _logger.info("module %s: Running migration %s %s", addon, shown, script.stem)
    migrate(cr, installed)
