"""The stack's images, built on each host from uploaded build contexts.

Tags carry a hash of the build context and build args (the base image's reference among them),
so an unchanged image is never rebuilt and a changed one always is. The base image's content is
followed too: each image records the ID of the base it was built on (label ``dfr.base-id``) and
is rebuilt, once, when the base under the same name is another image — a base pulled again
(``refresh_images``), or, with ``image_source = "upload"``, this machine's base changed: hosts
then receive it again (docker save / docker load) and follow this machine's images.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
from collections.abc import Generator
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

from pyinfra import host, logger
from pyinfra.api import deploy, operation
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import files, server

from tasks.addons_plan import AddonsPlan, addons_plan
from tasks.addons_wheels import addons_wheels, empty_wheels
from tasks.errors import SettingsError
from tasks.facts import AddonTrees, ImageBaseIds, ImageIds
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
    module_shas: tuple[tuple[str, str], ...] = ()  # each addon's own content hash
    addons_plan: AddonsPlan | None = None  # odoo: repositories' modules, Python requirements

    @property
    def module_shas_label(self) -> str:
        return ",".join(f"{name}={sha}" for name, sha in self.module_shas)


def odoo_addons(settings: Settings) -> AddonsPlan:
    """The own addons and the locked repositories' modules, fetched and checked."""
    return addons_plan(
        settings.addons_src,
        settings.addons_repositories,
        settings.odoo_modules,
        settings.addons_constraints,
        settings.base_addons_extra,
        # upload: the base image is on this machine, its own addons are known exactly
        settings.base_images["odoo"] if settings.image_source == "upload" else None,
    )


def planned_images(settings: Settings) -> dict[str, Image]:
    images = {}
    for service in SERVICES:
        context = FILES / service
        addons = settings.addons_src if service == "odoo" else None
        plan = odoo_addons(settings) if service == "odoo" else None
        digest = hashlib.sha256()
        digest.update(f"{settings.base_images[service]}\n{settings.version}\n".encode())
        _hash_tree(digest, context)
        addons_digest = hashlib.sha256()
        if addons:
            _hash_tree(addons_digest, addons)
            if plan and (plan.repositories or plan.requirements):
                addons_digest.update(plan.digest.encode())
            digest.update(addons_digest.digest())
        tag = f"dfr/{service}:{settings.version}-{digest.hexdigest()[:12]}"
        images[service] = Image(
            service,
            settings.base_images[service],
            context,
            addons,
            tag,
            addons_digest.hexdigest()[:12],
            plan.module_shas if plan else (),
            plan,
        )
    return images


def module_hashes(addons: Path) -> tuple[tuple[str, str], ...]:
    """The content hash of each module (a directory with a ``__manifest__.py``) in ``addons``,
    by name: a module is updated only when its own files changed."""
    hashes = []
    for module in sorted(p for p in addons.iterdir() if (p / "__manifest__.py").is_file()):
        digest = hashlib.sha256()
        _hash_tree(digest, module)
        hashes.append((module.name, digest.hexdigest()[:12]))
    return tuple(hashes)


def _hash_tree(digest: hashlib._Hash, root: Path) -> None:
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
        digest.update(b"x" if path.stat().st_mode & 0o111 else b"-")


def upload_base_images(settings: Settings) -> dict[str, str]:
    """Air-gapped hosts: send each base image this machine has and the host has not (missing,
    or another image under that name). Returns the base image IDs the host will have."""
    refs = tuple(settings.base_images.values())
    present = host.get_fact(ImageIds, refs=refs) or {}
    wanted = {ref: _local_image_id(ref) for ref in refs}
    for ref in refs:
        if present.get(ref) == wanted[ref]:
            continue
        archive = _saved_image(ref, wanted[ref])
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
            # The archive is cached by image ID: it may carry another name of the same image.
            commands=[
                f"docker load -q -i {remote}",
                f"docker tag {wanted[ref]} {shlex.quote(ref)}",
                f"rm -f {remote}",
            ],
        )
    return wanted


def _local_image_id(ref: str) -> str:
    found = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Id}}", ref], capture_output=True, text=True
    )
    if found.returncode != 0:
        raise SettingsError(
            f"base image {ref} is not on this machine: image_source = 'upload' sends images "
            f"from here, so 'docker pull {ref}' (or load it) first"
        )
    return found.stdout.strip()


def _saved_image(ref: str, image_id: str) -> Path:
    """``docker save`` of ``ref`` (``image_id``) on this machine, cached by image ID."""
    archive = CACHE / f"{image_id.removeprefix('sha256:')[:16]}.tar"
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


def build_images(
    settings: Settings,
    images: dict[str, Image],
    base_ids: dict[str, str],
    only: tuple[str, ...] = (),
    refresh: bool = False,
) -> list[OperationMeta]:
    """Upload each build context to the host and build it there, unless its tag exists built on
    the base the host has (``base_ids``: what it will have, by reference; absent: unknown yet).
    With ``refresh``, each base is pulled again first and what it changed is rebuilt."""
    build_root = f"{settings.stack_dir}/build"
    built = host.get_fact(ImageBaseIds, tags=tuple(i.tag for i in images.values())) or {}
    builds = []
    for image in images.values():
        if only and image.service not in only:
            continue
        context = f"{build_root}/{image.service}"
        files.sync(
            name=f"Build context of {image.service}",
            src=str(image.context),
            dest=context,
            delete=True,
            # addons/, repos/ and the requirements are synced on their own just below
            exclude=["__pycache__", "*.pyc", f"{context}/addons/*", f"{context}/repos/*",
                     f"{context}/wheels/*", f"{context}/{REQUIREMENTS}"],
        )  # fmt: skip
        if image.addons_plan:
            addons_context(settings, image.addons_plan, context)
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
        builds.append(
            build_image(
                name=f"Build image {image.tag}",
                image=image,
                context=context,
                version=settings.version,
                built_on=built.get(image.tag),
                base_id=base_ids.get(image.base),
                refresh=refresh,
            )
        )
    return builds


