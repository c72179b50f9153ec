"""The one validated settings object every template and task of the stack reads.

Built from pyinfra host data (group_data + inventory + --data) and the environment's secrets,
validated before any operation is queued: bad input stops the run with one line.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.addons_repos import Repository, lock_path, locked, repositories
from tasks.config_values import one_line
from tasks.docker_settings import DockerSettings, docker_settings
from tasks.errors import SettingsError
from tasks.image_reference import is_image_reference
from tasks.odoo_options import WorkerSizing, check_odoo_options, size_workers
from tasks.secrets import Secrets, load_secrets

ENVIRONMENTS = ("dev", "staging", "prod")
IMAGE_SOURCES = ("registry", "upload")
# Checked with fullmatch: "$" would let a trailing newline through into the rendered files.
_DB_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")  # what Odoo's database manager accepts
_PG_SETTING = re.compile(r"[a-z_][a-z0-9_.]*")
_DOMAIN = re.compile(r"localhost|([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}|[0-9.]+")
# An Odoo module's technical name (a directory and Python package name): what Odoo's own
# modules use, lowercase letters, digits and _, starting with a letter or a digit.
_MODULE = re.compile(r"[a-z0-9][a-z0-9_]*")
REPOSITORIES_IN_IMAGE = "/opt/dfr-addons"  # files/odoo/Dockerfile copies repos/ there
OWN_ADDONS_IN_IMAGE = "/opt/dfr-own-addons"  # ... and addons/ (the project's own) there


@dataclass(frozen=True)
class Tls:
    certificate: Path | None  # None: self-signed, generated once on the host
    key: Path | None

    @property
    def self_signed(self) -> bool:
        return self.certificate is None


@dataclass(frozen=True)
class Settings:
    env: str
    version: str
    domain: str
    stack_dir: str
    project: str
    db_name: str
    db_user: str
    workers: int
    max_cron_threads: int
    odoo_limits: dict[str, int]
    odoo_options: dict[str, Any]
    postgres_options: dict[str, str | int | float | bool]
    odoo_modules: tuple[str, ...]
    odoo_demo: bool
    addons_src: Path
    tls: Tls
    http_port: int
    https_port: int
    publish_address: str  # where 80/443 are published on the host; "" = every interface
    image_source: str
    base_images: dict[str, str]
    docker: DockerSettings
    secrets: Secrets = field(repr=False)
    # Addons repositories with their locked commits, in addons_path order (after addons_src).
    addons_repositories: tuple[Repository, ...] = ()
    addons_constraints: Path = Path("addons-constraints.txt")
    base_addons_extra: tuple[str, ...] = ()
    wheels_python: str = "3.12"  # the base image's Python and platform, for wheels got here
    wheels_platform: str = "manylinux_2_39_x86_64"

    @property
    def is_dev(self) -> bool:
        return self.env == "dev"

    @property
    def is_prod(self) -> bool:
        return self.env == "prod"

    @property
    def addons_path(self) -> str:
        """odoo.conf's addons_path: the own addons first, then each repository's directory."""
        repos = [f"{REPOSITORIES_IN_IMAGE}/{r.name}" for r in self.addons_repositories]
        return ",".join([OWN_ADDONS_IN_IMAGE, *repos])

    @property
    def url(self) -> str:
        port = "" if self.https_port == 443 else f":{self.https_port}"
        return f"https://{self.domain}{port}/"


def load_settings(data: Any, host_facts: dict[str, int] | None = None) -> Settings:
    """Validate host data; ``host_facts`` gives ``cpus`` and ``ram_mb`` for worker sizing."""
    env = data.get("dfr_env")
    if env not in ENVIRONMENTS:
        raise SettingsError(
            f"unknown environment {env!r}: run an inventory named dev.py, staging.py or prod.py "
            f"(or set dfr_env to one of {', '.join(ENVIRONMENTS)})"
        )
    project_root = Path.cwd()
    domain = str(data.get("dfr_domain") or "")
    if not _DOMAIN.fullmatch(domain):
        raise SettingsError(f"dfr_domain {domain!r} is not a host name: set it for this host")

    db_name = str(data.get("odoo_db_name"))
    if not _DB_NAME.fullmatch(db_name):
        raise SettingsError(f"odoo_db_name {db_name!r}: use letters, digits, _ . - only")
    db_user = str(data.get("odoo_db_user"))
    if db_user == "postgres" or not _DB_NAME.fullmatch(db_user):
        raise SettingsError(
            f"odoo_db_user {db_user!r} is not allowed: Odoo refuses 'postgres'; use its own role"
        )

    sizing = _workers(data, host_facts or {})
    options = check_odoo_options(data.get("odoo_options") or {})

    addons = Path(str(data.get("odoo_addons_src")))
    addons = addons if addons.is_absolute() else project_root / addons
    one_line("odoo_addons_src", str(addons))  # dev bind-mounts it: a line of compose.yaml
    if not addons.is_dir():
        raise SettingsError(f"odoo_addons_src {addons} does not exist: point it at the addons")

    source = str(data.get("image_source"))
    if source not in IMAGE_SOURCES:
        raise SettingsError(f"image_source {source!r}: use one of {', '.join(IMAGE_SOURCES)}")

    secrets_path = Path(str(data.get("secrets_file") or f"secrets/{env}.env"))
    constraints = Path(str(data.get("odoo_addons_constraints") or "addons-constraints.txt"))
    return Settings(
        env=env,
        version=(project_root / "VERSION").read_text().strip(),
        domain=domain,
        stack_dir=f"/opt/dfr/{env}",
        project=f"dfr-{env}",
        db_name=db_name,
        db_user=db_user,
        workers=sizing.workers,
        max_cron_threads=sizing.max_cron_threads,
        odoo_limits={k: _int(data, k) for k in _LIMITS},
        odoo_options=options,
        postgres_options=_postgres_options(data),
        odoo_modules=_odoo_modules(data),
        odoo_demo=bool(data.get("odoo_demo")),
        addons_src=addons,
        tls=_tls(env, data, project_root),
        http_port=_port(data, "http_port"),
        https_port=_port(data, "https_port"),
        publish_address=_publish_address(data),
        image_source=source,
        base_images={
            service: _image_reference(data, f"{service}_base_image")
            for service in ("odoo", "postgres", "nginx")
        },
        docker=docker_settings(data),
        secrets=load_secrets(env, secrets_path),
        addons_repositories=locked(repositories(data, project_root), lock_path(data, project_root)),
        addons_constraints=constraints if constraints.is_absolute() else project_root / constraints,
        base_addons_extra=_module_list(data, "odoo_base_addons_extra"),
        wheels_python=_word(data, "odoo_wheels_python", r"3\.[0-9]+"),
        wheels_platform=_word(data, "odoo_wheels_platform", r"[a-z0-9_]+"),
    )


def _word(data: Any, key: str, pattern: str) -> str:
    value = str(data.get(key))
    if not re.fullmatch(pattern, value):
        raise SettingsError(f"{key} {value!r}: give a value like those in group_data/all.py")
    return value


def _odoo_modules(data: Any) -> tuple[str, ...]:
    return _module_list(data, "odoo_modules")


def _module_list(data: Any, key: str) -> tuple[str, ...]:
    modules = data.get(key) or ()
    if not isinstance(modules, list | tuple) or not all(isinstance(m, str) for m in modules):
        raise SettingsError(f'{key} {modules!r}: give a list of module names, like ["dfr_base"]')
    for module in modules:
        if not _MODULE.fullmatch(module):
            raise SettingsError(
                f"{key} has {module!r}, not an Odoo module's technical name: use "
                "lowercase letters, digits and _, starting with a letter or digit"
            )
    return tuple(modules)


def _image_reference(data: Any, key: str) -> str:
    reference = str(data.get(key))
    if not is_image_reference(reference):
        raise SettingsError(
            f"{key} {reference!r} is not an image reference: give [registry[:port]/]name[:tag]"
            "[@sha256:<64 hex digits>], name in lowercase, like odoo:18.0 or "
            "odoo:18.0@sha256:…"
        )
    return reference


def _publish_address(data: Any) -> str:
    value = data.get("publish_address")
    value = "" if value is None else str(value)
    try:
        return "" if value == "" else str(ipaddress.IPv4Address(value))
    except ValueError:
        raise SettingsError(
            f"publish_address {value!r} is not an IPv4 address of the host: give one "
            '(127.0.0.1: this machine only) or "" for every interface'
        ) from None


_LIMITS = (
    "limit_memory_soft",
    "limit_memory_hard",
    "limit_time_cpu",
    "limit_time_real",
    "limit_time_real_cron",
    "limit_request",
)


def _int(data: Any, key: str) -> int:
    value = data.get(f"odoo_{key}")
    if not isinstance(value, int) or isinstance(value, bool):
        raise SettingsError(f"odoo_{key} {value!r} is not a number")
    return value


def _workers(data: Any, facts: dict[str, int]) -> WorkerSizing:
    crons = data.get("odoo_max_cron_threads", 1)
    if not isinstance(crons, int) or isinstance(crons, bool) or crons < 0:
        raise SettingsError(f"odoo_max_cron_threads {crons!r} is not a number of 0 or more")
    workers = data.get("odoo_workers")
    if workers == "auto":
        if not facts:
            raise SettingsError("odoo_workers = 'auto' needs the host's CPU and RAM facts")
        return size_workers(facts["cpus"], facts["ram_mb"], crons)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise SettingsError(
            f"odoo_workers {workers!r} is not a number: use 0, 2 or more, or 'auto'"
        )
    if workers == 1:
        raise SettingsError("odoo_workers = 1 disables PDF printing in Odoo: use 0, 2 or more")
    return WorkerSizing(workers, crons)


def _postgres_options(data: Any) -> dict[str, str | int | float | bool]:
    options = data.get("postgres_options") or {}
    if not isinstance(options, dict):
        raise SettingsError("postgres_options is not a dict of postgresql.conf settings")
    for key, value in options.items():
        if not isinstance(key, str) or not _PG_SETTING.fullmatch(key):
            raise SettingsError(f"postgres_options key {key!r} is not a postgresql.conf name")
        if not isinstance(value, str | int | float | bool):
            raise SettingsError(f"postgres_options {key} = {value!r}: use a string or a number")
        one_line(f"postgres_options {key}", value)
    return dict(options)


def _port(data: Any, key: str) -> int:
    port = data.get(key)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise SettingsError(f"{key} {port!r} is not a TCP port")
    return port


def _tls(env: str, data: Any, root: Path) -> Tls:
    cert, key = data.get("tls_certificate"), data.get("tls_certificate_key")
    if not cert and not key:
        if env == "prod":
            raise SettingsError(
                "production needs the operator's TLS certificate: set tls_certificate and "
                "tls_certificate_key to PEM files on this machine"
            )
        return Tls(None, None)
    paths = []
    for name, value in (("tls_certificate", cert), ("tls_certificate_key", key)):
        path = Path(str(value)) if value else None
        path = path if path is None or path.is_absolute() else root / path
        if path is None or not path.is_file():
            raise SettingsError(f"{name} {value!r} does not exist: give a readable PEM file")
        try:
            path.read_bytes()
        except OSError as error:
            raise SettingsError(f"{name} {path} cannot be read: {error.strerror}") from None
        paths.append(path)
    from tasks.tls import check_pair  # late: needs the cryptography package only here

    check_pair(paths[0], paths[1], str(data.get("dfr_domain") or ""), env)
    return Tls(paths[0], paths[1])
