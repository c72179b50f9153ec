#!/usr/bin/env python3
"""Print the state of Odoo's database: missing, empty (exists, not initialised) or ready.

Reads the connection from $ODOO_RC like Odoo does; exits 2 if PostgreSQL cannot be reached.
"""

import configparser
import os
import sys

import psycopg2

config = configparser.RawConfigParser()
config.read(os.environ["ODOO_RC"])
options = dict(config["options"])
db_name = options.get("db_name") or ""
if not db_name or db_name == "False":
    print("no db_name in the configuration", file=sys.stderr)
    sys.exit(3)
connect = {
    "host": options.get("db_host"),
    "port": options.get("db_port"),
    "user": options.get("db_user"),
    "password": options.get("db_password"),
}
try:
    with psycopg2.connect(dbname="postgres", **connect) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db_name,))
        exists = cur.fetchone() is not None
    if not exists:
        print("missing")
        sys.exit(0)
    with psycopg2.connect(dbname=db_name, **connect) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('public.ir_module_module') IS NOT NULL")
        print("ready" if cur.fetchone()[0] else "empty")
except psycopg2.OperationalError as error:
    print(f"cannot reach PostgreSQL: {error}".strip(), file=sys.stderr)
    sys.exit(2)
