"""GFS retention of backups on a host: files/backup/dfr-retention.sh keeps what it should."""

from __future__ import annotations

import random
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tasks.retention import gfs_keep

PROJECT = Path(__file__).resolve().parents[2]
SCRIPT = "files/backup/dfr-retention.sh"
LAST = datetime(2026, 11, 26, 3, 15, tzinfo=UTC)


def _name(ts: datetime) -> str:
    return f"prod-dfr-{ts:%Y%m%dT%H%M%SZ}.dfrbak"


def _make(root: Path, stamps: list[datetime]) -> None:
    """Backups as the backup job leaves them: directories with a manifest, every third a tar."""
    for n, ts in enumerate(sorted(stamps)):
        path = root / _name(ts)
        if n % 3 == 2:
            path.write_bytes(b"tar")
        else:
            path.mkdir()
            (path / "manifest.json").write_text("{}")
            (path / "base.tar.gz").write_bytes(b"data")


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", SCRIPT, *map(str, args)], cwd=PROJECT, capture_output=True, text=True, check=False
    )


def _left(root: Path) -> set[str]:
    return {p.name for p in root.iterdir()}


def _daily(days: int, last: datetime = LAST) -> list[datetime]:
    return [last - timedelta(days=n) for n in range(days)]


def _dates(*isodates: str) -> set[str]:
    return {_name(datetime.fromisoformat(f"{d}T03:15:00+00:00")) for d in isodates}


# 100 consecutive daily backups ending Thursday 2026-11-26 (ISO week 2026-W48), kept 7/4/3.
HAND_7_4_3 = _dates(
    # 7 dailies
    "2026-11-26", "2026-11-25", "2026-11-24", "2026-11-23",
    "2026-11-22", "2026-11-21", "2026-11-20",
    # 4 weeklies, the newest of W48, W47, W46, W45: 11-26 and 11-22 are dailies already
    "2026-11-15", "2026-11-08",
    # 3 monthlies, the newest of November (11-26, a daily already), October, September
    "2026-10-31", "2026-09-30",
)  # fmt: skip


def test_a_hundred_daily_backups_keep_the_hand_counted_7_4_3_set(tmp_path):
    _make(tmp_path, _daily(100))

    result = _run(tmp_path, 7, 4, 3)

    assert result.returncode == 0, result.stderr
    assert _left(tmp_path) == HAND_7_4_3
    *lines, summary = result.stdout.splitlines()
    assert summary == "dfr-retention: kept 11, removed 89"
    assert sorted(lines) == sorted(
        f"dfr-retention: removed {_name(ts)}" for ts in _daily(100) if _name(ts) not in HAND_7_4_3
    )


def test_the_reference_agrees_with_the_hand_counted_set():
    assert {_name(ts) for ts in gfs_keep(_daily(100), 7, 4, 3)} == HAND_7_4_3


def test_iso_weeks_span_new_year(tmp_path):
    # 2027-01-01..03 belong to ISO week 2026-W53, together with 2026-12-28..31.
    stamps = _daily(21, datetime(2027, 1, 3, 3, 15, tzinfo=UTC))
    _make(tmp_path, stamps)

    assert _run(tmp_path, 0, 2, 0).returncode == 0
    assert _left(tmp_path) == _dates("2027-01-03", "2026-12-27")
    assert {_name(ts) for ts in gfs_keep(stamps, 0, 2, 0)} == _left(tmp_path)


def _mixed() -> list[datetime]:
    """100 days of 03:15Z backups, with a second one at 21:40Z on a few days."""
    extra = [LAST.replace(hour=21, minute=40) - timedelta(days=n) for n in (0, 4, 26, 42, 77)]
    return _daily(100) + extra


@pytest.mark.parametrize("counts", [(7, 4, 3), (1, 0, 0), (0, 3, 0), (0, 0, 5), (30, 12, 6)])
def test_mixed_backups_leave_exactly_the_gfs_set(tmp_path, counts):
    stamps = _mixed()
    _make(tmp_path, stamps)
    (tmp_path / "prod-dfr-20261127T031500Z.dfrbak.partial").mkdir()
    (tmp_path / "notes.txt").write_text("keep me")

    result = _run(tmp_path, *counts)

    assert result.returncode == 0, result.stderr
    kept = {_name(ts) for ts in gfs_keep(stamps, *counts)}
    assert _left(tmp_path) == kept | {"prod-dfr-20261127T031500Z.dfrbak.partial", "notes.txt"}
    assert result.stdout.splitlines()[-1] == (
        f"dfr-retention: kept {len(kept)}, removed {len(stamps) - len(kept)}"
    )


