"""The release log's arithmetic: Odoo's unavailable time, and which release a rollback takes."""

from __future__ import annotations

import pytest

from tasks.errors import SettingsError
from tasks.releases import unavailable_seconds
from tasks.rollback import rollback_target, snapshot_age

S = 1_000_000_000  # nanoseconds


def test_unavailable_time_runs_from_a_death_to_the_successor_being_healthy():
    events = [
        f"{10 * S} odoo old kill", f"{10 * S + 1} odoo old die", f"{11 * S} odoo new start",
        f"{14 * S} odoo new health_status: healthy",
    ]  # fmt: skip
    assert unavailable_seconds(events, now=100) == pytest.approx(4.0)


def test_health_check_execs_before_a_stop_do_not_hide_it():
    events = [
        f"{9 * S} odoo old exec_create: curl -fsS http://127.0.0.1:8069/web/health",
        f"{9 * S} odoo old exec_die", f"{10 * S} odoo old kill", f"{10 * S} odoo old die",
        f"{13 * S} odoo new health_status: healthy",
    ]  # fmt: skip
    assert unavailable_seconds(events, now=100) == pytest.approx(3.0)


def test_overlapping_downtimes_of_odoo_and_nginx_count_once():
    events = [
        f"{10 * S} odoo o1 die", f"{12 * S} nginx n1 die",
        f"{15 * S} odoo o2 health_status: healthy", f"{16 * S} nginx n2 health_status: healthy",
        f"{20 * S} postgres p1 die",
    ]  # fmt: skip
    assert unavailable_seconds(events, now=100) == pytest.approx(6.0)


def test_a_new_odoo_healthy_before_the_old_one_stops_means_no_downtime():
    events = [
        f"{10 * S} odoo new create", f"{11 * S} odoo new start",
        f"{15 * S} odoo new health_status: healthy", f"{16 * S} odoo old kill",
        f"{17 * S} odoo old die",
    ]  # fmt: skip
    assert unavailable_seconds(events, now=100) == 0


def test_a_one_off_container_ending_is_not_downtime():
    events = [f"{10 * S} odoo update create", f"{11 * S} odoo update die"]
    assert unavailable_seconds(events, now=100) == 0


def test_a_service_still_down_counts_until_now():
    assert unavailable_seconds([f"{90 * S} nginx n1 die"], now=100) == pytest.approx(10.0)


def test_no_event_means_no_downtime():
    assert unavailable_seconds([], now=100) == 0


def test_lines_that_are_not_events_are_skipped():
    events = [f"{10 * S} odoo o1 die", "  print('a health check spanning lines')", "",
              f"{12 * S} odoo o2 health_status: healthy"]  # fmt: skip
    assert unavailable_seconds(events, now=100) == pytest.approx(2.0)


def _deploy(id_: str, **fields) -> dict:
    return {"id": id_, "kind": "deploy", "result": "ok", **fields}


def test_rollback_takes_the_deploy_before_the_running_one():
    records = [_deploy("20261201T000000Z"), _deploy("20261202T000000Z"),
               {"id": "20261203T000000Z", "kind": "deploy", "result": "failed"}]  # fmt: skip
    assert rollback_target(records, None).target["id"] == "20261201T000000Z"


def test_after_a_rollback_the_next_one_goes_further_back():
    records = [_deploy("20261201T000000Z"), _deploy("20261202T000000Z"),
               _deploy("20261203T000000Z"),
               {"id": "20261204T000000Z", "kind": "rollback", "result": "ok",
                "rolled_back_to": "20261202T000000Z"}]  # fmt: skip
    assert rollback_target(records, None).target["id"] == "20261201T000000Z"


def test_releases_a_rollback_undid_are_neither_running_nor_a_target():
    records = [_deploy("20261201T000000Z"), _deploy("20261202T000000Z"),
               _deploy("20261203T000000Z", modules_updated=["dfr"]),
               {"id": "20261204T000000Z", "kind": "rollback", "result": "ok",
                "rolled_back_to": "20261202T000000Z"},
               _deploy("20261205T000000Z")]  # fmt: skip
    plan = rollback_target(records, None)
    # not the undone 20261203 (its code on a database its update no longer applies to)
    assert plan.target["id"] == "20261202T000000Z" and plan.over_update is None
    with pytest.raises(SettingsError, match="'20261203T000000Z' is not a successful deploy in"):
        rollback_target(records, "20261203T000000Z")


def test_rollback_over_module_updates_names_the_first_update_for_its_snapshot():
    records = [_deploy("20261201T000000Z"), _deploy("20261202T000000Z"),
               _deploy("20261203T000000Z", modules_installed=["dfr_extra"]),
               _deploy("20261204T000000Z", modules_updated=["dfr"]),
               _deploy("20261205T000000Z")]  # fmt: skip
    assert rollback_target(records, None).over_update is None
    plan = rollback_target(records, "20261202T000000Z")
    assert plan.over_update["id"] == "20261203T000000Z"  # its snapshot predates both updates
    assert rollback_target(records, "20261203T000000Z").over_update["id"] == "20261204T000000Z"


@pytest.mark.parametrize(
    ("when", "now", "said"),
    [
        ("2026-12-04T09:00:00Z", 1796374859.0, "0 min"),
        ("2026-12-04T09:00:00Z", 1796374800.0 + 7500, "2 h 5 min"),
        ("2026-12-01T09:00:00Z", 1796374800.0 + 60, "3 d 0 h 1 min"),
        ("None", 0.0, "an unknown time"),
    ],
)
def test_the_snapshot_age_is_said_in_days_hours_and_minutes(when, now, said):
    assert snapshot_age(when, now) == said


@pytest.mark.parametrize(
    ("records", "asked", "message"),
    [
        ([], None, "no successful release is recorded"),
        ([_deploy("20261201T000000Z")], None, "no release before 20261201T000000Z"),
        ([_deploy("20261201T000000Z")], "20261201T000000Z", "is the one running"),
        ([_deploy("20261201T000000Z")], "nope", "release 'nope' is not a successful deploy"),
    ],
)
def test_rollback_without_a_release_to_go_to_says_why(records, asked, message):
    with pytest.raises(SettingsError, match=message):
        rollback_target(records, asked)
