"""Grandfather-father-son retention: the reference for files/backup/dfr-retention.sh."""

from __future__ import annotations

from datetime import UTC, datetime


def gfs_keep(timestamps: list[datetime], daily: int, weekly: int, monthly: int) -> set[datetime]:
    """Return the backups (by timestamp) that GFS retention keeps.

    Newest first, a backup is kept if it is the newest one, or if it is the first of its day,
    ISO week or month while that tier has kept fewer than ``daily``, ``weekly`` or ``monthly``
    periods. A backup may count toward several tiers. Naive timestamps are taken as UTC.
    """
    if min(daily, weekly, monthly) < 0:
        raise ValueError("retention counts must not be negative")
    limits = {"day": daily, "week": weekly, "month": monthly}
    seen: dict[str, set[str]] = {tier: set() for tier in limits}
    keep: set[datetime] = set()
    for ts in sorted(set(timestamps), key=_utc, reverse=True):
        utc = _utc(ts)
        periods = {
            "day": utc.strftime("%Y-%m-%d"),
            "week": utc.strftime("%G-W%V"),
            "month": utc.strftime("%Y-%m"),
        }
        selected = not keep  # the newest backup is always kept
        for tier, period in periods.items():
            if len(seen[tier]) < limits[tier] and period not in seen[tier]:
                seen[tier].add(period)
                selected = True
        if selected:
            keep.add(ts)
    return keep


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
