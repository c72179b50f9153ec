"""Facts dfr-deploy reads from target hosts."""

from __future__ import annotations

import shlex
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


def running_postgres(project: str) -> str:
    """A shell command printing the ID of the stack's running PostgreSQL container (or nothing)."""
    return (
        f"docker ps -q --filter label=com.docker.compose.project={project} "
        "--filter label=com.docker.compose.service=postgres --filter status=running"
    )


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


class HostShape(FactBase):
    """CPUs and RAM (MiB) of the host, for Odoo's worker sizing."""

    def command(self) -> str:
        return "nproc; awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo"

    def process(self, output: list[str]) -> dict[str, int]:
        cpus, ram_mb = (int(line) for line in output[:2])
        return {"cpus": cpus, "ram_mb": ram_mb}


class ListeningPorts(FactBase):
    """TCP ports something listens on (any address)."""

    def command(self) -> str:
        return "ss -Hltn 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -un"

    def process(self, output: list[str]) -> set[int]:
        return {int(line) for line in output if line.strip().isdigit()}


class ImageIds(FactBase):
    """Image ID of each given reference present in the host's engine (absent ones left out)."""

    def command(self, refs: tuple[str, ...]) -> str:
        quoted = " ".join(f"'{ref}'" for ref in refs)
        return (
            f"for ref in {quoted}; do "
            'docker image inspect -f "$ref {{.Id}}" "$ref" 2>/dev/null; done; true'
        )

    def process(self, output: list[str]) -> dict[str, str]:
        return dict(line.split(" ", 1) for line in output if " " in line)


class ComposeProject(FactBase):
    """Wanted config hash per service (from compose.yaml) and the running containers' state."""

    def command(self, directory: str, project: str) -> str:
        fmt = (
            '{{.Label "com.docker.compose.service"}} {{.Label "com.docker.compose.config-hash"}} '
            "{{.ID}} {{.State}} {{.Status}}"
        )
        return (
            f"cd {directory} 2>/dev/null && [ -f compose.yaml ] && command -v docker >/dev/null "
            "|| exit 0; "
            f"docker compose -p {project} config --hash '*' 2>/dev/null | sed 's/^/want /'; "
            f"docker ps -a --filter label=com.docker.compose.project={project} "
            "--filter label=com.docker.compose.oneoff=False "  # not `compose run` containers
            f"--format '{fmt}' | sed 's/^/have /'"
        )

    def process(self, output: list[str]) -> dict[str, dict[str, dict[str, str]]]:
        want: dict[str, dict[str, str]] = {}
        have: dict[str, dict[str, str]] = {}
        for line in output:
            kind, _, rest = line.partition(" ")
            if kind == "want":
                service, config_hash = rest.split()
                want[service] = {"hash": config_hash}
            elif kind == "have":
                service, config_hash, cid, state, status = [*rest.split(" ", 4), ""][:5]
                have[service] = {"hash": config_hash, "id": cid, "state": state, "status": status}
        return {"want": want, "have": have}


class ContainerLabel(FactBase):
    """One label of a container (empty when the container or the label is absent)."""

    def command(self, container: str, label: str) -> str:
        return (
            f"docker inspect -f '{{{{index .Config.Labels \"{label}\"}}}}' {container} "
            "2>/dev/null || true"
        )

    def process(self, output: list[str]) -> str:
        return "\n".join(output).strip()


class FreeBytes(FactBase):
    """Bytes available to root on the filesystem holding ``path`` (or its nearest parent)."""

    def command(self, path: str) -> str:
        return (
            f'p={path}; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; '
            "df -PB1 \"$p\" | awk 'NR == 2 {print $4}'"
        )

    def process(self, output: list[str]) -> int:
        return int(output[0])


class BackupSizeEstimate(FactBase):
    """Bytes the next backup will likely have: the newest backup ``*.suffix`` in ``directory``,
    else the filestore's bytes plus a seventh of the database's (what pg_dump's zstd leaves of
    Odoo data, docs/benchmarks.md). Only for progress lines; None when nothing is known."""

    def command(self, directory: str, suffix: str, project: str, db_name: str) -> str:
        return (
            f"newest=$(ls -1d {directory}/*.{suffix} 2>/dev/null | sort | tail -n1); "
            'if [ -n "$newest" ]; then du -sb "$newest" | cut -f1; exit 0; fi; '
            f"volume=$(docker volume inspect -f '{{{{.Mountpoint}}}}' {project}_odoo-data); "
            f'files=$(du -sb "$volume/filestore/{db_name}" 2>/dev/null | cut -f1); '
            f"pg=$(docker ps -q --filter label=com.docker.compose.project={project} "
            "--filter label=com.docker.compose.service=postgres); "
            f'db=$(docker exec -u postgres "$pg" psql -X -tAc '
            f"\"SELECT pg_database_size('{db_name}')\" 2>/dev/null); "
            "echo $(( ${files:-0} + ${db:-0} / 7 ))"
        )

    def process(self, output: list[str]) -> int | None:
        value = int(output[0]) if output and output[0].isdigit() else 0
        return value or None


