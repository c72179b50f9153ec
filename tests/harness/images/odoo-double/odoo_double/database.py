"""Databases: creation, a minimal Odoo schema, the modules found on the addons path,
neutralization, the zip dump format and the filestore (odoo18-facts.md sections 1.4, 6, 7 and
11). Installing and updating modules is loading.py's job."""

from __future__ import annotations

import ast
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import shutil
import subprocess
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import psycopg2
from psycopg2 import sql

from . import config, db_context

_logger = logging.getLogger("odoo.service.db")
_neutralize = logging.getLogger("odoo.modules.neutralize")
Cursor = psycopg2.extensions.cursor

SCHEMA = """
CREATE TABLE ir_module_module (
    id serial PRIMARY KEY, name varchar NOT NULL UNIQUE,
    state varchar NOT NULL DEFAULT 'uninstalled', latest_version varchar,
    demo boolean NOT NULL DEFAULT false, auto_install boolean NOT NULL DEFAULT false,
    write_date timestamp DEFAULT (now() AT TIME ZONE 'UTC'));
CREATE TABLE ir_model (id serial PRIMARY KEY, model varchar NOT NULL UNIQUE, name varchar,
    state varchar NOT NULL DEFAULT 'base');
CREATE TABLE ir_model_data (
    id serial PRIMARY KEY, module varchar NOT NULL, name varchar NOT NULL,
    model varchar NOT NULL, res_id integer, noupdate boolean DEFAULT false, UNIQUE (module, name));
CREATE TABLE ir_config_parameter (id serial PRIMARY KEY, key varchar NOT NULL UNIQUE,
    value text NOT NULL);
CREATE TABLE res_partner (id serial PRIMARY KEY, name varchar, email varchar,
    is_company boolean DEFAULT false, active boolean DEFAULT true);
CREATE TABLE res_users (id serial PRIMARY KEY, login varchar NOT NULL UNIQUE, password varchar,
    active boolean DEFAULT true, partner_id integer REFERENCES res_partner(id));
CREATE TABLE ir_attachment (
    id serial PRIMARY KEY, name varchar NOT NULL, type varchar NOT NULL DEFAULT 'binary',
    store_fname varchar, checksum varchar(40), file_size integer, mimetype varchar,
    res_model varchar, res_id integer, public boolean DEFAULT false, db_datas bytea,
    create_date timestamp DEFAULT (now() AT TIME ZONE 'UTC'));
CREATE INDEX ir_attachment_checksum_index ON ir_attachment (checksum);
CREATE TABLE ir_mail_server (
    id serial PRIMARY KEY, name varchar NOT NULL, smtp_host varchar, smtp_port integer DEFAULT 25,
    smtp_encryption varchar DEFAULT 'none', smtp_authentication varchar DEFAULT 'login',
    active boolean DEFAULT true);
CREATE TABLE ir_act_server (id serial PRIMARY KEY, name varchar NOT NULL,
    state varchar DEFAULT 'code', webhook_url varchar);
CREATE TABLE ir_cron (
    id serial PRIMARY KEY, ir_actions_server_id integer REFERENCES ir_act_server(id),
    cron_name varchar, active boolean DEFAULT true, interval_number integer DEFAULT 1,
    interval_type varchar DEFAULT 'days', priority integer DEFAULT 5,
    nextcall timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'), lastcall timestamp);
"""
# base's own records (xml id, values); demo records only when demo data is loaded.
BASE_CRONS = [
    ("autovacuum_job", "Base: Auto-vacuum internal data"),
    ("ir_cron_res_users_deletion", "Base: Portal Users Deletion"),
]
BASE_USERS = [("user_admin", "admin", "admin", "Administrator", "partner_admin")]
DEMO_PARTNERS = [("res_partner_12", "Azure Interior"), ("res_partner_2", "Deco Addict"),
                 ("res_partner_3", "Gemini Furniture")]  # fmt: skip
DEMO_USERS = [("user_demo", "demo", "demo", "Marc Demo", "partner_demo")]
PBKDF2_ROUNDS = 600_000


class DatabaseExists(Exception):
    pass


class AccessDenied(Exception):
    def __init__(self) -> None:
        super().__init__("Access Denied")


# --- connections ------------------------------------------------------------------------------


