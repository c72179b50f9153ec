"""The stack's images, built on each host from uploaded build contexts.

Tags carry a hash of the build context and build args, so an unchanged image is never rebuilt
and a changed one always is. Base images come from the registry or, with
``image_source = "upload"``, from this machine (docker save / docker load, only when missing).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.operations import docker, files, server

from tasks.errors import SettingsError
from tasks.facts import ImageIds
from tasks.settings import Settings

FILES = Path(__file__).resolve().parent.parent / "files"
SERVICES = ("postgres", "odoo", "nginx")
CACHE = Path.home() / ".cache" / "dfr-deploy" / "images"


@dataclass(frozen=True)
class Image:
    service: str
    base: str
    context: Path
    addons: Path | None
    tag: str
    addons_sha: str


def planned_images(settings: Settings) -> dict[str, Image]:
    images = {}
    for service in SERVICES:
        context = FILES / service
        addons = settings.addons_src if service == "odoo" else None
        digest = hashlib.sha256()
        digest.update(f"{settings.base_images[service]}\n{settings.version}\n".encode())
        _hash_tree(digest, context)
        addons_digest = hashlib.sha256()
        if addons:
            _hash_tree(addons_digest, addons)
            digest.update(addons_digest.digest())
        tag = f"dfr/{service}:{settings.version}-{digest.hexdigest()[:12]}"
        images[service] = Image(
            service,
            settings.base_images[service],
            context,
            addons,
            tag,
            addons_digest.hexdigest()[:12],
        )
    return images


def _hash_tree(digest: hashlib._Hash, root: Path) -> None:
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
        digest.update(b"x" if path.stat().st_mode & 0o111 else b"-")


def upload_base_images(settings: Settings) -> None:
    """Air-gapped hosts: send each missing base image from this machine's engine."""
    refs = tuple(settings.base_images.values())
    present = host.get_fact(ImageIds, refs=refs) or {}
    for ref in refs:
        if ref in present:
            continue
        archive = _saved_image(ref)
        remote = f"/var/lib/dfr/images/{archive.name}"
        files.directory(
            name="Directory for uploaded images", path="/var/lib/dfr/images", mode="0700"
        )
        files.put(
            name=f"Upload base image {ref}",
            src=str(archive),
            dest=remote,
            add_deploy_dir=False,
            create_remote_dir=False,
        )
        server.shell(
            name=f"Load base image {ref}",
            commands=[f"docker load -q -i {remote}", f"rm -f {remote}"],
        )


def _saved_image(ref: str) -> Path:
    """``docker save`` of ``ref`` on this machine, cached by image ID."""
    found = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Id}}", ref], capture_output=True, text=True
    )
    if found.returncode != 0:
        raise SettingsError(
            f"base image {ref} is not on this machine: image_source = 'upload' sends images "
            f"from here, so 'docker pull {ref}' (or load it) first"
        )
    image_id = found.stdout.strip().removeprefix("sha256:")[:16]
    archive = CACHE / f"{image_id}.tar"
    if not archive.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        logger.info(f"saving {ref} to {archive} for upload")
        # Per process: two runs saving the same image at once each rename a whole archive.
        partial = archive.with_name(f"{archive.name}.{os.getpid()}.partial")
        try:
            subprocess.run(["docker", "save", "-o", str(partial), ref], check=True)
            partial.rename(archive)
        finally:
            partial.unlink(missing_ok=True)
    return archive


def build_images(settings: Settings, images: dict[str, Image], only: tuple[str, ...] = ()) -> None:
    """Upload each build context to the host and build it there, unless its tag exists."""
    build_root = f"{settings.stack_dir}/build"
    for image in images.values():
        if only and image.service not in only:
            continue
        context = f"{build_root}/{image.service}"
        files.sync(
            name=f"Build context of {image.service}",
            src=str(image.context),
            dest=context,
            delete=True,
            # addons/ is synced on its own just below: not deleted here
            exclude=["__pycache__", "*.pyc", f"{context}/addons/*"],
        )
        if image.addons:
            files.sync(
                name="DFR addons into the Odoo build context",
                src=str(image.addons),
                dest=f"{context}/addons",
                delete=True,
                exclude=["__pycache__", "*.pyc"],
            )
        elif image.service == "odoo":
            files.directory(path=f"{context}/addons")
        docker.build(
            name=f"Build image {image.tag}",
            path=context,
            tags=[image.tag],
            build_args={f"{image.service.upper()}_BASE": image.base},
            labels={
                "org.opencontainers.image.version": settings.version,
                "dfr.addons-sha": image.addons_sha,
            },
        )


@deploy("Images")
def images_on_host(settings: Settings, only: tuple[str, ...] = ()) -> None:
    """Base images (uploaded when asked) and the stack's images built on the host."""
    unknown = sorted(set(only) - set(SERVICES))
    if unknown:
        raise SettingsError(
            f"images {', '.join(unknown)} unknown: choose from {', '.join(SERVICES)}"
        )
    if settings.image_source == "upload":
        upload_base_images(settings)
    build_images(settings, planned_images(settings), only)
