"""The DFR stack on a host: config, images, Compose project, health through nginx."""

from __future__ import annotations

import hashlib
from io import StringIO
from typing import Any

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.files import File, Sha256File
from pyinfra.operations import files, server

from tasks.admin_login import refuse_default_admin_login
from tasks.backup_settings import backup_settings
from tasks.backup_tools import install_backup_tools
from tasks.compose import compose_up
from tasks.config_check import CANDIDATES, install_checked_config
from tasks.errors import SettingsError
from tasks.facts import ComposeProject, HostShape, ListeningPorts, OdooSecretsFile
from tasks.images import images_on_host, odoo_addons, planned_images, refresh_requested
from tasks.modules import keep_running_release, module_changes, update_modules
from tasks.odoo_secrets import odoo_secrets_conf
from tasks.odoo_switch import switch_odoo
from tasks.releases import ReleasePlan
from tasks.render import render
from tasks.secret_files import private_upload_dir, secret_file
from tasks.settings import Settings, load_settings
from tasks.tls import self_signed_pair


def stack_settings() -> Settings:
    """Validated settings for this host; raises SettingsError before anything is queued."""
    shape = host.get_fact(HostShape) if host.data.get("odoo_workers") == "auto" else None
    settings = load_settings(host.data, shape)
    odoo_addons(settings)  # fetched and checked now: bad addons stop the run before any change
    return settings


def check_ports_free(settings: Settings) -> None:
    """80/443 must be free, or held by this stack's own nginx."""
    wanted = {settings.http_port, settings.https_port}
    taken = wanted & (host.get_fact(ListeningPorts) or set())
    if not taken:
        return
    found = host.get_fact(ComposeProject, directory=settings.stack_dir, project=settings.project)
    ours = (found or {}).get("have", {}).get("nginx", {}).get("state") == "running"
    if not ours:
        ports = ", ".join(str(p) for p in sorted(taken))
        raise SettingsError(
            f"{host.name}: port {ports} is already in use by another program: stop it or set "
            "http_port/https_port for this host"
        )