class PathStates(FactBase):
    """``{path: "MODE SHA256"}`` for each of ``paths`` that exists (a directory's SHA256 is
    "-"), in one round trip instead of two facts per path."""

    def command(self, paths: tuple[str, ...]) -> str:
        quoted = " ".join(shlex.quote(path) for path in paths)
        return (
            f"for p in {quoted}; do "
            'if [ -d "$p" ]; then echo "$(stat -c %a "$p") - $p"; '
            'elif [ -f "$p" ]; then '
            'echo "$(stat -c %a "$p") $(sha256sum <"$p" | cut -d" " -f1) $p"; '
            "fi; done"
        )

    def process(self, output: list[str]) -> dict[str, str]:
        states = {}
        for line in output:
            mode, digest, path = line.split(" ", 2)
            states[path] = f"{int(mode, 8):o} {digest}"
        return states


class ImageBaseIds(FactBase):
    """For each given tag present on the host, the ID of the base image it was built on (its
    ``dfr.base-id`` label; empty for an image built before dfr-deploy recorded it)."""

    def command(self, tags: tuple[str, ...]) -> str:
        quoted = " ".join(shlex.quote(tag) for tag in tags)
        label = '{{index .Config.Labels "dfr.base-id"}}'
        return (
            f"for tag in {quoted}; do "
            f'docker image inspect -f "$tag "\'{label}\' "$tag" 2>/dev/null; done; true'
        )

    def process(self, output: list[str]) -> dict[str, str]:
        found = (line.split(" ", 1) for line in output if line.strip())
        ids = {pair[0]: (pair[1].strip() if len(pair) > 1 else "") for pair in found}
        return {tag: ("" if base == "<no value>" else base) for tag, base in ids.items()}


@dataclass(frozen=True)
class OdooSecretsOnHost:
    """What the controller may know of a host's odoo_secrets.conf: the salt of its master
    password's hash and a sha256 of the whole file."""

    salt: str
    sha256: str


class OdooSecretsFile(FactBase):
    """The salt of ``admin_passwd``'s hash in the host's odoo_secrets.conf and the file's
    sha256, never the hash itself: with the file's db_password in it, the digest is of no use
    to a password guesser (pyinfra's own check of the file reads a digest of it too). None when
    the file is missing."""

    def command(self, path: str) -> str:
        return (
            f'f={shlex.quote(path)}; [ -f "$f" ] || exit 0; '
            "echo \"salt $(sed -n 's/^admin_passwd = [$]pbkdf2-sha512[$][0-9]*[$]"
            '\\([./A-Za-z0-9]*\\)[$].*/\\1/p\' "$f" | head -n1)"; '
            'echo "sha256 $(sha256sum <"$f" | cut -d\' \' -f1)"'
        )

    def process(self, output: list[str]) -> OdooSecretsOnHost | None:
        values = {key: value for key, _, value in (line.partition(" ") for line in output)}
        if "sha256" not in values:
            return None
        return OdooSecretsOnHost(salt=values.get("salt", "").strip(), sha256=values["sha256"])


class AddonTrees(FactBase):
    """What each addons repository unpacked in the Odoo build context holds (the key of its
    archive), by repository name, from the records in ``directory``."""

    def command(self, directory: str) -> str:
        quoted = shlex.quote(directory)
        return (
            f'for f in {quoted}/*; do [ -f "$f" ] && case "$f" in *.tar) ;; '
            f'*) printf "%s %s\\n" "${{f##*/}}" "$(cat "$f")" ;; esac; done; true'
        )

    def process(self, output: list[str]) -> dict[str, str]:
        pairs = (line.split(" ", 1) for line in output if " " in line)
        return {name: key.strip() for name, key in pairs}


class FileText(FactBase):
    """A file's text, or None when it is missing."""

    def command(self, path: str) -> str:
        return f"if [ -f {shlex.quote(path)} ]; then echo present; cat {shlex.quote(path)}; fi"

    def process(self, output: list[str]) -> str | None:
        return "\n".join(output[1:]) if output and output[0] == "present" else None
