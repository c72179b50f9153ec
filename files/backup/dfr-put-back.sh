#!/bin/bash
# dfr-put-back: a kept release's code with the database and filestore as they were before a
# later release updated modules: what a rollback over that update does.
#
#   dfr-put-back SNAPSHOT ROLLBACK KEPT
#
# SNAPSHOT is the release whose module update took the snapshot (database <db>_before_SNAPSHOT,
# filestore dfr-snapshots/SNAPSHOT/ in Odoo's volume, see dfr-update). ROLLBACK is this
# rollback's release id: the database and filestore it replaces become that release's snapshot
# (renamed and moved, not copied), so nothing is lost until snapshot retention removes them.
# KEPT is the directory of the release put back (its compose.yaml and config/).
#
# Odoo is stopped (nginx answers with its maintenance page meanwhile), the snapshot is renamed
# into place and the stack brought up on KEPT's files. If that does not become healthy, all is
# put back as it was and Odoo started again: "dfr-put-back: undone" on stdout, exit status 3.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC2034 # read by dfr-common's log()
tool=dfr-put-back
# shellcheck source=/dev/null
. "$here/bin/dfr-common"

usage="dfr-put-back SNAPSHOT ROLLBACK KEPT"
from=${1:?usage: $usage} rollback=${2:?usage: $usage} kept=${3:?usage: $usage}
for id in "$from" "$rollback"; do
  [[ $id =~ ^[0-9]{8}T[0-9]{6}Z$ ]] || fail "$id is not a release id; usage: $usage"
done
[ -f "$kept/compose.yaml" ] && [ -d "$kept/config" ] || fail "$kept holds no kept release"

db=$DFR_DB_NAME
snapshot="${db}_before_$from" replaced="${db}_before_$rollback"
# shellcheck disable=SC2034 # read by dfr-common's psql_admin
pg=$(running postgres)
volume=$(odoo_data)
filestore="$volume/filestore/$db"
snapshots="$volume/dfr-snapshots"
db_exists() { [ "$(psql_admin -c "SELECT count(*) FROM pg_database WHERE datname = '$1'")" = 1 ]; }
rename_db() { disconnect "$1" && psql_admin -c "ALTER DATABASE \"$1\" RENAME TO \"$2\""; }
db_exists "$snapshot" && [ -d "$snapshots/$from" ] ||
  fail "the snapshot taken before release $from is no longer kept"

# What runs now, for the way back should the release put back not become healthy.
rm -rf "$here/previous" && mkdir -p "$here/previous"
cp -a "$here/compose.yaml" "$here/config" "$here/previous/"

moved_in=
forward() {
  rename_db "$db" "$replaced" && rename_db "$snapshot" "$db" && mkdir -p "$snapshots/$rollback" ||
    return 1
  if [ -d "$filestore" ]; then mv "$filestore" "$snapshots/$rollback/filestore" || return 1; fi
  if [ -d "$snapshots/$from/filestore" ]; then
    mv "$snapshots/$from/filestore" "$filestore" && moved_in=1 || return 1
  fi
  date -u +%FT%TZ >"$snapshots/$rollback/taken"
}
# From wherever forward() stopped: the snapshot back to its name, the replaced data in place.
back() {
  if db_exists "$replaced"; then
    if db_exists "$db"; then rename_db "$db" "$snapshot" || return 1; fi
    rename_db "$replaced" "$db" || return 1
  fi
  if [ -n "$moved_in" ]; then mv "$filestore" "$snapshots/$from/filestore" || return 1; fi
  if [ -d "$snapshots/$rollback/filestore" ]; then
    mv "$snapshots/$rollback/filestore" "$filestore" || return 1
  fi
}
# The stack files of the release in directory $1, up and healthy.
up_on() {
  cp -a "$1/compose.yaml" "$here/compose.yaml" && cp -a "$1/config/." "$here/config/" &&
    cp -a "$1/config/." "$here/next/" &&
    compose up -d --wait --wait-timeout "$DFR_RESTORE_HEALTH_TIMEOUT" >/dev/null 2>&1
}

log "stopping Odoo to put back the database and filestore of before release $from"
compose stop odoo >/dev/null 2>&1
if forward && up_on "$kept"; then
  rm -rf "${snapshots:?}/$from"
  log "release $(basename "$kept") serves the data of before release $from; the data it" \
    "replaced is kept as database $replaced and $snapshots/$rollback"
  exit 0
fi

log "the release put back did not become healthy: putting back what ran before"
compose stop odoo >/dev/null 2>&1 || true
if ! back || ! up_on "$here/previous"; then
  echo "putting back what ran before failed too: database $replaced (or $db) and" \
    "$snapshots/$rollback hold it (docs/operations.md)"
  exit 4
fi
rm -rf "${snapshots:?}/$rollback"
echo "dfr-put-back: undone"
exit 3
