#!/bin/bash
# Runs once, when the official entrypoint initialises an empty data directory: the role Odoo
# connects as (not a superuser, may create databases) and its database, owned by it, created
# the way Odoo creates databases (UTF8, template0, C collation).
set -euo pipefail
: "${DFR_DB_USER:?DFR_DB_USER is not set}"
: "${DFR_DB_NAME:?DFR_DB_NAME is not set}"
: "${DFR_DB_PASSWORD_FILE:?DFR_DB_PASSWORD_FILE is not set}"

# The password is read by psql itself (\set with backticks), never put on a command line, and
# the session logs no statement (it would carry the password).
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v role="$DFR_DB_USER" -v db="$DFR_DB_NAME" <<'SQL'
\set VERBOSITY terse
SET log_statement = 'none';
SET log_min_duration_statement = -1;
SET log_min_error_statement = 'panic';
\set password `cat "$DFR_DB_PASSWORD_FILE"`
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER CREATEDB NOCREATEROLE PASSWORD %L',
              :'role', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'role', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0 LC_COLLATE %L',
              :'db', :'role', 'UTF8', 'C')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
echo "dfr initdb: role ${DFR_DB_USER} and database ${DFR_DB_NAME} ready"