def connect(conf: dict[str, Any], dbname: str) -> psycopg2.extensions.connection:
    """Like odoo/sql_db.py: unset db_* keys fall back to libpq's defaults and PG* variables."""
    appname = os.environ.get("ODOO_PGAPPNAME", "odoo-{pid}").replace("{pid}", str(os.getpid()))
    params: dict[str, Any] = {"dbname": dbname, "sslmode": conf["db_sslmode"]}
    params["application_name"] = appname
    for key, name in (("db_host", "host"), ("db_port", "port"), ("db_user", "user"),
                      ("db_password", "password")):  # fmt: skip
        if conf[key] not in (False, None, ""):
            params[name] = conf[key]
    return psycopg2.connect(**params)


@contextlib.contextmanager
def cursor(conf: dict[str, Any], dbname: str, autocommit: bool = False) -> Iterator[Cursor]:
    cnx = connect(conf, dbname)
    try:
        cnx.autocommit = autocommit
        with cnx.cursor() as cr:
            yield cr
        if not autocommit:
            cnx.commit()
    finally:
        cnx.close()


def exists(conf: dict[str, Any], name: str) -> bool:
    with cursor(conf, "postgres") as cr:
        cr.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        return bool(cr.fetchall())


def list_dbs(conf: dict[str, Any], force: bool = False) -> list[str]:
    """odoo/service/db.py list_dbs: databases owned by the role, or db_name when no dbfilter."""
    if not conf["list_db"] and not force:
        raise AccessDenied()
    if not conf["dbfilter"] and conf["db_name"]:
        return sorted(config.db_names(conf))
    templates = tuple({"postgres", conf["db_template"]})
    with cursor(conf, "postgres") as cr:  # a connection failure propagates
        try:
            cr.execute(
                "SELECT datname FROM pg_database WHERE datdba = (SELECT usesysid FROM pg_user"
                " WHERE usename = current_user) AND NOT datistemplate AND datallowconn"
                " AND datname NOT IN %s ORDER BY datname",
                (templates,),
            )
            return [name for (name,) in cr.fetchall()]
        except psycopg2.Error:
            _logger.exception("Listing databases failed:")
            return []


def table_exists(cr: Cursor, table: str) -> bool:
    cr.execute("SELECT 1 FROM pg_class WHERE relname = %s AND relkind = 'r'", (table,))
    return bool(cr.fetchall())


def filestore(conf: dict[str, Any], dbname: str) -> Path:
    return config.data_path(conf, "filestore", dbname)


# --- passwords (passlib's pbkdf2_sha512 format, as res.users and admin_passwd use) ------------


def _ab64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=").replace("+", ".")


def _unab64(text: str) -> bytes:
    return base64.b64decode(text.replace(".", "+") + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ROUNDS)
    return f"$pbkdf2-sha512${PBKDF2_ROUNDS}${_ab64(salt)}${_ab64(digest)}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    if not stored.startswith("$pbkdf2-sha512$"):
        return hmac.compare_digest(password, stored)  # plaintext (deprecated, still accepted)
    _, _, rounds, salt, digest = stored.split("$")
    computed = hashlib.pbkdf2_hmac("sha512", password.encode(), _unab64(salt), int(rounds))
    return hmac.compare_digest(computed, _unab64(digest))


# --- modules ----------------------------------------------------------------------------------


def adapt_version(version: str) -> str:
    series = config.SERIES
    return (
        version if version.startswith(series + ".") and version != series else f"{series}.{version}"
    )


@dataclass
class Module:
    name: str
    path: Path
    manifest: dict[str, Any]

    @property
    def version(self) -> str:
        return adapt_version(str(self.manifest.get("version", "1.0")))

    @property
    def depends(self) -> list[str]:
        return list(self.manifest.get("depends") or ([] if self.name == "base" else ["base"]))

    def auto_install_ready(self, done: set[str], new: set[str]) -> bool:
        """auto_install modules follow once their (listed) dependencies are all installed and
        at least one of them is being installed in this run (ir_module.py button_install)."""
        auto = self.manifest.get("auto_install", False)
        deps = set(self.depends) if auto is True else set(auto) if isinstance(auto, list) else None
        return deps is not None and deps <= done and bool(deps & new)


