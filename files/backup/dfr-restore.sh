#!/bin/bash
# dfr-restore: restore an uploaded backup into a NEW database, prove it, then swap it in.
#
#   dfr-restore ARCHIVE [--neutralize] [--drop-old]
#
# ARCHIVE is a tar in $DFR_BACKUP_DIR/incoming/ (a dfr backup, or an Odoo zip converted by
# dfr-deploy). The live database and filestore are not touched until the new ones are
# restored and checked; they are then kept as <db>_old_<timestamp> (unless --drop-old), and
# put back if Odoo does not come up healthy on the new ones.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$here/backup.env"

log() { printf '%s dfr-restore[%s] %s\n' "$(date -u +%FT%TZ)" "$DFR_ENV" "$*" >&2; }
fail() { log "ERROR: $*"; exit 1; }

archive=${1:?usage: dfr-restore ARCHIVE [--neutralize] [--drop-old]}
shift
neutralize=no drop_old=no
for arg in "$@"; do
  case "$arg" in
    --neutralize) neutralize=yes ;;
    --drop-old) drop_old=yes ;;
    *) fail "unknown option $arg" ;;
  esac
done
case "$archive" in */* | .* ) fail "bad archive name $archive" ;; esac
incoming="$DFR_BACKUP_DIR/incoming/$archive"
[ -f "$incoming" ] || fail "no uploaded archive $incoming"

compose() { (cd "$here" && docker compose -p "$DFR_PROJECT" "$@"); }
container() {
  docker ps -q --filter "label=com.docker.compose.project=$DFR_PROJECT" \
    --filter "label=com.docker.compose.service=$1" --filter status=running
}
pg=$(container postgres)
[ -n "$pg" ] || fail "the postgres container of $DFR_PROJECT is not running"
psql_admin() { docker exec -i -u postgres "$pg" psql -X -v ON_ERROR_STOP=1 -d postgres -tAq "$@"; }
in_volume() {
  docker run --rm -i --user 0 --network none --entrypoint bash \
    -v "${DFR_PROJECT}_odoo-data:/odoo" -v "$DFR_BACKUP_DIR:/backups" "$pg_image" -o pipefail -c "$1"
}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
new_db="${DFR_DB_NAME}_restore_${stamp}"
old_db="${DFR_DB_NAME}_old_${stamp}"
work="$DFR_BACKUP_DIR/restore-$stamp.partial"
pg_image=$(docker inspect -f '{{.Config.Image}}' "$pg")
odoo_image=$(cd "$here" && docker compose -p "$DFR_PROJECT" config --images | grep '/odoo:' | head -n1)
swapped=no

cleanup() {
  local status=$?
  rm -rf "$work" "$incoming"  # the upload is a copy: the original stays on the controller
  if [ "$status" -ne 0 ] && [ "$swapped" = no ]; then
    log "restore failed: dropping $new_db; the live database and filestore were not touched"
    psql_admin -c "DROP DATABASE IF EXISTS \"$new_db\" WITH (FORCE)" >/dev/null 2>&1 || true
    in_volume "rm -rf /odoo/filestore/$new_db" >/dev/null 2>&1 || true
  fi
  exit "$status"
}
trap cleanup EXIT

log "unpacking $archive"
install -d -m 0711 "$work"
tar -xf "$incoming" -C "$work"
[ -f "$work/manifest.json" ] || fail "$archive has no manifest.json"
sed -n 's/^ *"\([^"]*\)": {"size": \([0-9]*\), "sha256": "\([0-9a-f]*\)"}.*/\3  \1/p' \
  "$work/manifest.json" >"$work/SHA256SUMS"
[ -s "$work/SHA256SUMS" ] || fail "$archive lists no files in its manifest"
(cd "$work" && sha256sum --quiet -c SHA256SUMS) || fail "$archive: a part does not match its sha256"
log "every part matches its sha256"
chown -R "$(docker exec "$pg" id -u postgres)" "$work"

log "restoring into the new database $new_db"
psql_admin -c "CREATE DATABASE \"$new_db\" OWNER \"$DFR_DB_USER\" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C'"
if [ -d "$work/database" ]; then
  docker exec -u postgres "$pg" pg_restore -U "$DFR_DB_USER" -d "$new_db" --no-owner \
    --exit-on-error --jobs="$DFR_BACKUP_JOBS" "/backups/restore-$stamp.partial/database"
else
  docker exec -u postgres "$pg" psql -X -q -v ON_ERROR_STOP=1 -U "$DFR_DB_USER" -d "$new_db" \
    -f "/backups/restore-$stamp.partial/dump.sql" >/dev/null
