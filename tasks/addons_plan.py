"""What goes into the Odoo image's addons: the project's own addons and each locked
repository's modules, checked on the controller before anything reaches a host.

Each check stops the run with one line naming the addon: a manifest that does not parse (read
with ``ast.literal_eval``, as Odoo does), a version not for Odoo 18, a module two sources
provide (unless one of them names it in ``overrides``), a module of ``odoo_modules`` or a
manifest dependency nothing provides (Odoo's own modules: tasks/odoo18/addons.txt), a Python
requirement without a pin in the constraints file or in conflict with it.
"""

from __future__ import annotations

import ast
import hashlib
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from pyinfra import logger

from tasks import addons_git
from tasks.addons_repos import Repository
from tasks.errors import SettingsError

ODOO18 = Path(__file__).resolve().parent / "odoo18"
_VERSION = re.compile(r"18\.0\.\d+\.\d+\.\d+")
OWN = "files/addons"  # how errors name the project's own addons


@dataclass(frozen=True)
class Module:
    name: str
    source: str  # OWN or a repository's name
    manifest: dict
    sha: str  # content hash
    requirements: str  # its requirements.txt, or ""


@dataclass(frozen=True)
class RepositoryContent:
    repository: Repository
    modules: tuple[str, ...]
    archive: Path
    key: str  # what the archive holds (commit, subdir, modules)


@dataclass(frozen=True)
class AddonsPlan:
    repositories: tuple[RepositoryContent, ...]
    module_shas: tuple[tuple[str, str], ...]  # every module the image has, by name
    requirements: str  # requirements-addons.txt of the build context: name==version lines
    fetched: tuple[str, ...]  # repositories fetched by this run (the others: cache hits)

    @property
    def digest(self) -> str:
        parts = [f"{c.repository.name}={c.key}" for c in self.repositories]
        return hashlib.sha256("\n".join([*parts, self.requirements]).encode()).hexdigest()


_plans: dict[tuple, AddonsPlan] = {}


def addons_plan(
    own: Path,
    repositories: tuple[Repository, ...],
    odoo_modules: tuple[str, ...],
    constraints: Path,
    base_addons_extra: tuple[str, ...] = (),
    base_image: str | None = None,
) -> AddonsPlan:
    """Fetched (when the cache lacks a locked commit), read and checked once per run. Odoo's
    own modules are ``base_image``'s when given (an image on this machine), else the list of
    Odoo 18 Community's."""
    key = (own, repositories, odoo_modules, constraints, base_addons_extra, base_image)
    if key not in _plans:
        core = (base_image and base_image_addons(base_image)) or odoo_core_addons()
        _plans[key] = _plan(
            own, repositories, odoo_modules, constraints, core | set(base_addons_extra)
        )
    return _plans[key]


def _plan(
    own: Path,
    repositories: tuple[Repository, ...],
    odoo_modules: tuple[str, ...],
    constraints: Path,
    core: set[str],
) -> AddonsPlan:
    fetched = []
    sources: dict[str, dict[str, Module]] = {OWN: own_modules(own)}
    for repo in repositories:
        if addons_git.fetch(repo.name, repo.remote, repo.ref, repo.commit):
            fetched.append(repo.name)
            logger.info(f"addons: fetched {repo.name} at {repo.commit[:12]}")
        sources[repo.name] = repository_modules(repo)
    taken = resolve_duplicates(sources, {r.name: r for r in repositories})
    check_provided(taken, odoo_modules, core)
    requirements = python_requirements(taken, constraints)
    contents = []
    for repo in repositories:
        names = tuple(sorted(m for m, mod in taken.items() if mod.source == repo.name))
        tar, archive_key = addons_git.archive(repo.remote, repo.commit, repo.subdir, names)
        contents.append(RepositoryContent(repo, names, tar, archive_key))
    shas = tuple(sorted((name, module.sha) for name, module in taken.items()))
    return AddonsPlan(tuple(contents), shas, requirements, tuple(fetched))


