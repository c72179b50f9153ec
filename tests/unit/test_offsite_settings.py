"""Off-host repository settings: which host is the backup host, the passphrase, bad input."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyinfra.api import Config, Inventory, State
from pyinfra.context import ctx_host, ctx_state

from tasks.backup_settings import backup_settings
from tasks.errors import SettingsError, StepFailed
from tasks.offsite import authorized_line
from tasks.offsite_keys import departed_hosts
from tasks.offsite_settings import is_backup_host, offsite_settings, repository_host_settings
from tests.unit.environments import host_data

PASSPHRASE = "k3Vq9Zr2Lx7Wm4Tn8Hs6Jd1Pf5"


@contextlib.contextmanager
def on_stack_host(data: dict[str, Any], **groups: list[str]) -> Iterator[None]:
    """pyinfra's context on host "odoo" of an inventory with ``groups`` of other hosts."""
    others = [name for names in groups.values() for name in names]
    inventory = Inventory(
        (
            [("odoo", data)] + [(name, {"ssh_hostname": f"{name}.example.org"}) for name in others],
            {},
        ),
        **{group: (names, {}) for group, names in groups.items()},
    )
    state = State(inventory, Config())
    with ctx_state.use(state), ctx_host.use(inventory.get_host("odoo")):
        yield


def _data(tmp_path: Path, env: str = "prod", passphrase: str | None = PASSPHRASE, **extra):
    data = host_data(env, tmp_path, **extra)
    if passphrase is not None:
        with open(data["secrets_file"], "a") as secrets:
            secrets.write(f"DFR_OFFSITE_PASSPHRASE={passphrase}\n")
    return data


def test_no_backup_host_means_no_off_host_repository(tmp_path):
    data = _data(tmp_path)
    with on_stack_host(data):
        assert offsite_settings(data, "prod") is None
        assert not is_backup_host()


def test_the_backup_group_names_the_repository(tmp_path):
    data = _data(tmp_path)
    with on_stack_host(data, backup=["vault"]):
        offsite = offsite_settings(data, "prod")
        assert not is_backup_host()
    assert offsite is not None
    assert offsite.repository == "ssh://dfr-offsite@vault.example.org:22/srv/dfr-offsite/prod/repo"
    assert (offsite.keep_daily, offsite.keep_weekly, offsite.keep_monthly) == (7, 4, 12)
    assert offsite.max_age_hours == 26
    assert offsite.passphrase == PASSPHRASE
    assert PASSPHRASE not in repr(offsite)


@pytest.mark.parametrize(
    ("extra", "groups", "message"),
    [
        ({}, {"backup": ["a", "b"]}, r"the inventory has 2 backup hosts \(a, b\)"),
        ({"backup_repository": "gone"}, {}, "backup_repository 'gone' is not a host of this"),
        (
            {"offsite_keep_daily": 0, "offsite_keep_weekly": 0, "offsite_keep_monthly": 0},
            {"backup": ["a"]},
            "keep nothing",
        ),
        ({"offsite_keep_daily": -1}, {"backup": ["a"]}, "offsite_keep_daily -1 is not a number"),
        ({"offsite_max_age_hours": "26"}, {"backup": ["a"]}, "offsite_max_age_hours '26'"),
    ],
)
def test_bad_settings_are_refused_in_one_line(tmp_path, extra, groups, message):
    data = _data(tmp_path, **extra)
    with on_stack_host(data, **groups), pytest.raises(SettingsError, match=message):
        offsite_settings(data, "prod")


@pytest.mark.parametrize(
    ("passphrase", "message"),
    [
        (None, "secrets for prod lack DFR_OFFSITE_PASSPHRASE"),
        ("short", "DFR_OFFSITE_PASSPHRASE for prod is too weak"),
        ("changeme-changeme-changeme", "DFR_OFFSITE_PASSPHRASE for prod looks like a placeholder"),
    ],
)
def test_production_refuses_a_missing_or_weak_passphrase(tmp_path, passphrase, message):
    data = _data(tmp_path, passphrase=passphrase)
    with on_stack_host(data, backup=["vault"]), pytest.raises(SettingsError, match=message):
        offsite_settings(data, "prod")


