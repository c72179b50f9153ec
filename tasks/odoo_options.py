"""The option names Odoo 18 accepts in odoo.conf, which of them odoo_options may set, and
Odoo's documented worker sizing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tasks.config_values import odoo_value, one_line
from tasks.errors import SettingsError

# Read from a running Odoo 18.0 server's config manager (docs/odoo18-options.txt); Odoo
# silently ignores any other key, so we refuse them instead.
ODOO18_OPTIONS = frozenset(
    """
    addons_path admin_passwd config csv_internal_sep data_dir db_host db_maxconn
    db_maxconn_gevent db_name db_password db_port db_replica_host db_replica_port db_sslmode
    db_template db_user dbfilter demo dev_mode email_from from_filter geoip_city_db
    geoip_country_db gevent_port http_enable http_interface http_port import_partial init
    language limit_memory_hard limit_memory_hard_gevent limit_memory_soft
    limit_memory_soft_gevent limit_request limit_time_cpu limit_time_real limit_time_real_cron
    list_db load_language log_db log_db_level log_handler log_level logfile max_cron_threads
    osv_memory_count_limit overwrite_existing_translations pg_path pidfile proxy_mode
    publisher_warranty_url reportgz root_path save screencasts screenshots server_wide_modules
    shell_interface smtp_password smtp_port smtp_server smtp_ssl smtp_ssl_certificate_filename
    smtp_ssl_private_key_filename smtp_user stop_after_init syslog test_enable test_file
    test_tags transient_age_limit translate_in translate_modules translate_out unaccent update
    upgrade_path websocket_keep_alive_timeout websocket_rate_limit_burst
    websocket_rate_limit_delay without_demo workers x_sendfile
    """.split()  # noqa: SIM905 (one word per option reads best)
)

# The keys templates/odoo.conf.j2 writes itself. Odoo refuses a key given twice, so an
# odoo_options entry either replaces the template's line (the first kind), or is refused: the
# key has a setting of its own (which other files read too: workers picks nginx's upstream and
# the memory limit), or it keeps the stack working and closed.
ODOO_OPTIONS_OVERRIDABLE = frozenset({"log_level"})
ODOO_OPTIONS_SETTING = {
    "workers": "odoo_workers",
    "max_cron_threads": "odoo_max_cron_threads",
    "without_demo": "odoo_demo",
    "db_name": "odoo_db_name",
    "db_user": "odoo_db_user",
    **{key: f"odoo_{key}" for key in (
        "limit_memory_soft", "limit_memory_hard", "limit_time_cpu", "limit_time_real",
        "limit_time_real_cron", "limit_request",
    )},
}  # fmt: skip
# db_password and admin_passwd: the entrypoint appends them from the secrets (docs/secrets.md).
ODOO_OPTIONS_FIXED = frozenset(
    {"addons_path", "data_dir", "db_host", "db_port", "db_sslmode", "list_db", "dbfilter",
     "http_interface", "http_port", "gevent_port", "proxy_mode", "admin_passwd", "db_password"}
)  # fmt: skip


def check_odoo_options(options: Any) -> dict[str, Any]:
    """odoo_options as odoo.conf gets them: Odoo 18 keys, none the template owns but the
    overridable ones, every value on one line."""
    if not isinstance(options, dict):
        raise SettingsError(f"odoo_options {options!r} is not a dict of odoo.conf keys")
    unknown = sorted(str(key) for key in options if key not in ODOO18_OPTIONS)
    if unknown:
        raise SettingsError(
            f"odoo_options has {', '.join(unknown)}, not an Odoo 18 option: "
            "check the spelling against docs/odoo.md (Odoo would silently ignore it)"
        )
    for key, value in sorted(options.items()):
        if key in ODOO_OPTIONS_SETTING:
            raise SettingsError(
                f"odoo_options {key}: set {ODOO_OPTIONS_SETTING[key]} instead (odoo.conf "
                "has the key once, from that setting)"
            )
        if key in ODOO_OPTIONS_FIXED:
            raise SettingsError(
                f"odoo_options {key}: dfr-deploy sets it so that the stack works and stays "
                "closed (docs/odoo.md); it cannot be overridden"
            )
        one_line(f"odoo_options {key}", value, odoo_value(value))
    return dict(options)


# Odoo's deployment guide: at most (CPU x 2) + 1 workers; RAM per worker assuming 80 % light
# requests (~150 MB) and 20 % heavy ones (~1 GB).
MB_PER_WORKER = 0.8 * 150 + 0.2 * 1024
# Share of the host's RAM Odoo may plan for; the rest is PostgreSQL, nginx and the OS.
ODOO_RAM_SHARE = 0.5


@dataclass(frozen=True)
class WorkerSizing:
    workers: int
    max_cron_threads: int


def size_workers(cpus: int, ram_mb: int, max_cron_threads: int = 1) -> WorkerSizing:
    """HTTP workers for a host by Odoo's formula, cron workers counted in; never 1 (no PDFs)."""
    by_cpu = cpus * 2 + 1
    by_ram = int(ram_mb * ODOO_RAM_SHARE // MB_PER_WORKER)
    workers = min(by_cpu, by_ram) - max_cron_threads
    return WorkerSizing(workers=max(2, workers), max_cron_threads=max_cron_threads)
