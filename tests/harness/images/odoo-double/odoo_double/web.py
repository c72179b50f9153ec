"""HTTP: the routes a deployment touches (odoo18-facts.md sections 3, 4, 5, 8).

One ThreadingHTTPServer on http_interface:http_port. With workers > 0 a second listener on
gevent_port stands in for the gevent process: it serves the whole app and is the only one that
can upgrade /websocket, as in Odoo's prefork mode. Routes of modules that are not server-wide
(bus: /websocket) exist only once a database is resolved (session, monodb, dbfilter/db_name).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import re
import secrets
import socket
import struct
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from string import Template
from typing import Any

import psycopg2

from . import config, database, db_context

_logger = logging.getLogger("odoo.http")
_access = logging.getLogger("werkzeug")
HERE = Path(__file__).parent
LOGIN_PAGE = Template((HERE / "login.html").read_text())
MANAGER_PAGE = Template((HERE / "manager.html").read_text())
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WS_HEADERS = (
    "connection",
    "host",
    "sec-websocket-key",
    "sec-websocket-version",
    "upgrade",
    "origin",
)
MAX_BODY = 128 * 1024 * 1024
DBNAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$"
DISABLED = "The database manager has been disabled by the administrator"
INSECURE = "Warning, your Odoo database manager is not protected. Please set a master password."
NOT_FOUND = "The requested URL was not found on the server."
SESSION_MAX_AGE = 7 * 24 * 3600


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


class HttpError(Exception):
    def __init__(self, status: int, message: str, headers: list[tuple[str, str]] | None = None):
        super().__init__(message)
        page = f"<!doctype html>\n<title>{status}</title>\n<p>{html.escape(message)}</p>\n"
        self.response = Response(status, page.encode(), headers=headers or [])


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    scheme: str
    host: str
    remote_addr: str
    proxied: bool
    cookies: dict[str, str]
    form: dict[str, str] = field(default_factory=dict)

    def param(self, name: str, default: str = "") -> str:
        return self.form.get(name) or (self.query.get(name) or [default])[0]

    def parse_form(self) -> None:
        ctype = self.headers.get("Content-Type", "")
        if ctype.startswith("application/x-www-form-urlencoded"):
            self.form = dict(urllib.parse.parse_qsl(self.body.decode(), keep_blank_values=True))


def _json(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(payload).encode()
    return Response(status, body, "application/json; charset=utf-8", headers or [])


def _redirect(location: str, *headers: tuple[str, str]) -> Response:
    return Response(303, b"", headers=[("Location", location), *headers])


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: App, can_upgrade: bool) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)
        self.app, self.can_upgrade = app, can_upgrade


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Werkzeug/3.0.1"
    sys_version = "Python/3.12.3"
    server: Server

    def do_GET(self) -> None:
        started = time.monotonic()
        try:
            response = self.server.app.dispatch(self._read_request(), self)
        except HttpError as exc:
            response = exc.response
        if response is not None:  # None: the websocket took the connection over
            self._send(response)
        perf = f"0 0.000 {time.monotonic() - started:.3f}"
        _access.info(
            '%s - - [%s] "%s" %s -',
            *(self.client_address[0], self.log_date_time_string(), self.requestline),
            response.status if response else 101,
            extra={"perf_info": perf},
        )

    do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # do_GET writes the access line in werkzeug's format

    def log_error(self, format: str, *args: Any) -> None:
        _logger.info(format, *args)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = bytearray()
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline().strip():
                pass
            return bytes(body)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY and not self.path.startswith("/web/database/restore"):
            self.close_connection = True
            raise HttpError(413, "The data value transmitted exceeds the capacity limit.")
        return self.rfile.read(length) if length else b""

    def _read_request(self) -> Request:
        url, headers = urllib.parse.urlsplit(self.path), self.headers
        scheme, host, remote = "http", headers.get("Host", ""), self.client_address[0]
        proxied = bool(self.server.app.conf["proxy_mode"]) and "X-Forwarded-Host" in headers
        if proxied:  # werkzeug ProxyFix(x_for=1, x_proto=1, x_host=1): the last hop is trusted

            def last(name: str, default: str) -> str:
                return (headers.get(name) or default).split(",")[-1].strip()

            remote, scheme = last("X-Forwarded-For", remote), last("X-Forwarded-Proto", scheme)
            host = last("X-Forwarded-Host", host)
        cookies = {k: v.value for k, v in SimpleCookie(headers.get("Cookie", "")).items()}
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        request = Request(
            self.command, url.path, query, headers, self._read_body(),
            scheme, host, remote, proxied, cookies,
        )  # fmt: skip
        request.parse_form()
        return request

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)


Route = Callable[[Request, "str | None"], Response]


class App:
    def __init__(self, conf: dict[str, Any]) -> None:
        self.conf = conf
        self.routes: dict[str, tuple[str, Route]] = {
            "/": ("web", lambda request, db: _redirect("/odoo")),
            "/odoo": ("web", self.backend),
            "/web": ("web", self.backend),
            "/web/health": ("web", self.health),
            "/web/login": ("web", self.login),
            "/web/session/authenticate": ("web", self.authenticate),
            "/web/database/selector": (
                "web",
                lambda request, db: self.manager_page(request, False),
            ),
            "/web/database/manager": ("web", lambda request, db: self.manager_page(request)),
            "/web/database/list": ("web", self.database_list),
            "/jsonrpc": ("base", self.jsonrpc),
            "/websocket/health": ("bus", self.health),
            "/dfr-test-double/request-info": ("web", self.hook_request_info),
            "/dfr-test-double/attachment": ("web", self.hook_attachment),
        }
        self.db_ops = {
            "create": "Database creation error",
            "duplicate": "Database duplication error",
            "drop": "Database deletion error",
            "backup": "Database backup error",
            "restore": "Database restore error",
            "change_password": "Master password update error",
        }

    # --- database selection (odoo/http.py db_filter, db_list, monodb) --------------------

    def db_filter(self, dbs: list[str], host: str) -> list[str]:
        if self.conf["dbfilter"]:
            host = host.partition(":")[0].removeprefix("www.")
            domain = host.partition(".")[0]
            pattern = self.conf["dbfilter"].replace("%h", re.escape(host))
            pattern = pattern.replace("%d", re.escape(domain))
            return [db for db in dbs if re.match(pattern, db)]
        if self.conf["db_name"]:
            return sorted(set(config.db_names(self.conf)) & set(dbs))
        return list(dbs)

    def db_list(self, host: str, force: bool = False) -> list[str]:
        return self.db_filter(database.list_dbs(self.conf, force), host)

    def resolve_db(self, request: Request) -> str | None:
        for candidate in (request.param("db"), self.session(request).get("db")):
            if candidate and self.db_filter([candidate], request.host):
                return candidate
        try:
            dbs = self.db_list(request.host, force=True)
        except psycopg2.Error:
            return None
        return dbs[0] if len(dbs) == 1 else None

    def installed(self, db: str) -> set[str]:
        try:
            with database.cursor(self.conf, db) as cr:
                if not database.table_exists(cr, "ir_module_module"):
                    return set()
                cr.execute("SELECT name FROM ir_module_module WHERE state = 'installed'")
                return {name for (name,) in cr.fetchall()}
        except psycopg2.Error:
            return set()

    # --- sessions: files in <data_dir>/sessions/<sid[:2]>/<sid> --------------------------

    def session(self, request: Request) -> dict[str, Any]:
        sid = request.cookies.get("session_id", "")
        path = config.data_path(self.conf, "sessions", sid[:2], sid)
        if re.fullmatch(r"[\w-]{84}", sid) and path.is_file():
            return {**json.loads(path.read_text()), "sid": sid}
        return {}

    def save_session(self, data: dict[str, Any]) -> tuple[str, str]:
        sid = data.pop("sid", None) or secrets.token_urlsafe(63)
        path = config.data_path(self.conf, "sessions", sid[:2], sid)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.write_text(json.dumps(data))
        expires = datetime.fromtimestamp(time.time() + SESSION_MAX_AGE, UTC)
        stamp = expires.strftime("%a, %d %b %Y %H:%M:%S GMT")
        cookie = f"session_id={sid}; Expires={stamp}; Max-Age={SESSION_MAX_AGE}; HttpOnly; Path=/"
        return ("Set-Cookie", cookie)

    # --- dispatch ------------------------------------------------------------------------

    def dispatch(self, request: Request, handler: Handler) -> Response | None:
        module, route = self.routes.get(request.path, (None, None))
        if request.path == "/websocket":
            module = "bus"
        elif request.path.startswith("/web/content/"):
            module, route = "web", self.content
        elif request.path.startswith("/web/filestore/"):
            module, route = "web", self.filestore_location
        elif request.path.startswith("/web/database/") and request.method == "POST":
            module, route = "web", self.database_op
        db = self.resolve_db(request) if request.path != "/web/health" else None
        available = config.modules_arg(self.conf["server_wide_modules"])
        if module not in available and not (db and module in self.installed(db)):
            raise HttpError(404, NOT_FOUND)
        with db_context(db):
            try:
                if module == "bus" and route is None:
                    return self.websocket(request, handler)
                assert route is not None
                return route(request, db)
            except HttpError:
                raise
            except Exception:
                _logger.exception("Exception during request handling.")
                raise HttpError(500, "Internal Server Error") from None

    # --- web -----------------------------------------------------------------------------

    def health(self, request: Request, db: str | None) -> Response:
        if request.query:
            _logger.warning("<function Home.health> called ignoring args %s", set(request.query))
        return _json(200, {"status": "pass"}, [("Cache-Control", "no-store")])

    def backend(self, request: Request, db: str | None) -> Response:
        session = self.session(request)
        if not db:
            return _redirect("/web/database/selector")
        if not session.get("uid") or session.get("db") != db:
            return _redirect("/web/login?redirect=%2Fodoo")
        text = f"Odoo test double: {html.escape(db)}, uid {session['uid']}"
        return Response(200, f"<!DOCTYPE html><title>Odoo</title><body>{text}</body>".encode())

    def login(self, request: Request, db: str | None) -> Response:
        if not db:
            return _redirect("/web/database/selector")
        try:
            database.load_registry(self.conf, db)
        except psycopg2.Error:
            # odoo/http.py _serve_db: a registry that fails to load is dropped from the session
            # and the request served without a database; web_login's ensure_db finds the single
            # database again and redirects to the same URL, a loop the browser ends.
            _logger.exception("Failed to load the registry of database %s", db)
            query = urllib.parse.urlencode(request.query, doseq=True)
            location = request.path + (f"?{query}" if query else "")
            return Response(302, b"", headers=[("Location", location)])
        error, session = "", self.session(request)
        if request.method == "POST":  # no CSRF check in the double
            login = request.param("login")
            with database.cursor(self.conf, db) as cr:
                cr.execute(
                    "SELECT id, password FROM res_users WHERE login = %s AND active", (login,)
                )
                row = cr.fetchone()
            if row and database.verify_password(request.param("password"), row[1]):
                cookie = self.save_session({**session, "db": db, "uid": row[0], "login": login})
                return _redirect(request.param("redirect") or "/odoo", cookie)
            error = '<p class="alert alert-danger" role="alert">Wrong login/password</p>'
        cookie = self.save_session({**session, "db": db})
        manage = (
            '<a href="/web/database/manager">Manage Databases</a> ' if self.conf["list_db"] else ""
        )
        page = LOGIN_PAGE.substitute(
            csrf=secrets.token_hex(20),
            db=html.escape(db),
            login=html.escape(request.param("login")),
            redirect=html.escape(request.param("redirect")),
            error=error,
            manage=manage,
        )
        return Response(200, page.encode(), headers=[cookie])

    def authenticate(self, request: Request, db: str | None) -> Response:
        """JSON-RPC login (web/controllers/session.py): the session's info, or AccessDenied."""
        params = json.loads(request.body or b"{}").get("params", {})
        name, login = params.get("db"), params.get("login")

        def run() -> dict[str, Any]:
            if not name or name not in self.db_filter([name], request.host):
                raise database.AccessDenied()
            with database.cursor(self.conf, name) as cr:
                cr.execute(
                    "SELECT id, password FROM res_users WHERE login = %s AND active", (login,)
                )
                row = cr.fetchone()
            if not row or not database.verify_password(params.get("password") or "", row[1]):
                _logger.info("Login failed for db:%s login:%s", name, login)
                raise database.AccessDenied()
            _logger.info("Login successful for db:%s login:%s", name, login)
            return {"uid": row[0], "db": name, "username": login}

        return self._rpc(request, run)

    def manager_page(self, request: Request, manage: bool = True, error: str = "") -> Response:
        """Manager and selector pages; with list_db off they say so (database_manager.qweb)."""
        list_db = bool(self.conf["list_db"])
        alerts = []
        if list_db and manage and self.insecure():
            alerts.append(f'<div class="alert alert-warning">{INSECURE}</div>')
        if not list_db:
            alerts.append(f'<div class="alert alert-danger text-center">{DISABLED}</div>')
        if error:
            alerts.append(f'<div class="alert alert-danger">{html.escape(error)}</div>')
        links = ""
        if list_db:
            dbs = self.db_list(request.host)
            link = '<a href="/odoo?db={0}" class="list-group-item">{0}</a>'
            links = "".join(link.format(html.escape(db)) for db in dbs)
        page = MANAGER_PAGE.substitute(alerts="\n".join(alerts), databases=links)
        return Response(200, page.encode())

    # --- database manager operations (web/controllers/database.py, service/db.py) --------

    def verify_admin_password(self, password: str) -> bool:
        """An empty (or False) admin_passwd refuses every master-password operation."""
        stored = self.conf["admin_passwd"]
        return (
            isinstance(stored, str) and bool(stored) and database.verify_password(password, stored)
        )

    def insecure(self) -> bool:
        return self.verify_admin_password("admin")

    def check_super(self, password: str) -> None:
        """dispatch_rpc's check_super, then the list_db guard of every exp_* function."""
        if not password or not self.verify_admin_password(password):
            raise database.AccessDenied()
        if not self.conf["list_db"]:
            raise database.AccessDenied()

    def database_op(self, request: Request, db: str | None) -> Response:
        name = request.path.rsplit("/", 1)[-1]
        if name not in self.db_ops:
            raise HttpError(404, NOT_FOUND)
        label, master = self.db_ops[name], request.param("master_pwd")
        if name != "change_password" and master and self.insecure():
            # While admin_passwd is the default, the caller's master_pwd replaces it. Odoo does
            # this outside the error handling: with list_db off it is a 422 "Access Denied".
            if not self.conf["list_db"]:
                raise HttpError(422, "Access Denied")
            self.conf["admin_passwd"] = master
        try:
            self.check_super(master)
        except database.AccessDenied as exc:
            return self.manager_page(request, error=f"{label}: {exc}")
        # Allowed: the double does not run web manager operations (use `odoo db`).
        raise HttpError(501, f"/web/database/{name} is not implemented by the Odoo test double")

    def database_list(self, request: Request, db: str | None) -> Response:
        return self._rpc(request, lambda: self.db_list(request.host))

    def jsonrpc(self, request: Request, db: str | None) -> Response:
        """/jsonrpc: common.version and the db service methods that need no master password."""
        params = json.loads(request.body or b"{}").get("params", {})
        call, args = (params.get("service"), params.get("method")), params.get("args") or [""]

        def run() -> Any:
            if call == ("common", "version"):
                info = list(config.VERSION_INFO)
                return {"server_version": config.SERIES, "server_version_info": info,
                        "server_serie": config.SERIES, "protocol_version": 1}  # fmt: skip
            if call == ("db", "list"):
                if not self.conf["list_db"]:
                    raise database.AccessDenied()
                return database.list_dbs(self.conf)
            if call == ("db", "server_version"):
                return config.SERIES
            if call == ("db", "db_exist"):
                return database.exists(self.conf, args[0])
            if call[0] == "db":
                self.check_super(args[0])
            raise NotImplementedError(f"{call} is not implemented by the Odoo test double")

        return self._rpc(request, run)

    def _rpc(self, request: Request, run: Callable[[], Any]) -> Response:
        try:
            rpc_id = json.loads(request.body or b"{}").get("id")
        except ValueError:
            rpc_id = None
        try:
            return _json(200, {"jsonrpc": "2.0", "id": rpc_id, "result": run()})
        except Exception as exc:
            denied = isinstance(exc, database.AccessDenied)
            kind = "odoo.exceptions.AccessDenied" if denied else f"builtins.{type(exc).__name__}"
            data = {"name": kind, "debug": "", "message": str(exc), "arguments": [str(exc)]}
            error = {"code": 200, "message": "Odoo Server Error", "data": data | {"context": {}}}
            return _json(200, {"jsonrpc": "2.0", "id": rpc_id, "error": error})

    # --- attachments ---------------------------------------------------------------------

    def content(self, request: Request, db: str | None) -> Response:
        """/web/content/<id> for public attachments; with x_sendfile the web server sends it."""
        attachment_id = request.path.removeprefix("/web/content/").split("/")[0]
        if not db or not attachment_id.isdigit():
            raise HttpError(404, NOT_FOUND)
        with database.cursor(self.conf, db) as cr:
            cr.execute(
                "SELECT name, store_fname, mimetype FROM ir_attachment WHERE id = %s AND public",
                (int(attachment_id),),
            )
            row = cr.fetchone()
        if not row:
            raise HttpError(404, NOT_FOUND)
        name, fname, mimetype = row
        path = database.filestore(self.conf, db) / fname
        headers = [("Content-Disposition", f"inline; filename*=UTF-8''{urllib.parse.quote(name)}")]
        if self.conf["x_sendfile"]:  # odoo/http.py:578-593
            headers += [
                ("X-Sendfile", str(path)),
                ("X-Accel-Redirect", f"/web/filestore/{db}/{fname}"),
            ]
            return Response(200, b"", mimetype, headers)
        return Response(200, path.read_bytes(), mimetype, headers)

    def filestore_location(self, request: Request, db: str | None) -> Response:
        if self.conf["x_sendfile"]:
            _logger.error(
                "X-Sendfile is on but %s reached Odoo: the web server needs an internal"
                " `location /web/filestore` aliased to the filestore directory",
                request.path,
            )
        raise HttpError(404, NOT_FOUND)

    # --- bus: /websocket (bus/websocket.py) ----------------------------------------------

    def websocket(self, request: Request, handler: Handler) -> None:
        headers = request.headers
        try:
            if missing := sorted(h for h in WS_HEADERS if not headers.get(h)):
                raise HttpError(400, f"Empty or missing header(s): {', '.join(missing)}")
            if headers["upgrade"].lower() != "websocket":
                raise HttpError(400, f'Invalid upgrade header: "{headers["upgrade"]}"')
            if "upgrade" not in [t.strip() for t in headers["connection"].lower().split(",")]:
                raise HttpError(400, f'Invalid connection header: "{headers["connection"]}"')
            if headers["sec-websocket-version"] != "13":
                raise HttpError(426, "Upgrade Required", [("Sec-WebSocket-Version", "13")])
            try:
                key_ok = len(base64.b64decode(headers["sec-websocket-key"], validate=True)) == 16
            except ValueError:
                key_ok = False
            if not key_ok:
                raise HttpError(400, "Sec-WebSocket-Key should be b64 encoded, 16 bytes decoded")
        except HttpError as exc:
            _logger.error(exc)
            raise
        if not handler.server.can_upgrade:  # prefork HTTP workers do not expose the socket
            port = self.conf["gevent_port"]
            raise RuntimeError(
                "Couldn't bind the websocket. Is the connection opened on the evented port"
                f" ({port})?"
            )
        digest = hashlib.sha1((headers["sec-websocket-key"] + WS_GUID).encode()).digest()
        handler.send_response(101)
        handler.send_header("Upgrade", "websocket")
        handler.send_header("Connection", "Upgrade")
        handler.send_header("Sec-WebSocket-Accept", base64.b64encode(digest).decode())
        handler.end_headers()
        handler.wfile.flush()
        handler.close_connection = True
        _serve_websocket(handler.connection, int(self.conf["websocket_keep_alive_timeout"]))

    # --- test hooks: NOT Odoo routes; they exist only in the test double ------------------

    def hook_request_info(self, request: Request, db: str | None) -> Response:
        """What the double saw after proxy_mode handling, for proxy tests."""
        info = {
            "scheme": request.scheme,
            "host": request.host,
            "remote_addr": request.remote_addr,
            "proxy_fix_applied": request.proxied,
            "db": db,
            "headers": dict(request.headers.items()),
        }
        return _json(200, info)

    def hook_attachment(self, request: Request, db: str | None) -> Response:
        """POST bytes: stored as ir.attachment stores them (filestore <sha1[:2]>/<sha1> + row)."""
        if request.method != "POST":
            raise HttpError(405, "The method is not allowed for the requested URL.")
        if not db:
            return _json(404, {"error": "no database: pass ?db= or expose a single database"})
        mimetype = request.headers.get("Content-Type") or "application/octet-stream"
        public = request.param("public", "1") not in ("0", "false", "False")
        name = request.param("name", "attachment")
        stored = database.store_attachment(self.conf, db, name, request.body, mimetype, public)
        return _json(200, stored | {"db": db})


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("websocket closed")
        data += chunk
    return data