fi

log "restoring the filestore"
odoo_ids=$(docker run --rm --entrypoint sh "$odoo_image" -c 'echo "$(id -u odoo):$(id -g odoo)"')
in_volume "
  dest=/odoo/filestore/$new_db
  rm -rf \$dest && mkdir -p \$dest
  if [ -f /backups/restore-$stamp.partial/filestore.tar.zst ]; then
    zstd -q -dc /backups/restore-$stamp.partial/filestore.tar.zst | tar -x -C \$dest
  elif [ -d /backups/restore-$stamp.partial/filestore ]; then
    cp -a /backups/restore-$stamp.partial/filestore/. \$dest/
  fi
  chown $odoo_ids /odoo/filestore && chown -R $odoo_ids /odoo/filestore/$new_db"

log "checking the new database"
new_sql() { docker exec -i -u postgres "$pg" psql -X -v ON_ERROR_STOP=1 -d "$new_db" -tAq "$@"; }
tables=$(new_sql -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN
                     ('ir_module_module', 'ir_attachment', 'ir_config_parameter', 'res_users')")
[ "$tables" = 4 ] || fail "the restored database lacks Odoo's core tables ($tables of 4)"
expected_modules=$(grep -o '"modules": {[^}]*}' "$work/manifest.json" | grep -o '": "' | wc -l || true)
modules=$(new_sql -c "SELECT count(*) FROM ir_module_module WHERE state = 'installed'")
[ "$modules" -ge "$expected_modules" ] ||
  fail "the restored database has $modules installed modules, the manifest lists $expected_modules"
missing=$(new_sql -c "SELECT DISTINCT store_fname FROM ir_attachment WHERE store_fname IS NOT NULL" |
  in_volume "cd /odoo/filestore/$new_db && while read -r f; do [ -f \"\$f\" ] || echo \"\$f\"; done" |
  wc -l)
[ "$missing" = 0 ] || fail "$missing attachment files are missing from the restored filestore"
log "tables, $modules modules and every attachment's file are present"

if [ "$neutralize" = yes ]; then
  log "neutralizing $new_db (outgoing mail, crons, payment providers …) with odoo neutralize"
  compose run --rm --no-deps -T odoo odoo neutralize -d "$new_db"
  [ "$(new_sql -c "SELECT value FROM ir_config_parameter WHERE key = 'database.is_neutralized'")" = true ] ||
    fail "odoo neutralize did not mark $new_db as neutralized"
fi

log "swapping: $DFR_DB_NAME -> $old_db, $new_db -> $DFR_DB_NAME"
compose stop odoo
swapped=yes
rollback() {
  log "Odoo did not come up healthy on the restored data: putting the previous state back"
  compose stop odoo || true
  psql_admin -c "ALTER DATABASE \"$DFR_DB_NAME\" RENAME TO \"$new_db\"" || true
  psql_admin -c "ALTER DATABASE \"$old_db\" RENAME TO \"$DFR_DB_NAME\"" || true
  in_volume "cd /odoo/filestore && mv $DFR_DB_NAME $new_db; [ ! -d $old_db ] || mv $old_db $DFR_DB_NAME" || true
  compose up -d --wait odoo || true
  fail "restore rolled back; the restored copy stays as database $new_db for inspection"
}
had_old=$(psql_admin -c "SELECT count(*) FROM pg_database WHERE datname = '$DFR_DB_NAME'")
if [ "$had_old" = 1 ]; then
  psql_admin -c "ALTER DATABASE \"$DFR_DB_NAME\" RENAME TO \"$old_db\""
fi
psql_admin -c "ALTER DATABASE \"$new_db\" RENAME TO \"$DFR_DB_NAME\""
in_volume "cd /odoo/filestore && { [ ! -d $DFR_DB_NAME ] || mv $DFR_DB_NAME $old_db; } && mv $new_db $DFR_DB_NAME"
compose up -d --wait --wait-timeout 300 odoo || rollback

if [ "$drop_old" = yes ] && [ "$had_old" = 1 ]; then
  psql_admin -c "DROP DATABASE \"$old_db\" WITH (FORCE)"
  in_volume "rm -rf /odoo/filestore/$old_db"
  log "previous database and filestore removed (--drop-old)"
elif [ "$had_old" = 1 ]; then
  log "previous database kept as $old_db (filestore/$old_db); drop it when no longer needed"
fi
log "restore of $archive complete"
