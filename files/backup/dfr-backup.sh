#!/bin/bash
# dfr-backup: backups of the DFR stack on this host, database and Odoo filestore together.
#
#   dfr-backup create [--format dfr|odoo-zip]   make one; prints "NAME BYTES" on the last line
#   dfr-backup stream NAME                      the backup as a tar on stdout
#   dfr-backup remove NAME
#   dfr-backup retention                        apply the host's GFS retention
#
# Settings come from backup.env next to this script's directory (rendered by dfr-deploy).
# A backup is built as NAME.partial and renamed only once complete, checksummed and listed
# in its manifest.json: nothing that looks complete is ever left by a failure.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$here/backup.env"

log() { printf '%s dfr-backup[%s] %s\n' "$(date -u +%FT%TZ)" "$DFR_ENV" "$*" >&2; }
fail() { log "ERROR: $*"; exit 1; }

container() {
  local id
  id=$(docker ps -q --filter "label=com.docker.compose.project=$DFR_PROJECT" \
    --filter "label=com.docker.compose.service=$1" --filter status=running)
  [ -n "$id" ] || fail "the $1 container of $DFR_PROJECT is not running"
  echo "$id"
}

sql() { docker exec -i -u postgres "$pg" psql -X -v ON_ERROR_STOP=1 -d "$DFR_DB_NAME" -tAq "$@"; }

json_string() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }

write_manifest() {
  local stage=$1 format=$2 created=$3
  local pg_version odoo_version major modules files
  pg_version=$(sql -c 'SHOW server_version')
  odoo_version=$(sql -c "SELECT latest_version FROM ir_module_module WHERE name = 'base'")
  major=$(printf '%s' "$odoo_version" | cut -d. -f1-2)
  modules=$(sql -F ' ' -c "SELECT name, coalesce(latest_version, '') FROM ir_module_module
                            WHERE state = 'installed' ORDER BY name" |
    awk 'NF { printf "%s\"%s\": \"%s\"", sep, $1, $2; sep = ", " }')
  files=$(cd "$stage" && find . -type f ! -name manifest.json -printf '%P\n' | LC_ALL=C sort |
    while read -r f; do
      printf '%s %s %s\n' "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -d' ' -f1)" "$f"
    done | awk '{
      size = $1; sha = $2; name = substr($0, length($1) + length($2) + 3)
      gsub(/\\/, "\\\\\\\\", name); gsub(/"/, "\\\"", name)
      printf "%s\n    \"%s\": {\"size\": %s, \"sha256\": \"%s\"}", sep, name, size, sha; sep = ","
    }')
  cat >"$stage/manifest.json" <<JSON
{
  "format": $(json_string "$format"),
  "dfr_deploy_version": $(json_string "$DFR_VERSION"),
  "created_at": $(json_string "$created"),
  "environment": $(json_string "$DFR_ENV"),
  "db_name": $(json_string "$DFR_DB_NAME"),
  "database_bytes": $(sql -c "SELECT pg_database_size(current_database())"),
  "odoo_dump": "1",
  "version": $(json_string "$odoo_version"),
  "major_version": $(json_string "$major"),
  "pg_version": $(json_string "$pg_version"),
  "pg_dump": {"format": "$([ "$format" = odoo-zip ] && echo plain || echo directory)", "compression": "$([ "$format" = odoo-zip ] && echo none || echo zstd:3)", "jobs": $DFR_BACKUP_JOBS},
  "modules": {$modules},
  "files": {$files
  }
}
JSON
}

stage=""  # global: the EXIT trap that removes an unfinished backup runs outside create()

create() {
  local format=dfr
  while [ $# -gt 0 ]; do
    case "$1" in
      --format) format=$2; shift 2 ;;
      *) fail "unknown option $1" ;;
    esac
  done
  case "$format" in dfr | odoo-zip) ;; *) fail "format $format: use dfr or odoo-zip" ;; esac

  pg=$(container postgres)
  local created name pg_uid pg_image
  created=$(date -u +%FT%TZ)
  name="$DFR_ENV-$DFR_DB_NAME-$(date -u -d "$created" +%Y%m%dT%H%M%SZ).$([ "$format" = odoo-zip ] && echo odoo-zip || echo dfrbak)"
  stage="$DFR_BACKUP_DIR/$name.partial"
  install -d -m 0711 "$DFR_BACKUP_DIR"
  rm -rf "$stage"
  trap '[ -z "$stage" ] || rm -rf "$stage"' EXIT
  pg_uid=$(docker exec "$pg" id -u postgres)
  install -d -m 0700 -o "$pg_uid" "$stage"

  log "dumping database $DFR_DB_NAME ($format)"
  if [ "$format" = odoo-zip ]; then
    docker exec -u postgres "$pg" pg_dump -d "$DFR_DB_NAME" --no-owner \
      --lock-wait-timeout=120s -f "/backups/$name.partial/dump.sql"
  else
    docker exec -u postgres "$pg" pg_dump -d "$DFR_DB_NAME" --format=directory \
      --jobs="$DFR_BACKUP_JOBS" --compress=zstd:3 --no-owner --lock-wait-timeout=120s \
      -f "/backups/$name.partial/database"
  fi

  log "archiving the filestore"
  pg_image=$(docker inspect -f '{{.Config.Image}}' "$pg")
  docker run --rm --user 0 --network none --entrypoint bash \
    -v "${DFR_PROJECT}_odoo-data:/odoo:ro" -v "$DFR_BACKUP_DIR:/backups" "$pg_image" \
    -o pipefail -c "
      src=/odoo/filestore/$DFR_DB_NAME
      if [ '$format' = odoo-zip ]; then
        mkdir -p /backups/$name.partial/filestore
        if [ -d \$src ]; then cp -a \$src/. /backups/$name.partial/filestore/; fi
      elif [ -d \$src ]; then
        tar -C \$src -cf - . | zstd -q -T0 -3 -o /backups/$name.partial/filestore.tar.zst
      else
        tar -cf - -T /dev/null | zstd -q -o /backups/$name.partial/filestore.tar.zst
      fi"

  chown -R 0:0 "$stage"
  write_manifest "$stage" "$([ "$format" = odoo-zip ] && echo odoo-zip || echo dfr-backup/1)" "$created"
  mv "$stage" "$DFR_BACKUP_DIR/$name"
  trap - EXIT
  log "backup $name complete"
  echo "$name $(du -sb "$DFR_BACKUP_DIR/$name" | cut -f1)"
}

checked_name() {
  case "$1" in
    */* | .* | "") fail "bad backup name $1" ;;
  esac
  [ -d "$DFR_BACKUP_DIR/$1" ] || fail "no backup $1 in $DFR_BACKUP_DIR"
}

case "${1:-}" in
  create) shift; create "$@" ;;
  stream) checked_name "${2:-}"; tar -C "$DFR_BACKUP_DIR/$2" -cf - . ;;
  remove) checked_name "${2:-}"; rm -rf "${DFR_BACKUP_DIR:?}/$2" ;;
  retention)
    exec "$here/bin/dfr-retention" "$DFR_BACKUP_DIR" "$DFR_KEEP_DAILY" "$DFR_KEEP_WEEKLY" \
      "$DFR_KEEP_MONTHLY" ;;
  *) fail "usage: dfr-backup create|stream NAME|remove NAME|retention" ;;
esac
