"""SSH target hosts: containers that behave like small VMs (systemd, sshd, sudo, nested Docker).

Everything created here carries the ``dfr-test`` label and the run id, so a run cleans up after
itself and the next run removes what an interrupted one left behind.
"""

from __future__ import annotations

import os
import pprint
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.docker_cli import LABEL, DockerError, docker, owner_labels
from tests.harness.keys import new_key_pair
from tests.harness.waiting import wait_for

SSH_USER = "dfr"
# Flags that give systemd and a nested Docker engine what they need without --privileged
# (which fails on machines whose capability set lacks CAP_SYS_RESOURCE).
UNPRIVILEGED_FLAGS = [
    "--cgroupns=host",
    "-v",
    "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--cap-add",
    "ALL",
    "--cap-drop",
    "SYS_RESOURCE",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "apparmor=unconfined",
]
PRIVILEGED_FLAGS = ["--privileged", "--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw"]
_run_flags: list[str] | None = None


@dataclass
class TargetHost:
    name: str
    container: str
    address: str
    key_path: Path

    def exec(self, command: str, input: bytes | None = None, check: bool = True) -> str:
        """Run a shell command as root inside the host (harness use, not the system under test)."""
        return docker("exec", "-i", self.container, "sh", "-c", command, input=input, check=check)

    def load_image(self, image: str, *tags: str) -> None:
        """Load an image of this machine into the host's engine (there is no registry to pull
        from), under extra ``tags`` too: the controller's own tags stay as they are."""
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        load = subprocess.run(
            ["docker", "exec", "-i", self.container, "docker", "load", "-q"],
            stdin=save.stdout, capture_output=True, check=False,
        )  # fmt: skip
        if save.wait() != 0 or load.returncode != 0:
            raise DockerError(f"loading {image} into {self.name} failed: {load.stderr!r}")
        for tag in tags:
            self.exec(f"docker tag {image} {tag}")

    @property
    def testinfra_spec(self) -> str:
        return f"paramiko://{SSH_USER}@{self.address}"

    def inventory_entry(self) -> tuple[str, dict]:
        return (
            self.name,
            {
                "ssh_hostname": self.address,
                "ssh_user": SSH_USER,
                "ssh_key": str(self.key_path),
                "ssh_known_hosts_file": str(self.key_path.parent / "known_hosts"),
                "_sudo": True,
            },
        )


@dataclass
class HostPool:
    """The hosts of one test run, on their own network, removed by ``close``."""

    workdir: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    hosts: list[TargetHost] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.key_path, self.public_key = new_key_pair(self.workdir)
        self.network = f"dfr-test-{self.run_id}"
        docker(
            "network",
            "create",
            *self._labels,
            self.network,
        )

    @property
    def _labels(self) -> list[str]:
        return owner_labels(self.run_id)

    def start(self, image: str, count: int = 1, prefix: str = "host") -> list[TargetHost]:
        started = [
            self._start_one(image, f"{prefix}{len(self.hosts) + i + 1}") for i in range(count)
        ]
        for host in started:
            self._wait_for_ssh(host)
        self.hosts.extend(started)
        return started

    def _start_one(self, image: str, name: str) -> TargetHost:
        container = f"dfr-test-{self.run_id}-{name}"
        volume = f"{container}-docker"
        docker(
            "volume",
            "create",
            *self._labels,
            volume,
        )
        common = [
            "run",
            "-d",
            "--name",
            container,
            "--hostname",
            name,
            *self._labels,
            "--network",
            self.network,
            "--tmpfs",
            "/run",
            "--tmpfs",
            "/run/lock",
            "-v",
            f"{volume}:/var/lib/docker",
        ]
        docker(*common, *_flags_that_work(common, image), image)
        host = TargetHost(name, container, "", self.key_path)
        host.exec(
            f"cat > /home/{SSH_USER}/.ssh/authorized_keys && "
            f"chown {SSH_USER}: /home/{SSH_USER}/.ssh/authorized_keys && "
            f"chmod 0600 /home/{SSH_USER}/.ssh/authorized_keys",
            input=self.public_key.encode(),
        )
        host.address = docker(
            "inspect",
            "-f",
            f'{{{{(index .NetworkSettings.Networks "{self.network}").IPAddress}}}}',
            container,
        )
        # Known before the first connection, as an operator records a new host's keys: the
        # staging and prod groups check host keys strictly.
        keys = host.exec("cat /etc/ssh/ssh_host_*_key.pub").splitlines()
        with open(self.key_path.parent / "known_hosts", "a") as known_hosts:
            known_hosts.writelines(f"{host.address} {' '.join(k.split()[:2])}\n" for k in keys)
        return host

    @staticmethod
    def _wait_for_ssh(host: TargetHost, timeout: float = 60) -> None:
        def sends_banner() -> bool:
            try:
                with socket.create_connection((host.address, 22), timeout=2) as sock:
                    return sock.recv(4).startswith(b"SSH-")
            except OSError:
                return False

        wait_for(f"an SSH banner from {host.name} ({host.address})", sends_banner, timeout)

    def inventory(
        self, hosts: list[TargetHost] | None = None, extra: dict | None = None, name: str = ""
    ) -> Path:
        """Write a pyinfra inventory for ``hosts`` (default all) with ``extra`` data on each.

        ``name`` is the file's name, which pyinfra makes a group: ``prod`` picks up the
        project's group_data/prod.py like ``inventories/prod.py`` does.
        """
        entries = []
        for host in hosts or self.hosts:
            host_name, data = host.inventory_entry()
            entries.append((host_name, {**data, **(extra or {})}))
        directory = self.workdir / f"inventory-{uuid.uuid4().hex[:6]}"
        directory.mkdir()
        path = directory / f"{name or 'targets'}.py"
        path.write_text(f"targets = {pprint.pformat(entries)}\n")
        return path

    def remove(self, host: TargetHost) -> None:
        _remove_container(host.container)
        docker("volume", "rm", "-f", f"{host.container}-docker", check=False)
        self.hosts.remove(host)

    def close(self) -> None:
        for host in list(self.hosts):
            self.remove(host)
        docker("network", "rm", self.network, check=False)