def test_the_backup_host_setup_needs_no_passphrase(tmp_path):
    data = _data(tmp_path, passphrase=None)
    with on_stack_host(data, backup=["vault"]):
        assert offsite_settings(data, "prod", passphrase=False).passphrase == ""


def test_the_backup_host_keeps_the_passphrase_only_with_a_prune_schedule(tmp_path):
    data = _data(tmp_path)
    with on_stack_host(data, backup=["vault"]):
        scheduled = repository_host_settings(data, "prod")
        manual = repository_host_settings({**data, "offsite_prune_schedule": None}, "prod")
    assert (scheduled.prune_schedule, scheduled.passphrase) == ("*-*-* 05:30:00", PASSPHRASE)
    assert (manual.prune_schedule, manual.passphrase) == (None, "")


@pytest.mark.parametrize("key", ["offsite_prune_schedule", "drill_schedule"])
def test_a_schedule_is_one_line(tmp_path, key):
    data = _data(tmp_path, **{key: "*-*-* 05:30:00\nExecStart=/bin/evil"})
    with (
        on_stack_host(data, backup=["vault"]),
        pytest.raises(
            SettingsError, match=f"{key} .* is not a systemd OnCalendar value: give one on one line"
        ),
    ):
        offsite_settings(data, "prod")


def test_departed_hosts_are_matched_by_whole_marker_and_environment():
    key = "ssh-ed25519 AAAA"
    authorized = "\n".join([
        f"restrict {key} dfr-offsite:prod:host1", f"restrict {key} dfr-offsite:prod:host10",
        f"restrict {key} dfr-offsite:staging:host2", f"restrict {key} dfr-offsite:prod:gone",
        f"restrict {key} someone@laptop", "",
    ])  # fmt: skip
    assert departed_hosts(authorized, "prod", {"host1", "host10"}) == ["gone"]
    assert departed_hosts(authorized, "prod", {"host10"}) == ["gone", "host1"]
    assert departed_hosts(authorized, "prod", {"host1"}) == ["gone", "host10"]
    assert departed_hosts(authorized, "staging", set()) == ["host2"]


def test_dev_generates_its_passphrase_once(tmp_path):
    data = _data(tmp_path, env="dev", passphrase=None)
    secrets = Path(data["secrets_file"])
    with on_stack_host(data, backup=["vault"]):
        first = offsite_settings(data, "dev").passphrase
        assert offsite_settings(data, "dev").passphrase == first
    assert len(first) >= 24 and secrets.read_text().count("DFR_OFFSITE_PASSPHRASE=") == 1
    assert secrets.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "url", ["hc-ping.com/x", "https://hc ping.com/x", 'https://h/"x', "ftp://h/x", 42]
)
def test_a_notify_url_that_is_not_one_is_refused(tmp_path, url):
    data = _data(tmp_path, backup_notify_url=url)
    with pytest.raises(SettingsError, match=r"backup_notify_url .* is not an http"):
        backup_settings(data, "prod")


def test_a_notify_url_and_metrics_directory_are_taken_as_given(tmp_path):
    url = "https://hc-ping.com/0b4e8f5e-5c3a-4d7e-9a57-2f1d3c9b8a71"
    settings = backup_settings(
        _data(tmp_path, backup_notify_url=url, backup_metrics_dir="/srv/metrics"), "prod"
    )
    assert (settings.notify_url, settings.metrics_dir) == (url, "/srv/metrics")


def test_the_authorized_line_allows_borg_serve_append_only_and_nothing_else(tmp_path):
    data = _data(tmp_path)
    with on_stack_host(data, backup=["vault"]):
        offsite = offsite_settings(data, "prod")
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc2Y1bq0J3vH3b7yq7g0cG5c2b0w1wq8Xz8k3m4n5p6"
    line = authorized_line(offsite, f"{key} root@odoo\n", "odoo")
    assert line == (
        'command="borg serve --append-only --restrict-to-path /srv/dfr-offsite/prod",restrict '
        f"{key} dfr-offsite:prod:odoo"
    )
    for forged in ('ssh-ed25519 AAAA",no-restrict', "ssh-rsa AAAAB3", 'x command="sh"'):
        with pytest.raises(StepFailed, match="is not an ed25519 public key"):
            authorized_line(offsite, forged, "odoo")
