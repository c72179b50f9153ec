#!/bin/bash
# Entrypoint of the DFR Odoo image.
#  - as root: join odoo.conf with the secrets (db_password, admin_passwd) into a private file
#    for the odoo user, then drop to that user; nothing secret goes on a command line;
#  - waits for PostgreSQL (DFR_DB_WAIT_TIMEOUT seconds, default 60) with a clear message;
#  - initialises the database once when it is missing or empty (base + DFR_ODOO_MODULES);
#  - never updates modules on boot: updates are an explicit deploy step.
set -euo pipefail

rc_dir=/run/dfr-odoo
log() { printf '%s %s %s ? dfr.entrypoint: %s\n' "$(date -u '+%F %T,000')" "$$" "$1" "$2" >&2; }

if [ "$(id -u)" = 0 ]; then
  install -d -m 0700 -o odoo -g odoo "$rc_dir"
  (
    umask 077
    cat /etc/odoo/odoo.conf
    if [ -f /run/secrets/odoo_secrets.conf ]; then printf '\n'; cat /run/secrets/odoo_secrets.conf; fi
  ) >"$rc_dir/odoo.conf"
  chown odoo:odoo "$rc_dir/odoo.conf"
  exec setpriv --reuid=odoo --regid=odoo --init-groups "$0" "$@"
fi
export ODOO_RC="$rc_dir/odoo.conf"
[ -r "$ODOO_RC" ] || export ODOO_RC=/etc/odoo/odoo.conf

case "${1:-odoo}" in
  odoo | --) shift || true ;;
  -*) ;;
  *) exec "$@" ;;
esac

# As PID 1 this shell ignores the signals it has no handler for: a stop (docker stop, a
# restore's swap, its rollback) while PostgreSQL is awaited would last the whole grace period.
trap 'exit 143' TERM INT
timeout="${DFR_DB_WAIT_TIMEOUT:-60}"
wait-for-psql.py --timeout="$timeout" >/dev/null 2>&1 &
if ! wait $!; then
  log ERROR "PostgreSQL did not answer within ${timeout}s: check 'docker compose logs postgres'"
  exit 1
fi

# A subcommand (shell, neutralize, db …) runs as asked, with no database initialisation.
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
  exec odoo "$@"
fi

state=$(dfr-db-state.py)
if [ "$state" != ready ]; then
  db=$(sed -n 's/^db_name *= *//p' "$ODOO_RC" | head -n1)
  modules="base${DFR_ODOO_MODULES:+,$DFR_ODOO_MODULES}"
  log INFO "database $db is $state: initialising it with $modules"
  odoo -d "$db" -i "$modules" --stop-after-init
  log INFO "database $db initialised"
fi
exec odoo "$@"
