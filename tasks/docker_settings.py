"""Validated settings of the Docker engine install, read from host data."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from tasks.errors import SettingsError

INSTALL_MODES = ("docker-ce", "distro")
_SIZE = re.compile(r"[1-9][0-9]*[kmg]")  # checked with fullmatch
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class DockerSettings:
    install_mode: str
    compose_plugin_src: str | None
    compose_plugin_sha256: str | None
    log_max_size: str
    log_max_file: int
    live_restore: bool
    daemon_extra: dict[str, Any] = field(default_factory=dict)

    @property
    def compose_plugin_is_url(self) -> bool:
        return bool(self.compose_plugin_src) and self.compose_plugin_src.startswith(
            ("http://", "https://")
        )

    def daemon_config(self) -> dict[str, Any]:
        """The content of /etc/docker/daemon.json."""
        config: dict[str, Any] = {
            "log-driver": "json-file",
            "log-opts": {"max-size": self.log_max_size, "max-file": str(self.log_max_file)},
            "live-restore": self.live_restore,
        }
        config.update(self.daemon_extra)
        return config


def docker_settings(data: Any) -> DockerSettings:
    """Build and validate the Docker settings from pyinfra host data; raise SettingsError."""
    mode = str(data.get("docker_install_mode") or "docker-ce")
    if mode not in INSTALL_MODES:
        raise SettingsError(
            f"docker_install_mode {mode!r} is unknown: use one of {', '.join(INSTALL_MODES)}"
        )

    src = data.get("docker_compose_plugin_src")
    sha256 = data.get("docker_compose_plugin_sha256")
    if mode == "distro" or src:
        _check_compose_plugin(str(src) if src else None, str(sha256) if sha256 else None)

    size = str(data.get("docker_log_max_size") or "10m").lower()
    if not _SIZE.fullmatch(size):
        raise SettingsError(
            f"docker_log_max_size {size!r} is not a size: use a number with k, m or g, like 10m"
        )
    files = data.get("docker_log_max_file", 3)
    if not isinstance(files, int) or isinstance(files, bool) or files < 1:
        raise SettingsError(f"docker_log_max_file {files!r} must be a whole number of at least 1")
    extra = data.get("docker_daemon_extra") or {}
    if not isinstance(extra, dict):
        raise SettingsError("docker_daemon_extra must be a dict of daemon.json keys")

    return DockerSettings(
        install_mode=mode,
        compose_plugin_src=str(src) if src else None,
        compose_plugin_sha256=str(sha256).lower() if sha256 else None,
        log_max_size=size,
        log_max_file=files,
        live_restore=bool(data.get("docker_live_restore", True)),
        daemon_extra=dict(extra),
    )


def _check_compose_plugin(src: str | None, sha256: str | None) -> None:
    if not src:
        raise SettingsError(
            "docker_compose_plugin_src is not set: distro mode needs a Compose v2 binary "
            "(a path on this machine or a URL) and its docker_compose_plugin_sha256"
        )
    if not sha256 or not _SHA256.fullmatch(sha256.lower()):
        raise SettingsError(
            f"docker_compose_plugin_sha256 {sha256!r} is not a sha256: "
            "give the 64 hex digits of the Compose binary's checksum"
        )
    if src.startswith(("http://", "https://")):
        return  # checked on the host by the download itself
    path = Path(src)
    if not path.is_file():
        raise SettingsError(
            f"docker_compose_plugin_src {src} does not exist: "
            "point it at a Compose v2 binary on this machine"
        )
    actual = file_sha256(path)
    if actual != sha256.lower():
        raise SettingsError(
            f"docker_compose_plugin_src {src} has sha256 {actual}, "
            f"not the expected {sha256.lower()}: replace the file or fix the checksum"
        )


@cache
def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