@deploy("DFR stack")
def deploy_stack(settings: Settings, release: ReleasePlan | None = None) -> None:
    """The stack on the host; ``release`` is told the images' tags and the modules updated."""
    base = settings.stack_dir
    for path, mode in (
        (base, "0755"),
        (f"{base}/config", "0755"),
        (f"{base}/config/nginx", "0755"),
        (f"{base}/next", "0755"),
        (f"{base}/next/nginx", "0755"),
        (f"{base}/secrets", "0700"),
        (f"{base}/tls", "0755"),
        (f"{base}/route", "0755"),  # bin/dfr-switch-odoo's nginx route while it switches
    ):
        files.directory(name=f"Directory {path}", path=path, mode=mode)

    install_backup_tools(settings, backup_settings(host.data, settings.env))
    builds = images_on_host(settings, refresh=refresh_requested())
    images = planned_images(settings)
    tags = {name: image.tag for name, image in images.items()}
    modules = module_changes(settings, images["odoo"])

    # Rendered once: uploaded below and hashed into the compose labels (pbkdf2 is slow).
    odoo_secrets = odoo_secrets_conf(
        settings, host.get_fact(OdooSecretsFile, path=f"{base}/secrets/odoo_secrets.conf")
    )
    odoo_conf_text = render("odoo.conf.j2", settings)
    nginx_conf_text = render("nginx/dfr.conf.j2", settings)
    postgres_conf_text = render("postgresql.conf.j2", settings)
    compose_text = render(
        "compose.yaml.j2",
        settings,
        images=tags,
        odoo_memory_limit=_odoo_memory_limit(settings),
        config_sha={
            # A rotated password restarts PostgreSQL, whose entrypoint applies it.
            "postgres": _sha(
                postgres_conf_text,
                settings.secrets.postgres_password,
                settings.secrets.db_password,
            ),
            # A rotated admin user password restarts Odoo, whose entrypoint applies it.
            "odoo": _sha(odoo_conf_text, odoo_secrets, settings.secrets.admin_user_password),
            "nginx": _sha(nginx_conf_text, str(settings.tls)),
        },
    )
    # The compose file names every image tag and configuration hash: when it changes, what the
    # stack runs on is kept first, for a failed update or switch to fall back on.
    running_compose = host.get_fact(Sha256File, path=f"{base}/compose.yaml")
    replacing = running_compose not in (None, _sha256(compose_text))
    if modules or replacing:
        keep_running_release(settings)  # before anything below replaces it
    staging_dir = private_upload_dir()
    secrets = [
        secret_file(
            name=f"Secret {name}",
            dest=f"{base}/secrets/{name}",
            content=content,
            _temp_dir=staging_dir,
        )
        for name, content in (
            ("postgres_password", settings.secrets.postgres_password),
            ("db_password", settings.secrets.db_password),
            ("odoo_secrets.conf", odoo_secrets),
            ("admin_user_password", settings.secrets.admin_user_password),
        )
    ]
    tls = _tls_files(settings, staging_dir)
    candidates = [
        files.put(
            name=name,
            src=StringIO(text),
            dest=f"{base}/{CANDIDATES}/{path}",
            mode="0644",
            create_remote_dir=False,
        )
        for name, text, path in (
            ("PostgreSQL configuration (postgresql.conf)", postgres_conf_text, "postgresql.conf"),
            ("Odoo configuration (odoo.conf)", odoo_conf_text, "odoo.conf"),
            ("Nginx site (dfr.conf)", nginx_conf_text, "nginx/dfr.conf"),
        )
    ]
    config = install_checked_config(
        name="Check the new configuration in the new images, then install it",
        stack_dir=base,
        images=tags,
        uploads=candidates,
    )
    compose_file = files.put(
        name="Compose project (compose.yaml)",
        src=StringIO(compose_text),
        dest=f"{base}/compose.yaml",
        mode="0644",
        create_remote_dir=False,
    )

    if release is not None:
        release.tags = tuple(tags.values())
        release.details.update(
            addons=images["odoo"].addons_sha,
            modules_updated=list(modules.update),
            modules_installed=list(modules.install),
        )
    if modules:
        update_modules(name=modules.operation_name, settings=settings, changes=modules)
    else:
        switch_odoo(
            name="Switch to the new Odoo when it changed, with no dropped request",
            settings=settings,
            inputs=[*builds, config, compose_file, *secrets],
            fall_back=replacing,
        )

    up = compose_up(
        name=f"Bring {settings.project} up (healthy) when it changed",
        directory=base,
        project=settings.project,
        inputs=[*builds, config, compose_file, *secrets, *tls],
    )
    check_health_through_nginx(settings, _if=up.did_change)
    if not settings.is_dev:
        refuse_default_admin_login(
            name=f"Check admin/admin is refused at {settings.url}", settings=settings
        )
    logger.info(
        f"{host.name}: DFR {settings.env} is served at {settings.url} (log in at /web/login)"
    )
    if settings.is_dev:
        secrets_file = host.data.get("secrets_file") or f"secrets/{settings.env}.env"
        logger.info(
            f"{host.name}: log in as admin with the password DFR_ODOO_ADMIN_USER_PASSWORD "
            f"in {secrets_file}"
        )


def check_health_through_nginx(settings: Settings, **arguments: Any) -> OperationMeta:
    """``/web/health`` over HTTPS through the host's own nginx, retried while Odoo starts."""
    return server.shell(
        name=f"Check {settings.url}web/health through nginx",
        commands=[
            f"curl -fsS -k --retry 10 --retry-delay 3 --retry-all-errors "
            f"--resolve {settings.domain}:{settings.https_port}:127.0.0.1 "
            f"{settings.url}web/health"
        ],
        **arguments,
    )


def _tls_files(settings: Settings, staging_dir: str | None) -> list:
    cert_path = f"{settings.stack_dir}/tls/fullchain.pem"
    key_path = f"{settings.stack_dir}/tls/privkey.pem"
    if settings.tls.self_signed:
        if host.get_fact(File, path=cert_path):
            return []  # generated once; kept across runs
        cert, key = self_signed_pair(settings.domain)
    else:
        cert, key = settings.tls.certificate.read_bytes(), settings.tls.key.read_bytes()
    return [
        files.put(
            name="TLS certificate",
            src=StringIO(cert.decode()),
            dest=cert_path,
            mode="0644",
            create_remote_dir=False,
        ),
        secret_file(
            name="TLS private key", dest=key_path, content=key.decode(), _temp_dir=staging_dir
        ),
    ]


def _odoo_memory_limit(settings: Settings) -> str:
    """Compose memory limit for Odoo: every worker at its hard limit, plus the gevent one."""
    per_process = settings.odoo_limits["limit_memory_hard"]
    processes = max(settings.workers, 1) + settings.max_cron_threads + 1
    return f"{per_process * processes // (1024 * 1024)}m"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _sha(*parts: str) -> str:
    """A label value that changes with what a container reads from mounted files."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