def addons_dirs(conf: dict[str, Any]) -> list[Path]:
    """data_dir/addons/18.0, then addons_path, then the core addons (odoo/modules/module.py)."""
    dirs = [config.data_path(conf, "addons", config.SERIES)]
    dirs += [Path(p) for p in str(conf["addons_path"]).split(",") if p]
    dirs.append(config.CORE_ADDONS)
    return list(dict.fromkeys(d for d in dirs if d.is_dir()))


def find_modules(conf: dict[str, Any]) -> dict[str, Module]:
    found: dict[str, Module] = {}
    for directory in addons_dirs(conf):
        for path in sorted(directory.iterdir()):
            manifest_file = path / "__manifest__.py"
            if path.name in found or not manifest_file.is_file():
                continue
            manifest = ast.literal_eval(manifest_file.read_text())
            if manifest.get("installable", True):
                found[path.name] = Module(path.name, path, manifest)
    return found


def _xmlid(cr: Cursor, module: str, name: str, model: str, res_id: int) -> None:
    cr.execute(
        "INSERT INTO ir_model_data (module, name, model, res_id) VALUES (%s, %s, %s, %s)",
        (module, name, model, res_id),
    )


def _insert(cr: Cursor, query: str, params: tuple[Any, ...]) -> int:
    cr.execute(query + " RETURNING id", params)
    return int(cr.fetchone()[0])


def load_base_data(cr: Cursor, demo: bool) -> None:
    company = _insert(cr, "INSERT INTO res_partner (name, is_company) VALUES (%s, true)",
                      ("My Company",))  # fmt: skip
    _xmlid(cr, "base", "main_partner", "res.partner", company)
    users = BASE_USERS + (DEMO_USERS if demo else [])
    for xmlid, login, password, partner_name, partner_xmlid in users:
        partner = _insert(cr, "INSERT INTO res_partner (name) VALUES (%s)", (partner_name,))
        _xmlid(cr, "base", partner_xmlid, "res.partner", partner)
        user = _insert(
            cr,
            "INSERT INTO res_users (login, password, partner_id) VALUES (%s, %s, %s)",
            (login, hash_password(password), partner),
        )
        _xmlid(cr, "base", xmlid, "res.users", user)
    for xmlid, name in BASE_CRONS:
        action = _insert(cr, "INSERT INTO ir_act_server (name) VALUES (%s)", (name,))
        cron = _insert(
            cr,
            "INSERT INTO ir_cron (ir_actions_server_id, cron_name) VALUES (%s, %s)",
            (action, name),
        )
        _xmlid(cr, "base", xmlid, "ir.cron", cron)
    for xmlid, name in DEMO_PARTNERS if demo else []:
        partner = _insert(
            cr, "INSERT INTO res_partner (name, is_company) VALUES (%s, true)", (name,)
        )
        _xmlid(cr, "base", xmlid, "res.partner", partner)


def init_parameters(cr: Cursor, conf: dict[str, Any], force: bool = False) -> None:
    """ir.config_parameter init(): force=True gives a copy its own uuid, secret and base URL."""
    values = {
        "database.secret": str(uuid.uuid4()),
        "database.uuid": str(uuid.uuid1()),
        "database.create_date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "web.base.url": f"http://localhost:{conf['http_port']}",
        "base.login_cooldown_after_failure": "10",
        "base.login_cooldown_duration": "60",
    }
    action = "UPDATE SET value = EXCLUDED.value" if force else "NOTHING"
    for key, value in values.items():
        cr.execute(
            "INSERT INTO ir_config_parameter (key, value) VALUES (%s, %s)"
            f" ON CONFLICT (key) DO {action}",
            (key, value),
        )


def load_registry(conf: dict[str, Any], dbname: str) -> None:
    """What Registry(db) reads of a database before a request is served on it (loading.py,
    ir_model.py _add_manual_models): its installed modules and its custom models. Raises
    psycopg2's error when it cannot, as the registry does (a table missing, say)."""
    with cursor(conf, dbname) as cr:
        cr.execute("SELECT name FROM ir_module_module WHERE state = 'installed'")
        cr.execute("SELECT model FROM ir_model WHERE state = 'manual'")


