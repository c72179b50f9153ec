"""Facts dfr-deploy reads from target hosts."""

from __future__ import annotations

from dataclasses import dataclass

from pyinfra.api import FactBase

_SURVEY_SCRIPT = r"""
if [ -r /etc/os-release ]; then . /etc/os-release; fi
echo "os_id=${ID:-}"
echo "os_version=${VERSION_ID:-}"
echo "os_codename=${VERSION_CODENAME:-}"
echo "arch=$(dpkg --print-architecture 2>/dev/null)"
echo "init=$(cat /proc/1/comm 2>/dev/null)"
echo "engine_packages=$(dpkg-query -W -f='${Package}:${db:Status-Status} ' \
    docker-ce docker.io moby-engine 2>/dev/null)"
echo "dockerd=$(command -v dockerd 2>/dev/null)"
echo "engine_version=$(timeout 20 docker info --format '{{.ServerVersion}}' 2>/dev/null)"
echo "compose_version=$(timeout 20 docker compose version --short 2>/dev/null)"
"""


@dataclass(frozen=True)
class DockerHost:
    """What a host has before dfr-deploy touches it: OS, init system and any Docker engine."""

    os_id: str
    os_version: str
    os_codename: str
    arch: str
    init: str
    engine_packages: tuple[str, ...]
    dockerd: str
    engine_version: str
    compose_version: str

    @property
    def has_systemd(self) -> bool:
        return self.init == "systemd"

    @property
    def engine_running(self) -> bool:
        return bool(self.engine_version)

    @property
    def has_compose_v2(self) -> bool:
        return self.compose_version.lstrip("v").startswith("2.")


class DockerHostSurvey(FactBase):
    """One round trip that tells the Docker deploy everything it needs to decide its plan."""

    def command(self) -> str:
        return _SURVEY_SCRIPT

    def process(self, output: list[str]) -> DockerHost:
        values = dict(line.split("=", 1) for line in output if "=" in line)
        installed = tuple(
            item.split(":", 1)[0]
            for item in values.get("engine_packages", "").split()
            if item.endswith(":installed")
        )
        return DockerHost(
            os_id=values.get("os_id", ""),
            os_version=values.get("os_version", ""),
            os_codename=values.get("os_codename", ""),
            arch=values.get("arch", ""),
            init=values.get("init", ""),
            engine_packages=installed,
            dockerd=values.get("dockerd", ""),
            engine_version=values.get("engine_version", ""),
            compose_version=values.get("compose_version", ""),
        )


class GpgKeyFingerprints(FactBase):
    """Fingerprints of the keys in an armoured or binary OpenPGP key file (empty if absent)."""

    def command(self, path: str) -> str:
        return (
            f"if [ -f {path} ] && command -v gpg >/dev/null; then "
            f"gpg --batch --show-keys --with-colons {path} 2>/dev/null | "
            "awk -F: '$1 == \"fpr\" {print $10}'; fi"
        )

    def process(self, output: list[str]) -> list[str]:
        return [line.strip() for line in output if line.strip()]
