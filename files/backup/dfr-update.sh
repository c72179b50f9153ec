#!/bin/bash
# dfr-update: update (and install) Odoo modules on a snapshot that is put back if they fail.
#
#   dfr-update RELEASE UPDATE INSTALL      (UPDATE, INSTALL: comma-separated module names)
#
# Odoo is stopped (nginx answers with its maintenance page meanwhile). The database is copied
# (CREATE DATABASE ... TEMPLATE: PostgreSQL copies its files, no dump) and the filestore
# hard-linked (instant; safe because Odoo never rewrites a stored file, it only adds and
# removes), both as the snapshot of RELEASE. Then `odoo -u UPDATE -i INSTALL --stop-after-init`
# runs once, in a one-off container of the new image (compose run). If it fails, the snapshot's
# database and filestore are put back, with the compose file and configuration the stack ran on
# before this deploy (previous/, saved by the deploy), and Odoo is started on them; the update's
# own error lines go to stdout, then "dfr-update: rolled back", and the exit status is 3. On success the snapshot is kept for a
# rollback (the newest 2) and Odoo is left stopped: the deploy's compose up starts the new one.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC2034 # read by dfr-common's log()
tool=dfr-update
# shellcheck source=/dev/null
. "$here/bin/dfr-common"

usage="dfr-update RELEASE UPDATE INSTALL"
release=${1:?usage: $usage} update=${2-} install=${3-}
[[ $release =~ ^[0-9]{8}T[0-9]{6}Z$ ]] || fail "release $release is not a release id"
[[ $update =~ ^[a-z0-9_,]*$ && $install =~ ^[a-z0-9_,]*$ ]] || fail "bad module names; usage: $usage"
[ -n "$update$install" ] || fail "no module to update or install; usage: $usage"
[ -f "$here/previous/compose.yaml" ] || fail "no previous/compose.yaml to fall back on"

db=$DFR_DB_NAME
snapshot="${db}_before_${release}"
# shellcheck disable=SC2034 # read by dfr-common's psql_admin
pg=$(running postgres)
volume=$(odoo_data)
filestore="$volume/filestore/$db"
snapshots="$volume/dfr-snapshots"
logs="$here/updates"
mkdir -p "$snapshots" "$logs"
output="$logs/$release.log"

log "stopping Odoo to update ${update:-nothing}${install:+ and install $install}"
compose stop odoo >/dev/null 2>&1
disconnect "$db"
# Owned by Odoo's role, as the database is: renamed back, Odoo must find it its own (db_list).
# FILE_COPY: a checkpoint, then the files copied as they are; on the 2.35 GB benchmark
# database 1.8 s against WAL_LOG's 3.9 s (PostgreSQL 15+'s default writes the copy through WAL).
psql_admin -c "CREATE DATABASE \"$snapshot\" TEMPLATE \"$db\" OWNER \"$DFR_DB_USER\" STRATEGY FILE_COPY"
rm -rf "${snapshots:?}/$release"
mkdir -p "$snapshots/$release"
if [ -d "$filestore" ]; then cp -al "$filestore" "$snapshots/$release/filestore"; fi
date -u +%FT%TZ >"$snapshots/$release/taken"  # what a rollback to it says would be lost since
log "snapshot $snapshot taken (database and filestore)"

arguments=(odoo -d "$db" --stop-after-init)
[ -z "$update" ] || arguments+=(-u "$update")
[ -z "$install" ] || arguments+=(-i "$install")
if compose run --rm --no-deps odoo "${arguments[@]}" >"$output" 2>&1; then
  log "modules updated; the log is $output"
  # The newest two snapshots are kept for a rollback; older ones go.
  for old in $(psql_admin -c "SELECT datname FROM pg_database WHERE datname LIKE '${db}\_before\_%'
                              ORDER BY datname DESC OFFSET 2"); do
    psql_admin -c "DROP DATABASE \"$old\"" && rm -rf "${snapshots:?}/${old#"${db}"_before_}"
  done
  exit 0
fi

# The update's own words: its first ERROR or CRITICAL line and the last line of its traceback.
grep -m1 -E ' (ERROR|CRITICAL) ' "$output" || true
awk '/^Traceback/ { tb = 1 } tb && /^[^ \t]/ && !/^Traceback/ { last = $0 } END { if (last) print last }' \
  "$output"
log "the update failed (log: $output): putting back the database, filestore and release before it"
restored() {
  disconnect "$db" && psql_admin -c "DROP DATABASE IF EXISTS \"$db\"" &&
    psql_admin -c "ALTER DATABASE \"$snapshot\" RENAME TO \"$db\"" || return 1
  if [ -d "$snapshots/$release/filestore" ]; then
    rm -rf "$filestore.failed" && { [ ! -d "$filestore" ] || mv "$filestore" "$filestore.failed"; } &&
      mv "$snapshots/$release/filestore" "$filestore" && rm -rf "$filestore.failed" || return 1
  fi
  rm -rf "${snapshots:?}/$release"
  cp -a "$here/previous/compose.yaml" "$here/compose.yaml" &&
    cp -a "$here/previous/config/." "$here/config/" && cp -a "$here/previous/config/." "$here/next/" &&
    compose up -d --wait --wait-timeout "$DFR_RESTORE_HEALTH_TIMEOUT" >/dev/null 2>&1
}
if ! restored; then
  echo "the update failed and putting the previous state back failed too: snapshot database" \
    "$snapshot and $snapshots/$release hold the state before the update; put them back by hand" \
    "(docs/operations.md)"
  exit 4
fi
log "the database, filestore and release before the update are back, Odoo serves them"
echo "dfr-update: rolled back"  # the last line: what the deploy reads
exit 3
