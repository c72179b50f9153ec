"""The systemd timers a deploy owns (daily backup, drills, the backup host's prune): a unit
pair written and its timer started, or its timer stopped and both units removed."""

from __future__ import annotations

from io import StringIO

from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

UNITS = "/etc/systemd/system"


def install_timer(unit: str, service: str, timer: str, what: str) -> None:
    """``unit``.service and ``unit``.timer with these texts; the timer enabled and running."""
    written = [
        files.put(
            name=f"Unit {unit}.{kind}",
            src=StringIO(text),
            dest=f"{UNITS}/{unit}.{kind}",
            mode="0644",
            create_remote_dir=False,
        )
        for kind, text in (("service", service), ("timer", timer))
    ]
    systemd.daemon_reload(name="Reload systemd units", _if=any_changed(*written))
    systemd.service(name=f"{what} {unit}.timer", service=f"{unit}.timer", running=True,
                    enabled=True)  # fmt: skip


def remove_timer(unit: str, why: str) -> None:
    """``unit``'s timer, which exists, stopped and disabled, and both its units removed."""
    systemd.service(name=f"Stop the timer {unit}.timer, {why}", service=f"{unit}.timer",
                    running=False, enabled=False)  # fmt: skip
    removed = [
        files.file(name=f"No unit {unit}.{kind}", path=f"{UNITS}/{unit}.{kind}", present=False)
        for kind in ("service", "timer")
    ]
    systemd.daemon_reload(name="Reload systemd units", _if=any_changed(*removed))