def parse_manifest(text: str, module: str, source: str) -> dict:
    """The manifest as Odoo reads it, and its version checked."""
    try:
        manifest = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SettingsError(
            f"addon {module} ({source}): __manifest__.py does not parse ({detail}): fix it, or "
            "leave the module out"
        ) from None
    if not isinstance(manifest, dict):
        raise SettingsError(f"addon {module} ({source}): __manifest__.py is not a dict: fix it")
    depends = manifest.get("depends", [])
    external = manifest.get("external_dependencies", {})
    python = external.get("python", []) if isinstance(external, dict) else None
    for key, value in (("depends", depends), ("external_dependencies['python']", python)):
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise SettingsError(
                f"addon {module} ({source}): its manifest's {key} is not a list of names: fix it"
            )
    if manifest.get("installable", True):
        version = manifest.get("version")
        if not isinstance(version, str) or not _VERSION.fullmatch(version):
            raise SettingsError(
                f"addon {module} ({source}): version {version!r} is not for Odoo 18: a "
                "module for 18 has a version 18.0.x.y.z (take its 18.0 branch)"
            )
    return manifest


def own_modules(addons: Path) -> dict[str, Module]:
    from tasks.images import module_hashes  # late: tasks.images imports this module

    shas = dict(module_hashes(addons))
    modules = {}
    for name, sha in shas.items():
        manifest = parse_manifest((addons / name / "__manifest__.py").read_text(), name, OWN)
        requirements = addons / name / "requirements.txt"
        text = requirements.read_text() if requirements.is_file() else ""
        if manifest.get("installable", True):
            modules[name] = Module(name, OWN, manifest, sha, text)
    return modules


def repository_modules(repo: Repository) -> dict[str, Module]:
    """The installable modules ``repo`` gives at its locked commit (its ``addons`` only)."""
    trees = addons_git.module_trees(repo.name, repo.remote, repo.commit, repo.subdir)
    missing = [m for m in repo.addons if m not in trees]
    if missing:
        raise SettingsError(
            f"addon {missing[0]} is not in repository {repo.name} at {repo.commit[:12]}"
            f"{' (' + repo.subdir + ')' if repo.subdir else ''}: check its addons list"
        )
    prefix = f"{repo.subdir}/" if repo.subdir else ""
    modules = {}
    for name in repo.addons or tuple(trees):
        text = addons_git.read_blob(repo.remote, repo.commit, f"{prefix}{name}/__manifest__.py")
        manifest = parse_manifest((text or b"").decode(errors="replace"), name, repo.name)
        requirements = addons_git.read_blob(
            repo.remote, repo.commit, f"{prefix}{name}/requirements.txt"
        )
        if manifest.get("installable", True):
            modules[name] = Module(
                name, repo.name, manifest, trees[name][:12], (requirements or b"").decode()
            )
    return modules


def resolve_duplicates(
    sources: dict[str, dict[str, Module]], repositories: dict[str, Repository]
) -> dict[str, Module]:
    """One module per name: a name two sources give is an error unless exactly one of them
    lists it in ``overrides`` (then the others' copies are left out of the image)."""
    by_name: dict[str, list[Module]] = {}
    for modules in sources.values():
        for module in modules.values():
            by_name.setdefault(module.name, []).append(module)
    taken = {}
    for name, copies in by_name.items():
        if len(copies) > 1:
            winners = [
                m for m in copies if name in getattr(repositories.get(m.source), "overrides", ())
            ]
            if len(winners) != 1:
                where = " and ".join(m.source for m in copies)
                raise SettingsError(
                    f"addon {name} is in {where}: take it from one (an addons list for the "
                    f'others) or say which wins with "overrides": ["{name}"] on one repository'
                )
            copies = winners
        taken[name] = copies[0]
    return taken


CORE_ADDONS_IN_IMAGE = "/usr/lib/python3/dist-packages/odoo/addons"  # where the .deb puts them


