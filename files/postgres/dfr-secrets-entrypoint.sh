#!/bin/sh
# The stack's secret files stay root-only on the host (0600). As root, copy them to a private
# directory the postgres user can read, point the *_FILE variables there, bring an existing
# cluster's passwords in line with them, then hand over to the official entrypoint (which drops
# to the postgres user).
set -eu
private=/run/dfr-secrets
install -d -m 0700 -o postgres -g postgres "$private"
for name in POSTGRES_PASSWORD_FILE DFR_DB_PASSWORD_FILE; do
  eval "src=\${$name:-}"
  if [ -n "$src" ]; then
    dest="$private/$(basename "$src")"
    install -m 0400 -o postgres -g postgres "$src" "$dest"
    export "$name=$dest"
  fi
done
dfr-role-passwords.sh "$@"
exec docker-entrypoint.sh "$@"
