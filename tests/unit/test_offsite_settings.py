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
from tasks.offsite import authorized_line, read_line
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
    # A reading host's second key (offsite_reads) is revoked with it.
    reader = authorized + f"restrict {key} dfr-offsite-read:staging:reader\n"
    assert departed_hosts(reader, "staging", {"host2"}) == ["reader"]


def test_dev_generates_its_passphrase_once(tmp_path):
    data = _data(tmp_path, env="dev", passphrase=None)
    secrets = Path(data["secrets_file"])
    with on_stack_host(data, backup=["vault"]):
        first = offsite_settings(data, "dev").passphrase
        assert offsite_settings(data, "dev").passphrase == first
    assert len(first) >= 24 and secrets.read_text().count("DFR_OFFSITE_PASSPHRASE=") == 1
    assert secrets.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("key", ["backup_notify_url", "drill_notify_url"])
@pytest.mark.parametrize(
    "url", ["hc-ping.com/x", "https://hc ping.com/x", 'https://h/"x', "ftp://h/x", 42]
)
def test_a_notify_url_that_is_not_one_is_refused(tmp_path, key, url):
    data = _data(tmp_path, **{key: url})
    with pytest.raises(SettingsError, match=rf"{key} .* is not an http"):
        backup_settings(data, "prod")


def test_notify_urls_and_metrics_directory_are_taken_as_given(tmp_path):
    url = "https://hc-ping.com/0b4e8f5e-5c3a-4d7e-9a57-2f1d3c9b8a71"
    drills = "https://hc-ping.com/7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
    data = _data(
        tmp_path, backup_notify_url=url, drill_notify_url=drills, backup_metrics_dir="/srv/metrics"
    )
    settings = backup_settings(data, "prod")
    assert (settings.notify_url, settings.drill_notify_url, settings.metrics_dir) == (
        url,
        drills,
        "/srv/metrics",
    )


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


PROD_PASSPHRASE = "Qp7Rw2Xe9Ty4Ui6Oa1Sd8Fg3Hj5"


def _reader(tmp_path: Path, prod: str | None = PROD_PASSPHRASE, **extra) -> dict:
    """Staging's data reading production's repository, prod.env next to staging.env."""
    data = _data(tmp_path, env="staging", **{"offsite_reads": ["prod"], **extra})
    secrets = tmp_path / "prod.env"
    secrets.write_text("DFR_DB_PASSWORD=unrelated-to-this-0123456789\n")
    if prod is not None:
        with open(secrets, "a") as handle:
            handle.write(f"DFR_OFFSITE_PASSPHRASE={prod}\n")
    secrets.chmod(0o600)
    return data


def test_a_reading_environment_gets_each_sources_directory_and_passphrase(tmp_path, monkeypatch):
    # This environment's own passphrase in the process environment is never taken for prod's.
    monkeypatch.setenv("DFR_OFFSITE_PASSPHRASE", PASSPHRASE)
    data = _reader(tmp_path)
    with on_stack_host(data, backup=["vault"]):
        offsite = offsite_settings(data, "staging")
    (prod,) = offsite.reads
    assert offsite.source("prod") is prod and offsite.source("staging") is offsite
    assert prod.repository == "ssh://dfr-offsite@vault.example.org:22/srv/dfr-offsite/prod/repo"
    assert (prod.passphrase, offsite.passphrase) == (PROD_PASSPHRASE, PASSPHRASE)
    assert offsite.drill_envs == ("staging",)
    assert PROD_PASSPHRASE not in repr(offsite)
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc2Y1bq0J3vH3b7yq7g0cG5c2b0w1wq8Xz8k3m4n5p6"
    # Its own key adds to its own repository; its read key may use prod's, where the quota
    # (under what a repository holds) leaves borg nothing it may write.
    assert authorized_line(offsite, key, "odoo") == (
        'command="borg serve --append-only --restrict-to-path /srv/dfr-offsite/staging",'
        f"restrict {key} dfr-offsite:staging:odoo"
    )
    assert read_line(offsite, key, "odoo") == (
        'command="borg serve --append-only --storage-quota 10M '
        '--restrict-to-path /srv/dfr-offsite/prod",restrict '
        f"{key} dfr-offsite-read:staging:odoo"
    )
    with pytest.raises(SettingsError, match=r"'dev': staging reads no .* offsite_reads"):
        offsite.source("dev")


def test_drill_envs_may_name_the_sources(tmp_path):
    data = _reader(tmp_path, drill_envs=["staging", "prod"])
    with on_stack_host(data, backup=["vault"]):
        assert offsite_settings(data, "staging").drill_envs == ("staging", "prod")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"offsite_reads": "prod"}, r"offsite_reads 'prod' is not a list of environments"),
        ({"offsite_reads": ["qa"]}, r"offsite_reads lists 'qa', which is not an environment"),
        ({"offsite_reads": ["staging"]}, "offsite_reads lists staging itself"),
        ({"drill_envs": ["dev"]}, "drill_envs lists dev, whose off-host repository staging does"),
    ],
)
def test_bad_reads_are_refused_in_one_line(tmp_path, extra, message):
    data = _reader(tmp_path, **extra)
    with on_stack_host(data, backup=["vault"]), pytest.raises(SettingsError, match=message):
        offsite_settings(data, "staging")


def test_reads_need_the_backup_host_in_the_inventory(tmp_path):
    data = _reader(tmp_path)
    with on_stack_host(data), pytest.raises(SettingsError, match="no backup host"):
        offsite_settings(data, "staging")


@pytest.mark.parametrize(
    ("prod", "message"),
    [
        (None, r"secrets for prod lack DFR_OFFSITE_PASSPHRASE in .*prod.env, which offsite_reads"),
        ("changeme-changeme-changeme", "DFR_OFFSITE_PASSPHRASE for prod looks like a placeholder"),
    ],
)
def test_a_sources_passphrase_must_be_in_its_secrets_file(tmp_path, prod, message):
    data = _reader(tmp_path, prod=prod)
    with on_stack_host(data, backup=["vault"]), pytest.raises(SettingsError, match=message) as e:
        offsite_settings(data, "staging")
    assert "\n" not in str(e.value)


def test_a_missing_source_secrets_file_is_named(tmp_path):
    data = _reader(tmp_path)
    (tmp_path / "prod.env").unlink()
    with on_stack_host(data, backup=["vault"]), pytest.raises(SettingsError, match=r"\(missing\)"):
        offsite_settings(data, "staging")
