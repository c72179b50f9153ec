"""Validated backup settings, read from host data."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.config_values import has_control
from tasks.errors import SettingsError

_URL = re.compile(r"https?://[A-Za-z0-9._~:/?#\[\]@!$&()*+,;=%-]+")
_DIRECTORY = re.compile(r"/[A-Za-z0-9_./-]{1,200}")


@dataclass(frozen=True)
class BackupSettings:
    local_dir: Path
    host_dir: str
    keep_on_host: bool
    keep_daily: int
    keep_weekly: int
    keep_monthly: int
    jobs: int
    restore_jobs: int
    health_timeout: int
    schedule: str | None
    notify_url: str | None = None
    drill_notify_url: str | None = None
    metrics_dir: str = "/var/lib/node_exporter/textfile_collector"


def backup_settings(data: Any, env: str) -> BackupSettings:
    counts = {}
    keys = ("backup_keep_daily", "backup_keep_weekly", "backup_keep_monthly", "backup_jobs",
            "restore_jobs", "restore_health_timeout")  # fmt: skip
    for key in keys:
        value = data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise SettingsError(f"{key} {value!r} is not a number of 0 or more")
        counts[key] = value
    for key in ("backup_jobs", "restore_jobs", "restore_health_timeout"):
        if counts[key] < 1:
            raise SettingsError(f"{key} must be at least 1")
    schedule = data.get("backup_schedule")
    # A line of the systemd timer: a line break would add directives of its own.
    if schedule is not None and (not isinstance(schedule, str) or has_control(schedule)):
        raise SettingsError(
            f"backup_schedule {schedule!r} is not a systemd OnCalendar value: give one on one "
            'line, like "*-*-* 02:30:00"'
        )
    notify_url, drill_notify_url = (
        _notify_url(data, key) for key in ("backup_notify_url", "drill_notify_url")
    )
    metrics_dir = str(data.get("backup_metrics_dir") or "")
    if not _DIRECTORY.fullmatch(metrics_dir) or ".." in metrics_dir:
        raise SettingsError(
            f"backup_metrics_dir {metrics_dir!r} is not an absolute path without '..' or spaces"
        )
    return BackupSettings(
        local_dir=Path(str(data.get("backup_dir") or f"backups/{env}")),
        host_dir=f"/var/backups/dfr/{env}",
        keep_on_host=bool(data.get("backup_keep_on_host", True)),
        keep_daily=counts["backup_keep_daily"],
        keep_weekly=counts["backup_keep_weekly"],
        keep_monthly=counts["backup_keep_monthly"],
        jobs=counts["backup_jobs"],
        restore_jobs=counts["restore_jobs"],
        health_timeout=counts["restore_health_timeout"],
        schedule=schedule,
        notify_url=notify_url,
        drill_notify_url=drill_notify_url,
        metrics_dir=metrics_dir,
    )


def _notify_url(data: Any, key: str) -> str | None:
    url = data.get(key) or None
    if url is not None and (not isinstance(url, str) or not _URL.fullmatch(url)):
        raise SettingsError(
            f"{key} {url!r} is not an http(s) URL: give one like https://hc-ping.com/<uuid> "
            "(no spaces or quotes)"
        )
    return url
