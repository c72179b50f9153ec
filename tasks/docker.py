"""Install and configure the Docker engine and the Compose v2 plugin on target hosts."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from tasks.apt_keys import pinned_key
from tasks.docker_settings import DockerSettings, docker_settings
from tasks.errors import SettingsError
from tasks.facts import DockerHost, DockerHostSurvey

# Releases the deploy supports, by os-release ID and VERSION_ID.
SUPPORTED_OS = {"debian": ("12",), "ubuntu": ("22.04", "24.04")}

DOCKER_REPO = "https://download.docker.com/linux/{os_id}"
# Docker's release signing key, as published on docs.docker.com/engine/install.
DOCKER_KEY_FINGERPRINT = "9DC858229FC7DD38854AE2D88D81803C0EBFCD88"
DOCKER_KEYRING = "/etc/apt/keyrings/docker.asc"
DOCKER_CE_PACKAGES = [
    "docker-ce",
    "docker-ce-cli",
    "containerd.io",
    "docker-buildx-plugin",
    "docker-compose-plugin",
]
DISTRO_PACKAGES = ["docker.io"]
PREREQUISITES = ["ca-certificates", "curl", "gnupg"]
COMPOSE_PLUGIN_PATH = "/usr/local/lib/docker/cli-plugins/docker-compose"
DAEMON_JSON = "/etc/docker/daemon.json"


@deploy("Install Docker")
def install_docker() -> None:
    """Docker engine + Compose v2 + daemon.json, or leave a working existing engine alone."""
    settings = docker_settings(host.data)
    found: DockerHost = host.get_fact(DockerHostSurvey)
    check_supported_os(found)

    if found.engine_running and not found.has_systemd:
        # An engine started by hand or by another init (a dev VM, CI): not ours to reconfigure.
        logger.info(
            f"{host.name}: Docker {found.engine_version} already runs outside systemd; left as is"
        )
        if not found.has_compose_v2:
            _compose_plugin(settings, found)
        return

    apt.packages(
        name="Install the prerequisites (ca-certificates, curl, gnupg)",
        packages=PREREQUISITES,
        update=_missing(PREREQUISITES),
        cache_time=3600,
        no_recommends=True,
    )
    files.directory(name="Create /etc/docker", path="/etc/docker", mode="0755")
    # Written before the engine is installed, so its first start already uses it.
    daemon_json = files.put(
        name=f"Configure the Docker daemon ({DAEMON_JSON})",
        src=StringIO(json.dumps(settings.daemon_config(), indent=2, sort_keys=True) + "\n"),
        dest=DAEMON_JSON,
        mode="0644",
        create_remote_dir=False,
    )

    kept = [pkg for pkg in found.engine_packages if pkg not in _engine_packages(settings)]
    if kept:
        logger.info(f"{host.name}: keeping the installed engine ({', '.join(kept)})")
        engine = None
        if not found.has_compose_v2:
            _compose_plugin(settings, found)
    elif settings.install_mode == "docker-ce":
        engine = _docker_ce(found)
    else:
        engine = apt.packages(
            name="Install the distribution's Docker engine (docker.io)",
            packages=DISTRO_PACKAGES,
            update=_missing(DISTRO_PACKAGES),
            cache_time=3600,
            no_recommends=True,
        )
        _compose_plugin(settings, found)

    systemd.service(
        name="Docker is enabled and running", service="docker", running=True, enabled=True
    )
    systemd.service(
        name="Restart Docker for the new daemon.json",
        service="docker",
        restarted=True,
        _if=lambda: daemon_json.did_change() and not (engine and engine.did_change()),
    )
    server.shell(
        name="Check the engine and Compose v2 answer",
        commands=[
            "docker info --format '{{.ServerVersion}}'",
            "docker compose version --short | grep -q '^v\\?2\\.'",
        ],
        _if=any_changed(daemon_json, *([engine] if engine else [])),
    )


def check_supported_os(found: DockerHost) -> None:
    versions = SUPPORTED_OS.get(found.os_id)
    if not versions or found.os_version not in versions:
        supported = "; ".join(f"{name} {', '.join(v)}" for name, v in SUPPORTED_OS.items())
        raise SettingsError(
            f"{host.name} runs {found.os_id or 'an unknown OS'} {found.os_version}, "
            f"which dfr-deploy does not support: use {supported}"
        )


def _engine_packages(settings: DockerSettings) -> list[str]:
    return DOCKER_CE_PACKAGES if settings.install_mode == "docker-ce" else DISTRO_PACKAGES


def _missing(packages: list[str]) -> bool:
    installed = host.get_fact(DebPackages) or {}
    return any(pkg not in installed for pkg in packages)


def _docker_ce(found: DockerHost):
    _docker_repository(found)
    return apt.packages(
        name="Install Docker CE, its CLI, containerd, Buildx and Compose",
        packages=DOCKER_CE_PACKAGES,
        update=_missing(DOCKER_CE_PACKAGES),
        cache_time=3600,
    )


def _docker_repository(found: DockerHost) -> None:
    repo = DOCKER_REPO.format(os_id=found.os_id)
    key = pinned_key(
        name="Docker's apt signing key (pinned by fingerprint)",
        url=f"{repo}/gpg",
        dest=DOCKER_KEYRING,
        fingerprint=DOCKER_KEY_FINGERPRINT,
    )
    source = apt.sources_file(
        name="Docker's apt repository",
        filename="docker",
        uris=[repo],
        suites=[found.os_codename],
        components=["stable"],
        architectures=[found.arch],
        signed_by=DOCKER_KEYRING,
    )
    apt.update(name="Refresh apt for Docker's repository", _if=any_changed(key, source))


def _compose_plugin(settings: DockerSettings, found: DockerHost) -> None:
    """The Compose v2 CLI plugin: a checked binary if one is given, else Docker's package."""
    if not settings.compose_plugin_src:
        if settings.install_mode != "docker-ce" or not found.has_systemd:
            raise SettingsError(
                f"{host.name} has Docker but no Compose v2: set docker_compose_plugin_src and "
                "docker_compose_plugin_sha256 to a Compose v2 binary"
            )
        _docker_repository(found)
        apt.packages(
            name="Install the Compose v2 plugin",
            packages=["docker-compose-plugin"],
            update=_missing(["docker-compose-plugin"]),
            cache_time=3600,
        )
        return
    files.directory(
        name="Create the Docker CLI plugin directory",
        path=str(Path(COMPOSE_PLUGIN_PATH).parent),
        mode="0755",
    )
    if settings.compose_plugin_is_url:
        files.download(
            name="Download the Compose v2 plugin (checked by sha256)",
            src=settings.compose_plugin_src,
            dest=COMPOSE_PLUGIN_PATH,
            sha256sum=settings.compose_plugin_sha256,
            mode="0755",
        )
    else:
        files.put(
            name="Upload the Compose v2 plugin (checked by sha256)",
            src=settings.compose_plugin_src,
            dest=COMPOSE_PLUGIN_PATH,
            mode="0755",
            add_deploy_dir=False,
            create_remote_dir=False,
        )
