"""`odoo [command] args`: server (default), neutralize, db, shell, help (odoo18-facts.md 2, 11)."""

from __future__ import annotations

import argparse
import io
import logging
import os
import signal
import sys
import threading
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.errors

from . import config, database, db_context, loading, setup_logging, web
from . import shell as shell_env

_logger = logging.getLogger("odoo")
_server = logging.getLogger("odoo.service.server")


def _configure(
    parser: argparse.ArgumentParser, args: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parse, build the configuration, set up logging. Returns (config, extra parsed args)."""
    parsed = vars(parser.parse_args(args))
    option_keys = {key for key, *_ in config.OPTIONS}
    extra = {k: parsed.pop(k) for k in list(parsed) if k not in option_keys}
    try:
        conf = config.build(parsed)
    except config.ConfigError as exc:
        parser.error(str(exc))
    setup_logging(conf)
    return conf, extra


def _check_postgres_user(conf: dict[str, Any]) -> None:
    if (conf["db_user"] or os.environ.get("PGUSER")) == "postgres":
        sys.stderr.write("Using the database user 'postgres' is a security risk, aborting.")
        sys.exit(1)


def _report_configuration(conf: dict[str, Any]) -> None:
    _logger.info("Odoo version %s (dfr-deploy test double, not Odoo)", config.SERIES)
    if Path(conf["config"]).is_file():
        _logger.info("Using configuration file at %s", conf["config"])
    _logger.info("addons paths: %s", [str(d) for d in database.addons_dirs(conf)])
    host = conf["db_host"] or os.environ.get("PGHOST", "default")
    port = conf["db_port"] or os.environ.get("PGPORT", "default")
    user = conf["db_user"] or os.environ.get("PGUSER", "default")
    _logger.info("database: %s@%s:%s", user, host, port)


def _addons_data_dir(conf: dict[str, Any]) -> None:
    """<data_dir>/addons/18.0 is created read-only (0500), to be opened by hand (config.py)."""
    directory = config.data_path(conf, "addons", config.SERIES)
    try:
        directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.mkdir(mode=0o500, exist_ok=True)
    except OSError:
        _logger.debug("Failed to create addons data dir %s", directory)


# A database whose filestore holds this file makes the server exit at boot: Odoo that does not
# come up on some data (a restore's rollback is tested with it).
FAILS_TO_BOOT = ".dfr-test-double-fails-to-boot"


def server(args: list[str]) -> int:
    if os.geteuid() == 0:
        sys.stderr.write("Running as user 'root' is a security risk.\n")
    conf, _ = _configure(config.server_parser(), args)
    _check_postgres_user(conf)
    _addons_data_dir(conf)
    _report_configuration(conf)
    if conf["pidfile"]:
        Path(conf["pidfile"]).write_text(str(os.getpid()))
    new_dbs = set()
    for name in config.db_names(conf):  # a missing -d database is created (cli/server.py)
        try:
            database.create_empty_database(conf, name)
            new_dbs.add(name)
        except database.DatabaseExists:
            pass
        except psycopg2.errors.InsufficientPrivilege as exc:
            _logger.info(
                "Could not determine if database %s exists, skipping auto-creation: %s", name, exc
            )
    for name in config.db_names(conf):  # a test hook, not Odoo's: see docs/odoo-test-double.md
        if (config.data_path(conf, "filestore", name) / FAILS_TO_BOOT).exists():
            with db_context(name):
                _server.critical("Failed to initialize database `%s` (test hook).", name)
            return 1
    stop = conf["stop_after_init"]
    servers = [] if stop or not conf["http_enable"] else _start_http(conf)
    rc = 0
    for name in config.db_names(conf):  # preload_registries
        try:
            loading.load(conf, name, new=name in new_dbs)
        except Exception:
            with db_context(name):
                _server.critical("Failed to initialize database `%s`.", name, exc_info=True)
            rc = -1
    if stop:
        return rc
    return _wait_for_signals(servers)


def _start_http(conf: dict[str, Any]) -> list[web.Server]:
    app = web.App(conf)
    interface = conf["http_interface"] or "0.0.0.0"
    servers = [web.Server((interface, conf["http_port"]), app, can_upgrade=conf["workers"] == 0)]
    _server.info("HTTP service (werkzeug) running on %s:%s", interface, conf["http_port"])
    if conf["workers"]:
        servers.append(web.Server((interface, conf["gevent_port"]), app, can_upgrade=True))
        _server.info(
            "Evented Service (longpolling) running on %s:%s", interface, conf["gevent_port"]
        )
        _server.info(
            "workers = %s: prefork is simulated with threads by the test double", conf["workers"]
        )
    for srv in servers:
        # Polled every 0.1 s, so a stop takes as long as Odoo's with idle workers (they wake
        # on their signal pipe at once), not half a second per server.
        threading.Thread(target=srv.serve_forever, args=(0.1,), daemon=True).start()
    return servers


def _wait_for_signals(servers: list[web.Server]) -> int:
    """SIGTERM/SIGINT: graceful stop, a second one forces it. SIGHUP: re-exec (reload)."""
    stopping = threading.Event()
    state = {"signals": 0, "reexec": False}

    def handler(signum: int, _frame: object) -> None:
        state["signals"] += 1
        if state["signals"] > 1:
            sys.stderr.write("Forced shutdown.\n")
            os._exit(0)
        state["reexec"] = signum == signal.SIGHUP
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, handler)
    while not stopping.wait(1):
        pass
    _server.info("Initiating shutdown")
    _server.info("Hit CTRL-C again or send a second signal to force the shutdown.")
    for srv in servers:
        srv.shutdown()
        srv.server_close()
    logging.shutdown()
    if state["reexec"]:
        os.execv(sys.executable, [sys.executable, *sys.argv])
    return 0


def neutralize(args: list[str]) -> int:
    parser = config.server_parser("odoo neutralize")
    parser.add_argument("--stdout", dest="to_stdout", action="store_true")
    conf, extra = _configure(parser, args)
    names = config.db_names(conf)
    if not names:
        _logger.error('Neutralize command needs a database name. Use "-d" argument')
        return 1
    try:
        with db_context(names[0]), database.cursor(conf, names[0]) as cr:
            if extra["to_stdout"]:
                print("BEGIN;")
                for query in database.neutralization_queries(cr, conf):
                    print(query.strip().rstrip(";") + ";")
                print("COMMIT;")
            else:
                _logger.info("Starting %s database neutralization", names[0])
                database.neutralize(cr, conf)
    except Exception:
        _logger.critical(
            "An error occurred during the neutralization. THE DATABASE IS NOT NEUTRALIZED!",
            exc_info=True,
        )
        return 1
    return 0


def shell(args: list[str]) -> int:
    """With stdin not a terminal, runs the script it holds (odoo/cli/shell.py)."""
    parser = config.server_parser("odoo shell")
    parser.add_argument("--shell-interface", dest="shell_interface")
    conf, _ = _configure(parser, args)
    _check_postgres_user(conf)
    names = config.db_names(conf)
    if sys.stdin.isatty() or not names:
        sys.exit("odoo shell: the test double runs only a script on stdin against -d DB")
    try:
        with db_context(names[0]):
            shell_env.run_script(conf, names[0], sys.stdin.read())
    except Exception:
        _logger.exception("Exception in the shell script")
        return 1
    return 0


def _db_parser() -> argparse.ArgumentParser:
    """odoo/cli/db.py: the connection flags come BEFORE the subcommand."""
    parser = argparse.ArgumentParser(prog="odoo db")
    config.add_options(parser, config.DB_COMMAND_KEYS)
    sub = parser.add_subparsers(dest="command", required=True)
    load = sub.add_parser("load", help="Load a dump file (zip with filestore) as a new database")
    load.add_argument("-f", "--force", action="store_true")
    load.add_argument("-n", "--neutralize", action="store_true")
    load.add_argument("database", nargs="?")
    load.add_argument("dump_file")
    dump = sub.add_parser("dump", help="Create a zip dump with filestore")
    dump.add_argument("database")
    dump.add_argument("dump_path", nargs="?", default="-")
    for name in ("duplicate", "rename"):
        cmd = sub.add_parser(name)
        cmd.add_argument("-f", "--force", action="store_true")
        if name == "duplicate":
            cmd.add_argument("-n", "--neutralize", action="store_true")
        cmd.add_argument("source")
        cmd.add_argument("target")
    sub.add_parser("drop").add_argument("database")
    return parser


def _check_target(conf: dict[str, Any], name: str, force: bool) -> None:
    if database.exists(conf, name):
        if not force:
            sys.exit(
                f"Target database {name} exists, aborting.\n\n"
                "\tuse `--force` to delete the existing database anyway."
            )
        database.drop(conf, name)


def db(args: list[str]) -> int:
    conf, extra = _configure(_db_parser(), args)
    conf["list_db"] = True  # the command works even when the web database manager is disabled
    command = extra["command"]
    if command == "dump":
        if extra["dump_path"] == "-":
            database.dump_zip(conf, extra["database"], sys.stdout.buffer)
        else:
            with open(extra["dump_path"], "wb") as stream:
                database.dump_zip(conf, extra["database"], stream)
    elif command == "load":
        name = extra["database"] or Path(extra["dump_file"]).stem
        _check_target(conf, name, extra["force"])
        dump: Any = extra["dump_file"]
        if urllib.parse.urlparse(dump).scheme in ("http", "https"):
            print(f"Fetching {dump}...", file=sys.stderr)
            with urllib.request.urlopen(dump, timeout=10) as reply:
                dump = io.BytesIO(reply.read())
        else:
            print(f"Restoring {dump}...", file=sys.stderr)
        if not zipfile.is_zipfile(dump):
            sys.exit(
                "Not a zipped dump file, use the web database manager to restore other formats."
            )
        database.restore_zip(conf, name, dump, copy=True, neutralize_db=extra["neutralize"])
    elif command == "duplicate":
        _check_target(conf, extra["target"], extra["force"])
        database.duplicate(conf, extra["source"], extra["target"], extra["neutralize"])
    elif command == "rename":
        _check_target(conf, extra["target"], extra["force"])
        database.rename(conf, extra["source"], extra["target"])
    elif command == "drop" and not database.drop(conf, extra["database"]):
        sys.exit(f"The database {extra['database']!r} is not found and cannot be dropped")
    return 0


HELP = {
    "db": "Create, drop, dump, load databases",
    "help": "Display the list of available commands",
    "neutralize": "Neutralize a production database for testing",
    "server": "Start the odoo server (default command)",
    "shell": "Start odoo in an interactive shell",
}


def help_command(args: list[str]) -> int:
    print("Odoo test double (dfr-deploy), commands:\n")
    for name, text in HELP.items():
        print(f"    {name:<12}{text}")
    return 0


COMMANDS = {
    "server": server,
    "neutralize": neutralize,
    "db": db,
    "shell": shell,
    "help": help_command,
}


def main(argv: list[str]) -> int:
    args, prefix = list(argv), []
    if len(args) > 1 and args[0].startswith("--addons-path=") and not args[1].startswith("-"):
        prefix = [args.pop(0)]
    command = "server"
    if args and not args[0].startswith("-"):
        command = args.pop(0)
    if command not in COMMANDS:
        sys.exit(f"Unknown command {command!r}")
    return COMMANDS[command](prefix + args)