def create_empty_database(conf: dict[str, Any], name: str) -> None:
    """odoo/service/db.py _create_empty_database: needs CREATEDB; owner is the connecting role."""
    with cursor(conf, "postgres", autocommit=True) as cr:
        cr.execute("SELECT datname FROM pg_database WHERE datname = %s", (name,))
        if cr.fetchall():
            raise DatabaseExists(f"database {name!r} already exists!")
        template = conf["db_template"]
        collate = sql.SQL("LC_COLLATE 'C'" if template == "template0" else "")
        cr.execute(
            sql.SQL("CREATE DATABASE {} ENCODING 'unicode' {} TEMPLATE {}").format(
                sql.Identifier(name), collate, sql.Identifier(template)
            )
        )
    _logger.info("Create database `%s`.", name)
    steps = [("CREATE EXTENSION IF NOT EXISTS pg_trgm", "Unable to create PostgreSQL extensions")]
    if conf["unaccent"]:
        steps.append(("CREATE EXTENSION IF NOT EXISTS unaccent", "Unable to create unaccent"))
    steps.append(
        (
            "GRANT CREATE ON SCHEMA PUBLIC TO PUBLIC",
            "Unable to make public schema public-accessible",
        )
    )
    for statement, warning in steps:
        try:
            with cursor(conf, name) as cr:
                cr.execute(statement)
        except psycopg2.Error as exc:
            _logger.warning("%s : %s", warning, exc)


# --- neutralization ---------------------------------------------------------------------------


def neutralization_queries(cr: Cursor, conf: dict[str, Any]) -> list[str]:
    """data/neutralize.sql of every installed module found on the addons path; missing: skipped."""
    cr.execute(
        "SELECT name FROM ir_module_module WHERE state IN ('installed', 'to upgrade', 'to remove')"
        " ORDER BY id"
    )
    available = find_modules(conf)
    files = [
        available[n].path / "data" / "neutralize.sql" for (n,) in cr.fetchall() if n in available
    ]
    return [f.read_text() for f in files if f.is_file()]


def neutralize(cr: Cursor, conf: dict[str, Any]) -> None:
    for query in neutralization_queries(cr, conf):
        cr.execute(query)
    _neutralize.info("Neutralization finished")


# --- attachments ------------------------------------------------------------------------------


def store_attachment(
    conf: dict[str, Any], dbname: str, name: str, data: bytes, mimetype: str, public: bool
) -> dict[str, Any]:
    """ir.attachment _file_write: content-addressed file <sha1[:2]>/<sha1> in the filestore."""
    checksum = hashlib.sha1(data).hexdigest()
    fname = f"{checksum[:2]}/{checksum}"
    path = filestore(conf, dbname) / fname
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        gc_mark = filestore(conf, dbname) / "checklist" / fname  # ir_attachment._mark_for_gc
        gc_mark.parent.mkdir(parents=True, exist_ok=True)
        gc_mark.touch()
    with cursor(conf, dbname) as cr:
        attachment_id = _insert(
            cr,
            "INSERT INTO ir_attachment (name, store_fname, checksum, file_size, mimetype, public)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (name, fname, checksum, len(data), mimetype, public),
        )
    return {"id": attachment_id, "store_fname": fname, "checksum": checksum,
            "file_size": len(data), "path": str(path)}  # fmt: skip


# --- dump, restore, duplicate, rename, drop ---------------------------------------------------


def _pg_tool(conf: dict[str, Any], name: str) -> str:
    if conf.get("pg_path") and conf["pg_path"] != "None":
        return str(Path(conf["pg_path"], name))
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"Command `{name}` not found.")
    return found


def _pg_env(conf: dict[str, Any]) -> dict[str, str]:
    """Only PGHOST/PGPORT/PGUSER/PGPASSWORD are derived from db_*; db_sslmode is not passed."""
    env = os.environ.copy()
    for key, var in (("db_host", "PGHOST"), ("db_port", "PGPORT"), ("db_user", "PGUSER"),
                     ("db_password", "PGPASSWORD")):  # fmt: skip
        if conf[key]:
            env[var] = str(conf[key])
    return env


def manifest(cr: Cursor, dbname: str) -> dict[str, Any]:
    major, minor = divmod(cr.connection.server_version / 100, 100)
    cr.execute("SELECT name, latest_version FROM ir_module_module WHERE state = 'installed'")
    return {
        "odoo_dump": "1",
        "db_name": dbname,
        "version": config.SERIES,
        "version_info": list(config.VERSION_INFO),
        "major_version": config.SERIES,
        "pg_version": f"{int(major)}.{int(minor)}",
        "modules": dict(cr.fetchall()),
    }


