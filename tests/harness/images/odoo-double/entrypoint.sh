#!/bin/bash
# Entrypoint of the Odoo test double, written to behave like the official odoo:18.0 image's
# /entrypoint.sh (odoo18-facts.md 9.3): DB connection defaults from the environment, passed as
# --db_* arguments (appended at the END of the command line) only for keys that $ODOO_RC does not
# set; wait for PostgreSQL before starting odoo; any other command is executed as is.
set -e

if [ -v PASSWORD_FILE ]; then
    PASSWORD="$(<"$PASSWORD_FILE")"
fi

HOST="${HOST:-${DB_PORT_5432_TCP_ADDR:-${PGHOST:-db}}}"
PORT="${PORT:-${DB_PORT_5432_TCP_PORT:-${PGPORT:-5432}}}"
USER="${USER:-${DB_ENV_POSTGRES_USER:-${POSTGRES_USER:-${PGUSER:-odoo}}}}"
PASSWORD="${PASSWORD:-${DB_ENV_POSTGRES_PASSWORD:-${POSTGRES_PASSWORD:-${PGPASSWORD:-odoo}}}}"

DB_ARGS=()
check_config() {
    local param="$1" value="$2"
    if ! grep -q -E "^\s*\b${param}\b\s*=" "$ODOO_RC" 2>/dev/null; then
        DB_ARGS+=("--${param}" "${value}")
    fi
}
check_config "db_host" "$HOST"
check_config "db_port" "$PORT"
check_config "db_user" "$USER"
check_config "db_password" "$PASSWORD"

case "${1:-}" in
    -- | odoo)
        shift
        if [[ "${1:-}" == "scaffold" ]]; then
            exec odoo "$@"
        else
            wait-for-psql.py "${DB_ARGS[@]}" --timeout=30
            exec odoo "$@" "${DB_ARGS[@]}"
        fi
        ;;
    -*)
        wait-for-psql.py "${DB_ARGS[@]}" --timeout=30
        exec odoo "$@" "${DB_ARGS[@]}"
        ;;
    *)
        exec "$@"
        ;;
esac

exit 1
