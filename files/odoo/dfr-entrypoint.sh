#!/bin/bash
# Entrypoint of the DFR Odoo image.
#  - as root: join odoo.conf with the secrets (db_password, admin_passwd) into a private file
#    for the odoo user, then drop to that user; nothing secret goes on a command line;
#  - waits for PostgreSQL (DFR_DB_WAIT_TIMEOUT seconds, default 60) with a clear message;
#  - initialises the database once when it is missing or empty (base + DFR_ODOO_MODULES), and
#    gives the admin user the deploy's password before the server answers (Odoo's `-i base`
#    leaves admin/admin); a changed password (rotated secret) is applied at the next start;
#  - never updates modules on boot: updates are an explicit deploy step.
set -euo pipefail

rc_dir=/run/dfr-odoo
log() { printf '%s %s %s ? dfr.entrypoint: %s\n' "$(date -u '+%F %T,000')" "$$" "$1" "$2" >&2; }

if [ "$(id -u)" = 0 ]; then
  install -d -m 0700 -o odoo -g odoo "$rc_dir"
  # Created 0600 before the secrets are written into it.
  install -m 0600 -o odoo -g odoo /dev/null "$rc_dir/odoo.conf"
  {
    cat /etc/odoo/odoo.conf
    if [ -f /run/secrets/odoo_secrets.conf ]; then printf '\n'; cat /run/secrets/odoo_secrets.conf; fi
  } >"$rc_dir/odoo.conf"
  if [ -f /run/secrets/admin_user_password ]; then
    install -m 0600 -o odoo -g odoo /run/secrets/admin_user_password "$rc_dir/admin_user_password"
  fi
  # HOME as the official image (USER odoo) has it, /var/lib/odoo: writable on the read-only
  # root (fontconfig's cache for wkhtmltopdf goes there), where /root is not.
  HOME=$(getent passwd odoo | cut -d: -f6)
  export HOME
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

# The admin user's password, set through Odoo's ORM (stored hashed) when the database is new or
# the deploy's password changed since it was last set here. A stamp in the data directory
# (salted sha256) remembers the last one; a database restored from elsewhere keeps its own.
apply_admin_password() {
  local db=$1 password_file="$rc_dir/admin_user_password" stamp salt hash password
  [ -s "$password_file" ] || return 0
  stamp="/var/lib/odoo/.dfr-admin-password.$db"
  password=$(<"$password_file")
  if [ "$2" != new ] && [ -f "$stamp" ]; then
    read -r salt hash <"$stamp"
    [ "$(salted_sha256 "$salt" "$password")" = "$hash" ] && return 0
  fi
  log INFO "setting the password of the admin user of $db"
  DFR_ADMIN_PASSWORD_FILE="$password_file" odoo shell -d "$db" <<'PY'
import os
from pathlib import Path
password = Path(os.environ["DFR_ADMIN_PASSWORD_FILE"]).read_text().rstrip("\n")
env.ref("base.user_admin").password = password
env.cr.commit()
PY
  salt=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  (umask 077; printf '%s %s\n' "$salt" "$(salted_sha256 "$salt" "$password")" >"$stamp")
}
salted_sha256() { printf '%s%s' "$1" "$2" | sha256sum | cut -d' ' -f1; }

db=$(sed -n 's/^db_name *= *//p' "$ODOO_RC" | head -n1)
state=$(dfr-db-state.py)
if [ "$state" != ready ]; then
  modules="base${DFR_ODOO_MODULES:+,$DFR_ODOO_MODULES}"
  log INFO "database $db is $state: initialising it with $modules"
  odoo -d "$db" -i "$modules" --stop-after-init
  apply_admin_password "$db" new
  log INFO "database $db initialised"
else
  apply_admin_password "$db" existing
fi
exec odoo "$@"
