"""Configuration, as odoo/tools/config.py reads it (odoo18-facts.md section 1).

The config file is `-c/--config`, else $ODOO_RC, else $OPENERP_SERVER, else ~/.odoorc. Only
`[options]` counts; every key there is stored, unknown ones are simply never read. Only the
literals True/true/False/false become booleans (`list_db = 0` stays a truthy string), `None` is
"unset" only for a few keys, typed options are cast, and the command line wins over the file.
"""

from __future__ import annotations

import argparse
import configparser
import os
from pathlib import Path
from typing import Any

SERIES = "18.0"
VERSION_INFO = (18, 0, 0, "final", 0, "")
# Where the .deb puts the core addons; the double ships stubs of base, web, bus and mail there.
CORE_ADDONS = Path("/usr/lib/python3/dist-packages/odoo/addons")


def _default_data_dir() -> str:
    home = Path("~").expanduser()
    if home.is_dir():
        xdg = os.environ.get("XDG_DATA_HOME") or str(home / ".local" / "share")
        return str(Path(xdg) / "Odoo")
    return "/var/lib/odoo"


# (key, command-line flags, default, kind). kind: str | int | float | flag (store_true) |
# off (store_false) | append. Keys without flags can only be set in the file.
OPTIONS: list[tuple[str, tuple[str, ...], Any, str]] = [
    ("config", ("-c", "--config"), None, "str"),
    ("init", ("-i", "--init"), "", "str"),
    ("update", ("-u", "--update"), "", "str"),
    ("without_demo", ("--without-demo",), False, "str"),
    ("pidfile", ("--pidfile",), None, "str"),
    ("addons_path", ("--addons-path",), "", "str"),
    ("server_wide_modules", ("--load",), "base,web", "str"),
    ("data_dir", ("-D", "--data-dir"), _default_data_dir(), "str"),
    ("http_interface", ("--http-interface", "--xmlrpc-interface"), "", "str"),
    ("http_port", ("-p", "--http-port", "--xmlrpc-port"), 8069, "int"),
    ("gevent_port", ("--gevent-port",), 8072, "int"),
    ("http_enable", ("--no-http", "--no-xmlrpc"), True, "off"),
    ("proxy_mode", ("--proxy-mode",), False, "flag"),
    ("x_sendfile", ("--x-sendfile",), False, "flag"),
    ("dbfilter", ("--db-filter",), "", "str"),
    ("logfile", ("--logfile",), None, "str"),
    ("log_handler", ("--log-handler",), ":INFO", "append"),
    ("log_level", ("--log-level",), "info", "str"),
    ("email_from", ("--email-from",), False, "str"),
    ("smtp_server", ("--smtp",), "localhost", "str"),
    ("smtp_port", ("--smtp-port",), 25, "int"),
    ("smtp_ssl", ("--smtp-ssl",), False, "flag"),
    ("smtp_user", ("--smtp-user",), False, "str"),
    ("smtp_password", ("--smtp-password",), False, "str"),
    ("db_name", ("-d", "--database"), False, "str"),
    ("db_user", ("-r", "--db_user"), False, "str"),
    ("db_password", ("-w", "--db_password"), False, "str"),
    ("pg_path", ("--pg_path",), None, "str"),
    ("db_host", ("--db_host",), False, "str"),
    ("db_port", ("--db_port",), False, "int"),
    ("db_sslmode", ("--db_sslmode",), "prefer", "str"),
    ("db_maxconn", ("--db_maxconn",), 64, "int"),
    ("db_template", ("--db-template",), "template0", "str"),
    ("list_db", ("--no-database-list",), True, "off"),
    ("dev_mode", ("--dev",), None, "str"),
    ("stop_after_init", ("--stop-after-init",), False, "flag"),
    ("max_cron_threads", ("--max-cron-threads",), 2, "int"),
    ("unaccent", ("--unaccent",), False, "flag"),
    ("workers", ("--workers",), 0, "int"),
    ("limit_memory_soft", ("--limit-memory-soft",), 2048 * 1024 * 1024, "int"),
    ("limit_memory_hard", ("--limit-memory-hard",), 2560 * 1024 * 1024, "int"),
    ("limit_time_cpu", ("--limit-time-cpu",), 60, "int"),
    ("limit_time_real", ("--limit-time-real",), 120, "int"),
    ("limit_time_real_cron", ("--limit-time-real-cron",), -1, "int"),
    ("limit_request", ("--limit-request",), 65536, "int"),
    ("admin_passwd", (), "admin", "str"),
    ("websocket_keep_alive_timeout", (), 3600, "int"),
]
DEFAULTS = {key: default for key, _, default, _ in OPTIONS}
CASTS = {
    key: {"int": int, "float": float}[kind]
    for key, _, _, kind in OPTIONS
    if kind in ("int", "float")
}
NONE_MEANS_UNSET = {"logfile", "pidfile", "test_tags", "server_wide_modules", "pg_path"}
LEGACY_KEYS = {
    "xmlrpc_port": "http_port",
    "xmlrpc_interface": "http_interface",
    "xmlrpc": "http_enable",
}
# The flags `odoo db` accepts before its subcommand (odoo/cli/db.py:33-41).
DB_COMMAND_KEYS = ("config", "data_dir", "addons_path", "db_user", "db_password", "pg_path",
                   "db_host", "db_port", "db_sslmode")  # fmt: skip


