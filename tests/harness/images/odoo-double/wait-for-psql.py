#!/usr/bin/env python3
"""Wait until PostgreSQL accepts a connection to the `postgres` database (test double of the
official image's /usr/local/bin/wait-for-psql.py, odoo18-facts.md 9.3).

Each of db_host, db_port, db_user, db_password comes from $ODOO_RC [options] first, then from
the command line, then from PG* variables; a missing one is an error. db_sslmode is ignored.
"""

from __future__ import annotations

import argparse
import configparser
import os
import sys
import time

import psycopg2

KEYS = {"db_host": "PGHOST", "db_port": "PGPORT", "db_user": "PGUSER", "db_password": "PGPASSWORD"}


def main() -> int:
    parser = argparse.ArgumentParser()
    for key in KEYS:
        parser.add_argument(f"--{key}")
    parser.add_argument("--timeout", type=int, default=5)
    args = vars(parser.parse_args())
    rc = configparser.RawConfigParser()
    if os.environ.get("ODOO_RC"):
        rc.read(os.environ["ODOO_RC"])
    values = {}
    for key, env in KEYS.items():
        value = rc.get("options", key, fallback=None) or args[key] or os.environ.get(env)
        if not value:
            print(f"Missing {key}: not in $ODOO_RC, the arguments or ${env}", file=sys.stderr)
            return 1
        values[key] = value
    deadline, error = time.time() + args["timeout"], ""
    while time.time() < deadline:
        try:
            psycopg2.connect(
                host=values["db_host"], port=values["db_port"], user=values["db_user"],
                password=values["db_password"], dbname="postgres",
            ).close()  # fmt: skip
            return 0
        except psycopg2.OperationalError as exc:
            error = str(exc)
        time.sleep(1)
    print(f"Database connection failure: {error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
