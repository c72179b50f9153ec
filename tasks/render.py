"""Render the project's Jinja2 templates (StrictUndefined) from the settings object."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from tasks.config_values import odoo_value, postgres_value
from tasks.odoo_options import ODOO_OPTIONS_OVERRIDABLE
from tasks.settings import Settings

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


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
    # odoo.conf keys an odoo_options entry replaces in place (the template writes them once).
    env.globals["odoo_overridable"] = ODOO_OPTIONS_OVERRIDABLE
    return env


def render(template: str, settings: Settings, **extra: Any) -> str:
    return render_template(template, s=settings, **extra)


def render_template(template: str, **values: Any) -> str:
    """A template of a host without a stack (the backup host): no settings object."""
    return _environment().get_template(template).render(**values)