def base_image_addons(image: str) -> set[str] | None:
    """The modules of Odoo's own addons directory in ``image`` on this machine (cached by
    image ID); None when the image is not here or has no such directory."""
    found = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", image],
                           capture_output=True, text=True, check=False)  # fmt: skip
    if found.returncode != 0:
        return None
    cached = addons_git.cache_root().parent / "base-addons" / found.stdout.strip()[-16:]
    if not cached.exists():
        listed = subprocess.run(
            ["docker", "run", "--rm", "--network", "none", "--entrypoint", "ls", image,
             CORE_ADDONS_IN_IMAGE],
            capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip
        if listed.returncode != 0 or not listed.stdout.split():
            return None
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(listed.stdout)
    return set(cached.read_text().split())


def odoo_core_addons() -> set[str]:
    lines = (ODOO18 / "addons.txt").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def check_provided(taken: dict[str, Module], odoo_modules: tuple[str, ...], core: set[str]) -> None:
    for name in odoo_modules:
        if name not in taken and name not in core:
            raise SettingsError(
                f"addon {name} of odoo_modules is in no addons repository, nor files/addons, "
                "nor Odoo: add the repository that has it, or fix the name"
            )
    for name, module in sorted(taken.items()):
        depends = module.manifest.get("depends") or []
        for dependency in depends:
            if dependency not in taken and dependency not in core:
                raise SettingsError(
                    f"addon {name} ({module.source}) depends on {dependency}, which no "
                    "addons repository, files/addons nor Odoo provides: add the repository "
                    "that has it"
                )


def _base_python() -> set[str]:
    lines = (ODOO18 / "python.txt").read_text().splitlines()
    return {canonicalize_name(x.strip()) for x in lines if x.strip() and not x.startswith("#")}


def read_constraints(path: Path) -> dict[str, str]:
    """``name==version`` pins by canonical name; an absent file pins nothing."""
    if not path.exists():
        return {}
    pins = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            requirement = None
        specs = list(requirement.specifier) if requirement else []
        if requirement is None or len(specs) != 1 or specs[0].operator != "==":
            raise SettingsError(
                f"{path.name} line {number} {line!r} is not a pin: write name==version"
            )
        pins[canonicalize_name(requirement.name)] = specs[0].version
    return pins


def python_requirements(taken: dict[str, Module], constraints: Path) -> str:
    """The addons' Python requirements (external_dependencies['python'] and requirements.txt),
    de-duplicated and pinned by ``constraints``; requirements the base image meets need none."""
    pins = read_constraints(constraints)
    base = _base_python()
    needed: dict[str, list[tuple[Requirement, str]]] = {}
    for name, module in sorted(taken.items()):
        external = (module.manifest.get("external_dependencies") or {}).get("python") or []
        lines = list(external) + module.requirements.splitlines()
        for raw in lines:
            line = str(raw).split("#", 1)[0].strip()
            if not line:
                continue
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                raise SettingsError(
                    f"addon {name} ({module.source}) requires {line!r}, which is not a Python "
                    "requirement: fix its requirements.txt or manifest"
                ) from None
            needed.setdefault(canonicalize_name(requirement.name), []).append((requirement, name))
    lines = []
    for package, wanted in sorted(needed.items()):
        pin = pins.get(package)
        if pin is None:
            if package in base and not any(r.specifier for r, _ in wanted):
                continue  # the image's own
            raise SettingsError(
                f"addon {wanted[0][1]} needs Python package {package}, which {constraints.name} "
                f"does not pin: add {package}==<version> to it"
            )
        for requirement, module in wanted:
            if not requirement.specifier.contains(pin, prereleases=True):
                raise SettingsError(
                    f"addon {module} needs {requirement} but {constraints.name} pins "
                    f"{package}=={pin}: a conflict; change the pin or the addon"
                )
        lines.append(f"{package}=={pin}")
    return "".join(f"{line}\n" for line in lines)