REQUIREMENTS = "requirements-addons.txt"


def addons_context(settings: Settings, plan: AddonsPlan, context: str) -> None:
    """Each repository's modules into ``repos/<name>/`` of the Odoo build context, sent as one
    archive, only when what it holds changed (a record per repository, outside the context),
    and the addons' pinned Python requirements (with their wheels, for image_source upload)."""
    trees = f"{settings.stack_dir}/build/addons-trees"
    files.directory(name="Addons repositories in the Odoo build context",
                    path=f"{context}/repos")  # fmt: skip
    files.directory(path=trees, mode="0700")
    files.put(
        name="Python requirements of the addons",
        src=StringIO(plan.requirements),
        dest=f"{context}/{REQUIREMENTS}",
        mode="0644",
    )
    wheels = (
        addons_wheels(plan.requirements, settings.wheels_python, settings.wheels_platform)
        if settings.image_source == "upload"
        else empty_wheels()
    )
    files.sync(
        name="Python wheels of the addons (image_source upload: no package index needed)",
        src=str(wheels),
        dest=f"{context}/wheels",
        delete=True,
    )
    have = host.get_fact(AddonTrees, directory=trees) or {}
    for content in plan.repositories:
        name = content.repository.name
        if have.get(name) == content.key:
            continue
        remote = f"{trees}/{name}.tar"
        files.put(name=f"Addons of {name} at {content.repository.commit[:12]}",
                  src=str(content.archive), dest=remote, mode="0600")  # fmt: skip
        target = shlex.quote(f"{context}/repos/{name}")
        server.shell(
            name=f"Unpack the addons of {name}",
            commands=[
                f"rm -rf {target} && mkdir -p {target} && tar -xf {shlex.quote(remote)} -C "
                f"{target} && rm -f {shlex.quote(remote)} && echo {content.key} > "
                f"{shlex.quote(f'{trees}/{name}')}"
            ],
        )
    wanted = {c.repository.name for c in plan.repositories}
    for name in sorted(set(have) - wanted):
        server.shell(
            name=f"Remove the addons of {name} (no longer a repository of the settings)",
            commands=[f"rm -rf {shlex.quote(f'{context}/repos/{name}')} "
                      f"{shlex.quote(f'{trees}/{name}')}"],
        )  # fmt: skip


@operation()
def build_image(
    image: Image,
    context: str,
    version: str,
    built_on: str | None,
    base_id: str | None,
    refresh: bool = False,
) -> Generator[str, None, None]:
    """``docker build`` of ``image`` unless its tag exists, built on ``base_id`` (the base's ID
    the host has; None when not known before the run: then an existing tag is kept)."""
    up_to_date = built_on is not None and (base_id is None or built_on == base_id)
    if up_to_date and not refresh:
        host.noop(f"{image.tag} exists, built on the current {image.base}")
        return
    base, tag = shlex.quote(image.base), shlex.quote(image.tag)
    steps = [f"docker pull -q {base} >/dev/null"] if refresh else []
    steps += [
        f"docker image inspect {base} >/dev/null 2>&1 || docker pull -q {base} >/dev/null",
        f"base_id=$(docker image inspect -f '{{{{.Id}}}}' {base})",
    ]
    if refresh:
        built_on_now = (
            f"docker image inspect -f '{{{{index .Config.Labels \"dfr.base-id\"}}}}' {tag}"
        )
        steps.append(
            f'if [ "$({built_on_now} 2>/dev/null)" = "$base_id" ]; '
            f"then echo {tag} is built on the current {base}; exit 0; fi"
        )
    build_arg = shlex.quote(f"{image.service.upper()}_BASE={image.base}")
    labels = {"org.opencontainers.image.version": version, "dfr.addons-sha": image.addons_sha}
    if image.module_shas:
        labels["dfr.module-shas"] = image.module_shas_label
    label_args = " ".join(f"--label {shlex.quote(f'{k}={v}')}" for k, v in labels.items())
    label_args += ' --label "dfr.base-id=$base_id"'
    steps.append(
        f"docker build -t {tag} --build-arg {build_arg} {label_args} {shlex.quote(context)}"
    )
    yield "set -e; " + "; ".join(steps)


def refresh_requested() -> bool:
    """``--data refresh_images=true``: pull the base images again (``make refresh_images``)."""
    refresh = host.data.get("refresh_images")
    if refresh not in (None, True, False):
        raise SettingsError(f"refresh_images {refresh!r}: give true or false")
    return refresh is True


@deploy("Images")
def images_on_host(
    settings: Settings, only: tuple[str, ...] = (), refresh: bool = False
) -> list[OperationMeta]:
    """Base images (uploaded when asked) and the stack's images built on the host; returns the
    build operations (a rebuilt image keeps its tag: its containers are recreated all the same)."""
    unknown = sorted(set(only) - set(SERVICES))
    if unknown:
        raise SettingsError(
            f"images {', '.join(unknown)} unknown: choose from {', '.join(SERVICES)}"
        )
    if settings.image_source == "upload":
        base_ids = upload_base_images(settings)
        refresh = False  # the bases are this machine's: hosts follow them on every run
    else:
        refs = tuple(settings.base_images.values())
        base_ids = {} if refresh else host.get_fact(ImageIds, refs=refs) or {}
    return build_images(settings, planned_images(settings), base_ids, only, refresh)
