"""A test double of the Odoo 18 server for the dfr-deploy integration tests. It is NOT Odoo.

It honours the deployment-facing contract of the official odoo:18.0 image as written down in
odoo18-facts.md (config, CLI, database layout, HTTP routes, websocket, logging, signals). See
docs/odoo-test-double.md for what it does and does not do.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

_local = threading.local()
# log_level presets, applied to the `odoo` and `werkzeug` loggers (odoo/netsvc.py:292-302).
PRESETS = {
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "debug": logging.DEBUG,
    "debug_rpc": logging.DEBUG,
    "debug_rpc_answer": logging.DEBUG,
    "debug_sql": logging.DEBUG,
    "notset": logging.NOTSET,
}


@contextlib.contextmanager
def db_context(dbname: str | None) -> Iterator[None]:
    """The database shown in log lines of this thread (`?` when there is none)."""
    previous = getattr(_local, "dbname", None)
    _local.dbname = dbname
    try:
        yield
    finally:
        _local.dbname = previous


class _Context(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.pid = os.getpid()
        record.dbname = getattr(_local, "dbname", None) or "?"
        record.perf_info = getattr(record, "perf_info", "")
        return True


def setup_logging(conf: dict[str, Any]) -> None:
    """Odoo's format (odoo/netsvc.py): `time pid LEVEL dbname logger: message perf`, UTC."""
    os.environ["TZ"] = "UTC"
    time.tzset()
    handler: logging.Handler
    if conf.get("logfile"):
        handler = logging.handlers.WatchedFileHandler(conf["logfile"])
    else:
        handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter(
        "%(asctime)s %(pid)s %(levelname)s %(dbname)s %(name)s: %(message)s %(perf_info)s"
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(_Context())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    preset = PRESETS.get(str(conf.get("log_level") or "info"))
    if preset is not None:
        for name in ("odoo", "werkzeug"):
            logging.getLogger(name).setLevel(preset)
    for spec in str(conf.get("log_handler") or "").split(","):
        name, _, level = spec.strip().partition(":")
        if level:
            logging.getLogger(name or None).setLevel(getattr(logging, level.upper(), logging.INFO))