def _frame(opcode: int, payload: bytes = b"") -> bytes:
    return bytes([0x80 | opcode, len(payload)]) + payload  # control frames: payload < 126


def _serve_websocket(sock: socket.socket, lifetime: int) -> None:
    """Hold the connection: answer pings and the close handshake, ping after 45 s of silence,
    close after the keep-alive lifetime (+0-50%). Client messages are read and ignored."""
    deadline = time.monotonic() + lifetime * (1 + secrets.randbelow(50) / 100)
    sock.settimeout(45)
    try:
        while time.monotonic() < deadline:
            try:
                head = _recv_exact(sock, 2)
            except TimeoutError:
                sock.sendall(_frame(0x9))
                continue
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length in (126, 127):
                extended = _recv_exact(sock, 2 if length == 126 else 8)
                length = struct.unpack("!H" if length == 126 else "!Q", extended)[0]
            if length > 2**20:  # 1 MiB message limit
                sock.sendall(_frame(0x8, struct.pack("!H", 1009)))
                return
            mask = _recv_exact(sock, 4) if head[1] & 0x80 else b""
            payload = _recv_exact(sock, length)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x8:
                sock.sendall(_frame(0x8, payload[:2]))
                return
            if opcode == 0x9:
                sock.sendall(_frame(0xA, payload[:125]))
        sock.sendall(_frame(0x8, struct.pack("!H", 1000)))
    except (ConnectionError, OSError):
        return
