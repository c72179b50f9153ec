"""The backup tools on a host: installed when missing or different, left alone when in place."""

from __future__ import annotations

import hashlib
from functools import partial

from tasks.backup_settings import backup_settings
from tasks.backup_tools import SCRIPT_MODES, install_backup_tools
from tasks.settings import load_settings
from tests.unit.environments import HOST_SHAPE, host_data
from tests.unit.plan import Plan, plan

DIRECTORY_MODES = {
    "/var/backups/dfr/prod": "711",
    "/var/backups/dfr/prod/incoming": "711",
    "/var/backups/dfr/prod/.dumping": "711",
}


def _plan_tools(tmp_path, on_host: list[str], **overrides) -> Plan:
    data = host_data("prod", tmp_path, **overrides)
    settings = load_settings(data, HOST_SHAPE)
    deploy = partial(install_backup_tools, settings, backup_settings(data, "prod"), False)
    return plan(deploy, "", {"fake_responses": {"for p in ": on_host}})


def _host_state(uploads: dict[str, str]) -> list[str]:
    """What the host reports once everything in ``uploads`` is in place."""
    modes = {f"/opt/dfr/prod/bin/{script}": mode for script, mode in SCRIPT_MODES}
    modes["/opt/dfr/prod/backup.env"] = "0644"
    lines = [f"{mode} - {path}" for path, mode in DIRECTORY_MODES.items()]
    lines.append("755 - /opt/dfr/prod/bin")
    for path, content in uploads.items():
        digest = hashlib.sha256(content.encode()).hexdigest()
        lines.append(f"{modes[path].lstrip('0')} {digest} {path}")
    return lines


def test_a_fresh_host_gets_every_script_and_the_settings(tmp_path):
    fresh = _plan_tools(tmp_path, on_host=[])
    assert set(fresh.uploads) == {
        "/opt/dfr/prod/bin/dfr-common",
        "/opt/dfr/prod/bin/dfr-backup",
        "/opt/dfr/prod/bin/dfr-order-rows",
        "/opt/dfr/prod/bin/dfr-restore",
        "/opt/dfr/prod/bin/dfr-offsite",
        "/opt/dfr/prod/bin/dfr-scheduled-backup",
        "/opt/dfr/prod/bin/dfr-retention",
        "/opt/dfr/prod/bin/dfr-update",
        "/opt/dfr/prod/bin/dfr-put-back",
        "/opt/dfr/prod/bin/dfr-switch-odoo",
        "/opt/dfr/prod/backup.env",
    }
    assert "mkdir -p /var/backups/dfr/prod/incoming" in fresh.text


def test_tools_in_place_cost_no_operation(tmp_path):
    fresh = _plan_tools(tmp_path, on_host=[])
    again = _plan_tools(tmp_path, on_host=_host_state(fresh.uploads))
    assert again.uploads == {}
    (fact,) = again.commands  # the one round trip that found everything in place
    assert fact.startswith("for p in ")


def test_a_changed_setting_reaches_the_host(tmp_path):
    fresh = _plan_tools(tmp_path, on_host=[])
    changed = _plan_tools(tmp_path, on_host=_host_state(fresh.uploads), restore_health_timeout=77)
    assert "DFR_RESTORE_HEALTH_TIMEOUT=77" in changed.uploads["/opt/dfr/prod/backup.env"]


def test_a_script_with_another_mode_is_put_right(tmp_path):
    fresh = _plan_tools(tmp_path, on_host=[])
    state = [
        line.replace("755 ", "644 ", 1) if line.endswith("/dfr-restore") else line
        for line in _host_state(fresh.uploads)
    ]
    assert "chmod 755 /opt/dfr/prod/bin/dfr-restore" in _plan_tools(tmp_path, state).text