def _flags_that_work(common: list[str], image: str) -> list[str]:
    """Try --privileged first (the usual recipe), fall back to explicit capabilities."""
    global _run_flags
    if _run_flags is None:
        probe = f"dfr-test-probe-{uuid.uuid4().hex[:6]}"
        try:
            docker("run", "-d", "--name", probe, *owner_labels("probe"), *PRIVILEGED_FLAGS, image)
            time.sleep(1)
            running = docker("inspect", "-f", "{{.State.Running}}", probe) == "true"
            _run_flags = PRIVILEGED_FLAGS if running else UNPRIVILEGED_FLAGS
        except DockerError:
            _run_flags = UNPRIVILEGED_FLAGS
        finally:
            _remove_container(probe)
    return _run_flags


def _remove_container(container: str) -> None:
    """Stop the nested engine first: otherwise its cgroup directories outlive the container.
    Paused nested containers are thawed first: frozen, their processes survive every kill."""
    docker(
        "exec",
        container,
        "sh",
        "-c",
        "docker ps -q -f status=paused 2>/dev/null | xargs -r docker unpause >/dev/null 2>&1; "
        "systemctl stop docker.socket docker containerd 2>/dev/null; true",
        check=False,
        timeout=120,
    )
    docker("rm", "-f", "-v", container, check=False, timeout=120)


def remove_leftovers(keep: str | None = None) -> None:
    """Remove what earlier, interrupted runs left behind (found by label).

    Objects of a run whose process is still alive (another test session or a benchmark on the
    same engine) stay, and so do those of run ``keep``.
    """

    def stale(*ls: str) -> list[str]:
        fmt = f"{{{{.{'ID' if ls[0] != 'volume' else 'Name'}}}}} "
        fmt += f'{{{{.Label "{LABEL}.run"}}}} {{{{.Label "{LABEL}.pid"}}}}'
        found = []
        for line in docker(*ls, "--filter", f"label={LABEL}", "--format", fmt).splitlines():
            object_id, run, pid = ([*line.split(" "), "", ""])[:3]
            if (keep and run == keep) or (pid.isdigit() and _alive(int(pid))):
                continue
            found.append(object_id)
        return found

    for container in stale("ps", "-a"):
        _remove_container(container)
    for volume in stale("volume", "ls"):
        docker("volume", "rm", "-f", volume, check=False)
    for network in stale("network", "ls"):
        docker("network", "rm", network, check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def leftovers(run_id: str) -> dict[str, list[str]]:
    """Containers, volumes and networks of run ``run_id`` that still exist."""
    label = f"label={LABEL}.run={run_id}"
    return {
        "containers": docker("ps", "-aq", "--filter", label).split(),
        "volumes": docker("volume", "ls", "-q", "--filter", label).split(),
        "networks": docker("network", "ls", "-q", "--filter", label).split(),
    }


def container_cgroup_dirs() -> set[str]:
    """Per-container cgroup directories on this machine (outer and, with host cgroupns, nested)."""
    root = Path("/sys/fs/cgroup")
    return {
        str(p) for pattern in ("*/docker/*", "docker/*") for p in root.glob(pattern) if p.is_dir()
    }