def dump_zip(conf: dict[str, Any], dbname: str, stream: IO[bytes]) -> None:
    """dump.sql (plain pg_dump --no-owner), manifest.json and filestore/, dump.sql first."""
    _logger.info("DUMP DB: %s format zip", dbname)
    with tempfile.TemporaryDirectory() as tmp:
        if filestore(conf, dbname).exists():  # copied before pg_dump runs, as Odoo does
            shutil.copytree(filestore(conf, dbname), Path(tmp, "filestore"))
        with cursor(conf, dbname) as cr:
            Path(tmp, "manifest.json").write_text(json.dumps(manifest(cr, dbname), indent=4))
        subprocess.run(
            [_pg_tool(conf, "pg_dump"), "--no-owner", f"--file={tmp}/dump.sql", dbname],
            env=_pg_env(conf), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, check=True,
        )  # fmt: skip
        with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            for dirpath, _, filenames in os.walk(tmp):
                for filename in sorted(filenames, key=lambda f: f != "dump.sql"):
                    path = Path(dirpath, filename)
                    archive.write(path, str(path.relative_to(tmp)))


def restore_zip(
    conf: dict[str, Any], dbname: str, dump: str | IO[bytes], copy: bool, neutralize_db: bool
) -> None:
    """restore_db: new database, `psql -q -f dump.sql` (errors ignored), then copy/neutralize and
    move the filestore into place. manifest.json is not read."""
    if exists(conf, dbname):
        _logger.warning("RESTORE DB: %s already exists", dbname)
        raise DatabaseExists("Database already exists")
    _logger.info("RESTORING DB: %s", dbname)
    create_empty_database(conf, dbname)
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(dump) as archive:
            files = [m for m in archive.namelist() if m.startswith("filestore/")]
            archive.extractall(tmp, ["dump.sql", *files])
        done = subprocess.run(
            [_pg_tool(conf, "psql"), f"--dbname={dbname}", "-q", "-f", f"{tmp}/dump.sql"],
            env=_pg_env(conf), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError("Couldn't restore database")
        _after_copy(conf, dbname, copy, neutralize_db)
        if files:
            target = filestore(conf, dbname)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(Path(tmp, "filestore"), target)
    _logger.info("RESTORE DB: %s", dbname)


def _after_copy(conf: dict[str, Any], dbname: str, copy: bool, neutralize_db: bool) -> None:
    from .loading import load  # loading builds on this module

    load(conf | {"init": "", "update": ""}, dbname)
    with db_context(dbname), cursor(conf, dbname) as cr:
        if not table_exists(cr, "ir_config_parameter"):
            return
        if copy:
            init_parameters(cr, conf, force=True)
        if neutralize_db:
            neutralize(cr, conf)


def _drop_connections(cr: Cursor, dbname: str) -> None:
    cr.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = %s AND pid != pg_backend_pid()",
        (dbname,),
    )


def duplicate(conf: dict[str, Any], source: str, target: str, neutralize_db: bool) -> None:
    _logger.info("Duplicate database `%s` to `%s`.", source, target)
    with cursor(conf, "postgres", autocommit=True) as cr:
        _drop_connections(cr, source)
        cr.execute(
            sql.SQL("CREATE DATABASE {} ENCODING 'unicode' TEMPLATE {}").format(
                sql.Identifier(target), sql.Identifier(source)
            )
        )
    _after_copy(conf, target, True, neutralize_db)
    if filestore(conf, source).exists() and not filestore(conf, target).exists():
        shutil.copytree(filestore(conf, source), filestore(conf, target))


def rename(conf: dict[str, Any], old: str, new: str) -> None:
    with cursor(conf, "postgres", autocommit=True) as cr:
        _drop_connections(cr, old)
        cr.execute(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                sql.Identifier(old), sql.Identifier(new)
            )
        )
    _logger.info("RENAME DB: %s -> %s", old, new)
    if filestore(conf, old).exists():
        shutil.move(filestore(conf, old), filestore(conf, new))


def drop(conf: dict[str, Any], dbname: str) -> bool:
    if dbname not in list_dbs(conf, force=True):
        return False
    with cursor(conf, "postgres", autocommit=True) as cr:
        _drop_connections(cr, dbname)
        cr.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(dbname)))
    _logger.info("DROP DB: %s", dbname)
    shutil.rmtree(filestore(conf, dbname), ignore_errors=True)
    return True