class ConfigError(Exception):
    pass


def add_options(parser: argparse.ArgumentParser, keys: tuple[str, ...] | None = None) -> None:
    """Add the command-line flags; only options given on the command line land in the result."""
    for key, flags, _, kind in OPTIONS:
        if not flags or (keys is not None and key not in keys):
            continue
        if kind == "flag":
            parser.add_argument(*flags, dest=key, action="store_true", default=argparse.SUPPRESS)
        elif kind == "off":
            parser.add_argument(*flags, dest=key, action="store_false", default=argparse.SUPPRESS)
        elif kind == "append":
            parser.add_argument(*flags, dest=key, action="append", default=argparse.SUPPRESS)
        else:
            parser.add_argument(
                *flags, dest=key, type=CASTS.get(key, str), default=argparse.SUPPRESS
            )


def server_parser(prog: str = "odoo") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog)
    add_options(parser)
    return parser


def rc_file(cli_config: str | None) -> Path:
    name = cli_config or os.environ.get("ODOO_RC") or os.environ.get("OPENERP_SERVER")
    return Path(name or "~/.odoorc").expanduser()


def read_file(path: Path) -> dict[str, Any]:
    parser = configparser.RawConfigParser()
    parser.read(path)
    values: dict[str, Any] = {}
    if not parser.has_section("options"):
        return values
    for key, raw in parser.items("options"):
        key = LEGACY_KEYS.get(key, key)
        value: Any = raw
        if raw in ("True", "true"):
            value = True
        elif raw in ("False", "false"):
            value = False
        elif raw == "None" and key in NONE_MEANS_UNSET:
            value = None
        elif key in CASTS:
            try:
                value = CASTS[key](raw)
            except ValueError as exc:
                raise ConfigError(f"option {key}: invalid value {raw!r} in {path}") from exc
        values[key] = value
    return values


def validate_addons_path(value: str) -> str:
    """--addons-path given on the command line must name real module directories."""
    entries = []
    for entry in filter(None, (e.strip() for e in value.split(","))):
        path = Path(entry).expanduser().resolve()
        if not path.is_dir():
            raise ConfigError(f"option --addons-path: no such directory: {entry!r}")
        if not any(
            (m / "__init__.py").is_file() and (m / "__manifest__.py").is_file()
            for m in path.iterdir()
        ):
            raise ConfigError(
                f"option --addons-path: the path {entry!r} is not a valid addons directory"
            )
        entries.append(str(path))
    return ",".join(entries)


def build(cli: dict[str, Any]) -> dict[str, Any]:
    """Defaults, then the config file, then the command line (odoo/tools/config.py)."""
    path = rc_file(cli.get("config"))
    if cli.get("config") and not os.access(path, os.R_OK):
        raise ConfigError(
            f"the config file '{path}' selected with -c/--config doesn't exist or is not readable"
        )
    conf: dict[str, Any] = dict(DEFAULTS)
    conf.update(read_file(path))
    if "addons_path" in cli:
        cli["addons_path"] = validate_addons_path(cli["addons_path"])
    if "log_handler" in cli:
        cli["log_handler"] = ",".join(cli["log_handler"])
    conf.update(cli)
    conf["config"] = str(path)
    if isinstance(conf["addons_path"], str):
        conf["addons_path"] = ",".join(
            str(Path(e.strip()).expanduser().resolve())
            for e in conf["addons_path"].split(",")
            if e.strip()
        )
    if not conf["addons_path"]:
        conf["addons_path"] = str(CORE_ADDONS)
    conf["data_dir"] = str(Path(str(conf["data_dir"])).expanduser())
    dbs = db_names(conf)
    if len(dbs) > 1 and (conf["init"] or conf["update"]):
        raise ConfigError(
            "Cannot use -i/--init or -u/--update with multiple databases in the"
            " -d/--database/db_name"
        )
    return conf


def db_names(conf: dict[str, Any]) -> list[str]:
    return [d.strip() for d in str(conf["db_name"] or "").split(",") if d.strip()]


def modules_arg(value: Any) -> set[str]:
    return {m.strip() for m in str(value or "").split(",") if m.strip()}


def data_path(conf: dict[str, Any], *parts: str) -> Path:
    return Path(conf["data_dir"], *parts)