def test_the_latest_backup_of_a_day_represents_it(tmp_path):
    _make(tmp_path, _mixed())

    assert _run(tmp_path, 7, 4, 3).returncode == 0
    left = _left(tmp_path)
    # 11-26, 11-22 (daily and weekly) and 10-31 (monthly) each had a 03:15 and a 21:40 backup.
    for day in ("20261126", "20261122", "20261031"):
        assert f"prod-dfr-{day}T214000Z.dfrbak" in left
        assert f"prod-dfr-{day}T031500Z.dfrbak" not in left
    assert len(left) == 11


def test_irregular_backups_leave_exactly_the_gfs_set(tmp_path):
    rng = random.Random(20261126)
    stamps = sorted(
        {LAST - timedelta(minutes=rng.randrange(400 * 24 * 60)) for _ in range(150)}
        | {LAST.replace(minute=0, hour=h) for h in range(4)}
    )
    _make(tmp_path, stamps)

    assert _run(tmp_path, 10, 8, 12).returncode == 0
    assert _left(tmp_path) == {_name(ts) for ts in gfs_keep(stamps, 10, 8, 12)}


def test_the_newest_good_backup_survives_zero_counts(tmp_path):
    _make(tmp_path, _daily(10))
    (tmp_path / "prod-dfr-20261127T031500Z.dfrbak.partial").write_bytes(b"half")
    unfinished = tmp_path / "prod-dfr-20261127T040000Z.dfrbak"  # a directory, no manifest yet
    unfinished.mkdir()

    result = _run(tmp_path, 0, 0, 0)

    assert result.returncode == 0, result.stderr
    assert _left(tmp_path) == {
        _name(LAST),
        "prod-dfr-20261127T031500Z.dfrbak.partial",
        "prod-dfr-20261127T040000Z.dfrbak",
    }
    assert result.stdout.splitlines()[-1] == "dfr-retention: kept 1, removed 9"
    assert gfs_keep(_daily(10), 0, 0, 0) == {LAST}


def test_partial_and_unrelated_entries_are_never_touched(tmp_path):
    _make(tmp_path, _daily(40))
    untouched = {
        "prod-dfr-20260101T031500Z.dfrbak.partial",
        "prod-dfr-20260102T031500Z.dfrbak.partial",
        "notes.txt",
        "prod-dfr-latest.dfrbak",
        "prod-dfr-20260103.dfrbak",
        "prod-dfr-20260230T031500Z.dfrbak",
        "prod-dfr-20260104T031500Z.dfrbak.old",
        ".prod-dfr-20260105T031500Z.dfrbak.tmp",
    }
    for name in untouched:
        if name.endswith(".partial"):  # a backup being written, manifest and all
            (tmp_path / name).mkdir()
            (tmp_path / name / "manifest.json").write_text("{}")
        else:
            (tmp_path / name).write_text("x")

    assert _run(tmp_path, 1, 0, 0).returncode == 0
    assert _left(tmp_path) == untouched | {_name(LAST)}
    assert (tmp_path / "notes.txt").read_text() == "x"


def test_dry_run_removes_nothing_and_lists_what_a_real_run_removes(tmp_path):
    _make(tmp_path, _mixed())
    before = _left(tmp_path)

    dry = _run("--dry-run", tmp_path, 7, 4, 3)

    assert dry.returncode == 0, dry.stderr
    assert _left(tmp_path) == before
    *lines, summary = dry.stdout.splitlines()
    would = {line.removeprefix("dfr-retention: would remove ") for line in lines}
    assert summary == "dfr-retention: kept 11, removed 0 (dry run: would remove 94)"

    assert _run(tmp_path, 7, 4, 3).returncode == 0
    assert would == before - _left(tmp_path)
    assert len(would) == 94


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["{dir}"],
        ["{dir}", "7", "4"],
        ["{dir}", "7", "4", "3", "2"],
        ["{dir}/missing", "7", "4", "3"],
        ["{dir}/notes.txt", "7", "4", "3"],
        ["{dir}", "seven", "4", "3"],
        ["{dir}", "7", "-1", "3"],
        ["{dir}", "7", "4", "3.5"],
        ["{dir}", "7", "4", ""],
        ["--force", "{dir}", "7", "4", "3"],
    ],
)
def test_bad_arguments_fail_with_one_line_and_touch_nothing(tmp_path, args):
    _make(tmp_path, _daily(20))
    (tmp_path / "notes.txt").write_text("x")
    before = _left(tmp_path)

    result = _run(*(a.format(dir=tmp_path) for a in args))

    assert result.returncode != 0
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("dfr-retention: ")
    assert result.stdout == ""
    assert _left(tmp_path) == before
