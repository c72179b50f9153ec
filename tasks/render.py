"""Render the project's Jinja2 templates (StrictUndefined) from the settings object."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from tasks.settings import Settings

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def odoo_value(value: Any) -> str:
    """Odoo reads only the literals True/False as booleans; anything else stays a string."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return str(value)


def postgres_value(value: str | int | float | bool) -> str:
    """postgresql.conf syntax: on/off, bare numbers, strings in single quotes."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["odoo_value"] = odoo_value
    env.filters["postgres_value"] = postgres_value
    env.filters["regex_escape"] = re.escape
    return env


def render(template: str, settings: Settings, **extra: Any) -> str:
    return _environment().get_template(template).render(s=settings, **extra)
