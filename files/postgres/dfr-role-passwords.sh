#!/bin/bash
# On a cluster made before (PGDATA holds one): brings the passwords of the superuser and of
# Odoo's role in line with the secrets before the server starts. The official entrypoint sets
# them only when it creates the cluster; with this, rotating one is "edit the secrets file,
# deploy". Run by dfr-secrets-entrypoint.sh as root with the server's arguments; the SQL runs
# as postgres against a temporary server listening on the socket only, as the official
# image's initialisation does. psql reads the passwords from the secret files and the session
# logs no statement: they reach neither a command line nor a log.
set -euo pipefail

case "${1:-}" in
  postgres) shift ;;
  -*) ;;
  *) exit 0 ;; # another program (psql, pg_dump, a shell …): no server to start
esac
[ -s "$PGDATA/PG_VERSION" ] || exit 0 # a new cluster: initdb and initdb/ set them

if [ "$(id -u)" = 0 ]; then
  # The socket's directory, as the official entrypoint makes it (here on the /run tmpfs).
  install -d -o postgres -g postgres -m 3775 /var/run/postgresql
  exec gosu postgres "$0" postgres "$@"
fi

superuser=${POSTGRES_USER:-postgres}
echo "dfr: setting the passwords of the roles $superuser and $DFR_DB_USER from the secrets"
# No time limit: after a crash the temporary server does the recovery, which on a large cluster
# may outlast pg_ctl's default minute; giving up would start it all over again.
pg_ctl -D "$PGDATA" -w -t 86400 -o "$(printf '%q ' "$@") -c listen_addresses=''" start
trap 'pg_ctl -D "$PGDATA" -m fast -w stop' EXIT
psql -X -q -v ON_ERROR_STOP=1 --host=/var/run/postgresql --username="$superuser" \
  --no-password --dbname=postgres -v superuser="$superuser" -v role="$DFR_DB_USER" <<'SQL'
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET log_statement = 'none';
SET log_min_duration_statement = -1;
SET log_min_error_statement = 'panic';
\set superuser_password `cat "$POSTGRES_PASSWORD_FILE"`
\set role_password `cat "$DFR_DB_PASSWORD_FILE"`
SELECT format('ALTER ROLE %I PASSWORD %L', :'superuser', :'superuser_password') \gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'role', :'role_password') \gexec
SQL
