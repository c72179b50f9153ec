"""What nginx answers while Odoo cannot be reached: the maintenance page."""

from __future__ import annotations

import re
import subprocess

MAINTENANCE_TEXT = "This service is being updated"


def answer(reply: subprocess.CompletedProcess) -> tuple[int, dict[str, str], str]:
    """Status, headers (lower-case names) and body of a ``curl -i`` reply."""
    assert reply.returncode == 0, reply.stderr
    head, body = [*re.split(r"\r?\n\r?\n", reply.stdout, maxsplit=1), ""][:2]
    status_line, *header_lines = head.splitlines()
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body
