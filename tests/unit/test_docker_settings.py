"""Docker settings: defaults, and each bad input refused with one actionable line."""

from __future__ import annotations

import hashlib

import pytest

from tasks.docker_settings import docker_settings
from tasks.errors import SettingsError
from tasks.facts import DockerHostSurvey


def test_defaults_give_docker_ce_with_rotated_logs():
    settings = docker_settings({})
    assert settings.install_mode == "docker-ce"
    assert settings.daemon_config() == {
        "log-driver": "json-file",
        "log-opts": {"max-size": "10m", "max-file": "3"},
        "live-restore": True,
    }


def test_daemon_extra_keys_are_merged_last():
    settings = docker_settings({"docker_daemon_extra": {"live-restore": False, "mtu": 1400}})
    assert settings.daemon_config()["live-restore"] is False
    assert settings.daemon_config()["mtu"] == 1400


@pytest.fixture
def compose_binary(tmp_path):
    path = tmp_path / "docker-compose"
    path.write_bytes(b"\x7fELF compose")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_distro_mode_accepts_a_binary_with_its_checksum(compose_binary):
    path, digest = compose_binary
    settings = docker_settings(
        {
            "docker_install_mode": "distro",
            "docker_compose_plugin_src": str(path),
            "docker_compose_plugin_sha256": digest.upper(),
        }
    )
    assert settings.compose_plugin_sha256 == digest


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"docker_install_mode": "snap"}, "docker_install_mode 'snap' is unknown: use one of"),
        ({"docker_install_mode": "distro"}, "docker_compose_plugin_src is not set"),
        (
            {"docker_install_mode": "distro", "docker_compose_plugin_src": "/x"},
            "docker_compose_plugin_sha256 None is not a sha256",
        ),
        (
            {
                "docker_install_mode": "distro",
                "docker_compose_plugin_src": "/nonexistent/compose",
                "docker_compose_plugin_sha256": "a" * 64,
            },
            "/nonexistent/compose does not exist",
        ),
        ({"docker_log_max_size": "lots"}, "docker_log_max_size 'lots' is not a size"),
        ({"docker_log_max_file": "3"}, "docker_log_max_file '3' must be a whole number"),
        ({"docker_daemon_extra": ["x"]}, "docker_daemon_extra must be a dict"),
    ],
)
def test_bad_input_is_one_clear_line(data, message):
    with pytest.raises(SettingsError) as error:
        docker_settings(data)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_checksum_mismatch_names_both_checksums(compose_binary):
    path, digest = compose_binary
    with pytest.raises(SettingsError, match=f"has sha256 {digest}, not the expected {'b' * 64}"):
        docker_settings(
            {
                "docker_install_mode": "distro",
                "docker_compose_plugin_src": str(path),
                "docker_compose_plugin_sha256": "b" * 64,
            }
        )


def test_url_source_is_checked_on_the_host_by_the_download():
    settings = docker_settings(
        {
            "docker_install_mode": "distro",
            "docker_compose_plugin_src": "https://mirror.example/compose",
            "docker_compose_plugin_sha256": "c" * 64,
        }
    )
    assert settings.compose_plugin_is_url


def test_survey_reads_installed_engine_packages_only():
    found = DockerHostSurvey().process(
        [
            "os_id=debian",
            "os_version=12",
            "os_codename=bookworm",
            "arch=amd64",
            "init=systemd",
            "engine_packages=docker-ce:not-installed docker.io:installed ",
            "dockerd=/usr/sbin/dockerd",
            "engine_version=20.10.24",
            "compose_version=v2.40.3",
        ]
    )
    assert found.engine_packages == ("docker.io",)
    assert found.has_systemd and found.engine_running and found.has_compose_v2
