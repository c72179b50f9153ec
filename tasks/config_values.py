"""Values as the stack's config files spell them, and the check that keeps each on its line.

odoo.conf, postgresql.conf, the env files and compose.yaml are read line by line: a value
holding a line break would add lines (keys, sections, YAML) of its own, so none may.
"""

from __future__ import annotations

import re
from typing import Any

from tasks.errors import SettingsError

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators (YAML breaks on them).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def has_control(text: str) -> bool:
    return bool(_CONTROL.search(text))


def one_line(what: str, value: Any, written: str | None = None) -> None:
    """Refuse ``value`` (as ``written`` into the file, by default its str) if it would not stay
    on one line; ``what`` names the setting in the message."""
    text = str(value) if written is None else written
    if has_control(text):
        raise SettingsError(
            f"{what} = {value!r} holds a newline or another control character: "
            "give the value on one line"
        )


def odoo_value(value: Any) -> str:
    """Odoo reads only the literals True/False as booleans; anything else stays a string."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return str(value)


def postgres_value(value: str | int | float | bool) -> str:
    """postgresql.conf syntax: on/off, bare numbers, strings in single quotes. In a quoted
    string the server reads backslash escapes (guc-file.l): a backslash is doubled, or a
    trailing one would swallow the closing quote and PostgreSQL would not start; a quote is
    doubled."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        return str(value)
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
