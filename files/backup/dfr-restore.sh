#!/bin/bash
# dfr-restore: restore a backup into a NEW database, prove it, then swap it in.
#
#   dfr-restore SOURCE [--neutralize] [--drop-old] [--upload=BYTES] [--filestore-on-stdin]
#   dfr-restore SOURCE --drill [--neutralize]
#
# SOURCE is a backup directory in $DFR_BACKUP_DIR: incoming/NAME (uploaded by dfr-deploy,
# removed afterwards) or NAME (a copy dfr-backup kept on this host, left as it is).
# With --upload=BYTES, incoming/NAME arrives first on stdin, as a tar of BYTES bytes: received
# once this restore holds the lock, so no other restore's upload or sweep meets it.
# With --filestore-on-stdin the backup's filestore.tar is not in SOURCE: it arrives on stdin
# while the database is restored (an upload, pipelined), and is checked and unpacked as it comes.
# The live database and filestore are not touched until the new ones are restored and
# checked; they are then kept as <db>_old_<timestamp> (unless --drop-old), and put back if
# Odoo does not serve the new ones. A put-back that fails says so, with the state it left.
# A --drill goes as far as the checks (and the neutralization, if asked), then starts Odoo on
# the new database once (--stop-after-init), and removes it: the live database is never touched.
set -euo pipefail
# The operator's SSH session may end mid-restore: its output is then gone, but the restore
# must still clean up (or finish its swap), not die of SIGPIPE on the next line it logs.
# Ignored here, so in every command it runs too: none of them stops at its first lost line.
# (So a pipeline's first line is taken with `sed -n 1p`, which reads to the end: after
# `head -n1` the writer would fail on EPIPE instead of quietly dying.)
trap '' PIPE

here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC2034 # read by dfr-common's log()
tool=dfr-restore
# shellcheck source=/dev/null
. "$here/bin/dfr-common"

usage="dfr-restore SOURCE [--neutralize] [--drop-old] [--upload=BYTES] [--filestore-on-stdin] [--drill]"
source_name=${1:?usage: $usage}
shift
neutralize=no drop_old=no upload_bytes="" filestore_on_stdin=no drill=no
for arg in "$@"; do
  case "$arg" in
    --neutralize) neutralize=yes ;;
    --drop-old) drop_old=yes ;;
    --upload=*)
      upload_bytes=${arg#--upload=}
      case "$upload_bytes" in
        "" | *[!0-9]*) fail "--upload=BYTES takes a number of bytes, not '$upload_bytes'" ;;
      esac
      ;;
    --filestore-on-stdin) filestore_on_stdin=yes ;;
    --drill) drill=yes ;;
    *) fail "unknown option $arg; usage: $usage" ;;
  esac
done
case "${source_name#incoming/}" in
  "" | */* | .*) fail "bad backup name $source_name: give NAME or incoming/NAME" ;;
esac
case "$upload_bytes:$source_name" in
  :* | *:incoming/*) ;;
  *) fail "--upload receives incoming/NAME, not $source_name" ;;
esac
source="$DFR_BACKUP_DIR/$source_name"
# One restore at a time: a second would swap its database in over the first's. Refused before
# anything of it is uploaded.
hold_lock restore || fail "another restore is running on this host: run this one once it has ended"
# Uploads are received under the lock: every other one here was left by a cut connection or a
# restore killed outright.
remove_left_behind "an upload or restore that never finished" "$source" "$DFR_BACKUP_DIR"/incoming/*
[ -n "$upload_bytes" ] || [ -d "$source" ] || fail "no backup $source"
# The filestore's stream moves to fd 3, read only by the filestore's unpacking: nothing else
# here (docker exec -i, compose run) may take bytes of it.
exec 3<&0 </dev/null

pg=$(running postgres)
# Odoo's container (running or not): stopped and started with docker for the swap (its
# stop_grace_period applies), the same as compose stop/start without compose's start-up time.
odoo=$(service_containers odoo -a | sed -n 1p)
# Runs a shell command in Odoo's image: in the running container, else in a new one.
odoo_sh() {
  local running
  running=$(container odoo)
  if [ -n "$running" ]; then
    docker exec "$running" sh -c "$1"
  else
    docker run --rm --entrypoint sh "$(compose config --images | grep '/odoo:' | sed -n 1p)" -c "$1"
  fi
}
# psql 17.6 and later have \restrict (server_version_num style: 170006).
psql_restricts() {
  local version major minor
  version=$(docker exec "$pg" psql --version | sed -n 's/^psql (PostgreSQL) \([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
  read -r major minor <<<"$version"
  [ -n "$major" ] && { [ "$major" -gt 17 ] || { [ "$major" = 17 ] && [ "$minor" -ge 6 ]; }; }
}
# Without a pg_dump 17.6+ plain dump's own \restrict KEY (in its header, before any SQL) and
# its \unrestrict KEY: nothing else is taken out, and taking out more never lifts our own.
without_dump_restrict() {
  awk '!body && key == "" && /^\\restrict [A-Za-z0-9]+$/ { key = $2; next }
       !/^(--.*)?$/ { body = 1 }
       key != "" && $0 == "\\unrestrict " key { next }
       { print }'
}
pg_image=$(docker inspect -f '{{.Config.Image}}' "$pg")
# The filestores, seen from this host (the volume is compose's, local driver): checks and
# renames need no container start, which keeps Odoo's stop during the swap short.
filestores=$(odoo_data)/filestore
stamp=$(date -u +%Y%m%dT%H%M%SZ)
new_db="${DFR_DB_NAME}_restore_${stamp}"
old_db="${DFR_DB_NAME}_old_${stamp}"
work=$(mktemp -d)
filestore_container="$DFR_PROJECT-restore-filestore-$$"
filestore_job="" check_job="" analyze_job=""
swapped=no

cleanup() {
  local status=$?
  if [ -n "$filestore_job" ]; then
    pkill -P "$filestore_job" 2>/dev/null || true
    docker rm -f "$filestore_container" >/dev/null 2>&1 || true
    wait "$filestore_job" 2>/dev/null || true
  fi
  [ -z "$check_job" ] || wait "$check_job" 2>/dev/null || true
  [ -z "$analyze_job" ] || wait "$analyze_job" 2>/dev/null || true
  rm -rf "$work"
  case "$source_name" in incoming/*) rm -rf "$source" "$source.partial" ;; esac  # only a copy
  if [ "$status" -ne 0 ] && [ "$swapped" = no ]; then
    log "restore failed: dropping $new_db; the live database and filestore were not touched"
    psql_admin -c "DROP DATABASE IF EXISTS \"$new_db\" WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "${filestores:?}/$new_db"
  fi
  exit "$status"
}
trap cleanup EXIT

if [ -n "$upload_bytes" ]; then
  receive_tar "$source" "$upload_bytes" <&3 || fail "the upload of $source_name did not arrive whole"
fi
[ -f "$source/manifest.json" ] || fail "$source_name has no manifest.json"
sed -n 's/^ *"\([^"]*\)": {"size": [0-9]*, "sha256": "\([0-9a-f]*\)"}.*/\2 \1/p' \
  "$source/manifest.json" | LC_ALL=C sort -k2 >"$work/expected"
[ -s "$work/expected" ] || fail "$source_name lists no files in its manifest"
# A filestore.tar arriving on stdin is hashed as it is unpacked; every other part, and a
# filestore.tar in SOURCE, by check_parts, which reads it alongside tar from the page cache.
hashed_on_unpack=
if [ "$filestore_on_stdin" = yes ]; then
  hashed_on_unpack=filestore.tar
fi
check_parts() {
  (cd "$source" && cut -d' ' -f2- "$work/expected" | grep -vxF "${hashed_on_unpack:-/}" |
    tr '\n' '\0' | sha256_files 2>/dev/null >"$work/found.parts") || true
}
: >"$work/found.parts" && : >"$work/found.filestore"
# Prints the first part whose sha256 differs from the manifest's, if any.
first_bad_part() {
  cat "$work/found.parts" "$work/found.filestore" | LC_ALL=C sort -k2 >"$work/found"
  { diff "$work/expected" "$work/found" || true; } | sed -n 's/^< [0-9a-f]* //p' | sed -n 1p
}

# Three jobs at once, none of which touches the live database or filestore: the parts are
# checked against the manifest, the filestore is unpacked and pg_restore
# runs. Nothing is swapped in unless all three succeed.
log "restoring into the new database $new_db, its filestore alongside; checking every part's sha256 meanwhile"
check_parts &
check_job=$!
unpack_filestore() {
  local dest="$filestores/$new_db" odoo_ids
  rm -rf "$dest" && mkdir -p "$dest"
  if [ "$filestore_on_stdin" = yes ]; then
    sha256_fifo "$work/filestore.tee" filestore.tar "$work/found.filestore"
    bulk_tee "$work/filestore.tee" <&3 | tar -x --no-same-owner -C "$dest"
    wait $!
  elif [ -f "$source/filestore.tar" ]; then
    tar -x --no-same-owner -C "$dest" -f "$source/filestore.tar"
  elif [ -f "$source/filestore.tar.zst" ]; then  # dfr-deploy 0.1.0 backups; no zstd on the host
    docker run --rm -i --name "$filestore_container" --user 0 --network none \
      -v "$DFR_BACKUP_DIR:/backups:ro" --entrypoint zstd "$pg_image" \
      -q -dc "/backups/$source_name/filestore.tar.zst" | tar -x --no-same-owner -C "$dest"
  elif [ -d "$source/filestore" ]; then
    cp -r "$source/filestore/." "$dest/"
  fi
  # Asked of the running Odoo (an exec); a container is started only when Odoo is down.
  # shellcheck disable=SC2016 # expanded in the container
  odoo_ids=$(odoo_sh 'echo "$(id -u odoo):$(id -g odoo)"')
  chown "$odoo_ids" "$filestores" && chown -R "$odoo_ids" "$dest"
  # On disk before it goes live (the previous filestore is renamed away for it). Done here,
  # while pg_restore runs; left to the swap, Docker's stop of Odoo would wait for it instead.
  sync -f "$dest"
}
unpack_filestore &
filestore_job=$!
# Waits for the checks and the filestore; fails naming the first part that does not match.
parts_match() {
  local unpacked=yes
  wait "$check_job" || true
  check_job=""
  wait "$filestore_job" || unpacked=no
  filestore_job=""
  first_bad_part >"$work/bad"
  [ ! -s "$work/bad" ] || fail "$source_name: $(cat "$work/bad") does not match its sha256 in the manifest"
  [ "$unpacked" = yes ] || fail "restoring the filestore failed"
}
psql_admin -c "CREATE DATABASE \"$new_db\" OWNER \"$DFR_DB_USER\" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C'"
# The OID the restored database keeps through its rename: after the swap, the database named
# $DFR_DB_NAME must be this one, no other.
new_oid=$(psql_admin -c "SELECT oid FROM pg_database WHERE datname = '$new_db'")
if [ -d "$source/database" ]; then
  # pg_restore runs as the container's postgres user, never root, and reads the dump through
  # the read-only backups mount: the dump is that user's (dfr-backup leaves it so; an upload
  # or an older backup is made so here), the backup's directory lets it pass, and nothing else
  # of the backup is open to anyone but root.
  case "$source_name" in incoming/*) chmod 0711 "$DFR_BACKUP_DIR/incoming" ;; esac
  { chmod -R go-rwx "$source" && chmod 0711 "$source" &&
    chown -R "$(docker exec "$pg" id -u postgres)" "$source/database"; } ||
    fail "could not open $source_name/database to PostgreSQL's user (above)"
  restore_database() {
    docker exec -u postgres "$pg" pg_restore -U "$DFR_DB_USER" -d "$new_db" --no-owner \
      --exit-on-error --jobs="$DFR_RESTORE_JOBS" "/backups/$source_name/database"
  }
else
  # A plain dump (Odoo's zip) is a psql script from anyone: its meta-commands (\! runs a shell,
  # \o and \copy write files, \connect …) must not run. It is fed from this host to psql as
  # the postgres user (not root), in psql 17.6+'s restricted mode under a random key: the dump
  # cannot leave it, and any meta-command in it fails the restore. pg_dump 17.6+ opens and
  # closes its own dump with \restrict/\unrestrict KEY: those two lines are taken out.
  psql_restricts || fail "psql in $pg_image is older than 17.6 and cannot refuse a dump's meta-commands: update the PostgreSQL image, then restore again"
  restore_database() {
    local key
    key=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
    { printf '\\restrict %s\n' "$key"; without_dump_restrict <"$source/dump.sql"; } |
      docker exec -i -u postgres "$pg" psql -X -q -v ON_ERROR_STOP=1 -U "$DFR_DB_USER" \
        -d "$new_db" >/dev/null 2>"$work/psql.err" || {
      if grep -q 'backslash commands are restricted' "$work/psql.err"; then
        fail "$source_name: its dump.sql holds a psql meta-command (a backslash command such as \\! or \\o), which a restore refuses: nothing was changed"
      fi
      cat "$work/psql.err" >&2
      return 1
    }
  }
fi
restore_database || { parts_match; fail "restoring the database failed (see above)"; }
parts_match
log "every part matches its sha256; database and filestore restored"

# pg_restore and psql bring no planner statistics ("run ANALYZE after a restore", PostgreSQL's
# pg_restore docs): without them Odoo's queries on the swapped-in database are planned blind
# until autovacuum gets to each table. As the superuser, so the catalogs are analyzed too;
# alongside the checks, which only read.
log "checking the new database; analyzing it meanwhile (planner statistics)"
docker exec -u postgres "$pg" vacuumdb -d "$new_db" --analyze-only --quiet \
  --jobs="$DFR_RESTORE_JOBS" 2>"$work/analyze.err" &
analyze_job=$!
new_sql() { docker exec -i -u postgres "$pg" psql -X -v ON_ERROR_STOP=1 -d "$new_db" -tAq "$@"; }
tables=$(new_sql -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN
                     ('ir_module_module', 'ir_attachment', 'ir_config_parameter', 'res_users')")
[ "$tables" = 4 ] || fail "the restored database lacks Odoo's core tables ($tables of 4)"
expected_modules=$(grep -o '"modules": {[^}]*}' "$source/manifest.json" | grep -o '": "' | wc -l || true)
modules=$(new_sql -c "SELECT count(*) FROM ir_module_module WHERE state = 'installed'")
[ "$modules" -ge "$expected_modules" ] ||
  fail "the restored database has $modules installed modules, the manifest lists $expected_modules"
missing=$(new_sql -c "SELECT DISTINCT store_fname FROM ir_attachment WHERE store_fname IS NOT NULL" |
  (cd "$filestores/$new_db" && while read -r f; do [ -f "$f" ] || echo "$f"; done) |
  wc -l)
[ "$missing" = 0 ] || fail "$missing attachment files are missing from the restored filestore"
wait "$analyze_job" || { cat "$work/analyze.err" >&2; fail "analyzing the new database failed (above)"; }
analyze_job=""
log "tables, $modules modules and every attachment's file are present; the database is analyzed"

if [ "$neutralize" = yes ]; then
  log "neutralizing $new_db (outgoing mail, crons, payment providers …) with odoo neutralize"
  compose run --rm --no-deps -T odoo odoo neutralize -d "$new_db"
  [ "$(new_sql -c "SELECT value FROM ir_config_parameter WHERE key = 'database.is_neutralized'")" = true ] ||
    fail "odoo neutralize did not mark $new_db as neutralized"
fi

if [ "$drill" = yes ]; then
  log "drill: starting Odoo on $new_db once (--stop-after-init)"
  compose run --rm --no-deps -T odoo odoo server -d "$new_db" --stop-after-init --no-http \
    >"$work/odoo.log" 2>&1 || {
    tail -n 5 "$work/odoo.log" >&2
    fail "drill: Odoo did not start on the restored database (above)"
  }
  psql_admin -c "DROP DATABASE \"$new_db\" WITH (FORCE)" >/dev/null
  rm -rf "${filestores:?}/$new_db"
  log "drill passed: $source_name restored, checked, Odoo starts on it; the scratch copy is removed"
  exit 0
fi

# Odoo serves the restored database: /web/health is not enough, it answers without touching
# any database. /web/login answers 200 only once Odoo has loaded the registry of the database
# it is pinned to (dbfilter, db_name): Odoo drops a database whose registry fails to load and
# redirects (302) instead. And the database of that name must be the restored one (its OID).
# Polled every 0.1 s: Docker's own check runs only every 10 s, which would hold the restore
# (and Odoo's users) that long after Odoo is up.
odoo_serves_restored() {
  local deadline=$((SECONDS + DFR_RESTORE_HEALTH_TIMEOUT)) odoo status
  while [ "$SECONDS" -lt "$deadline" ]; do
    odoo=$(container odoo)
    # timeout: an exec into a container that hangs (frozen, overloaded) must not hang us.
    status=$([ -z "$odoo" ] || timeout 10 docker exec "$odoo" curl -sS --max-time 5 -o /dev/null \
      -w '%{http_code}' http://127.0.0.1:8069/web/login 2>/dev/null || true)
    if [ "$status" = 200 ]; then
      [ "$(psql_admin -c "SELECT oid FROM pg_database WHERE datname = '$DFR_DB_NAME'")" = "$new_oid" ] &&
        return 0
      log "the database named $DFR_DB_NAME is not the restored one (another OID)"
      return 1
    fi
    sleep 0.1
  done
  log "Odoo's /web/login answered ${status:-nothing}, not 200, within ${DFR_RESTORE_HEALTH_TIMEOUT}s"
  return 1
}

log "swapping: $DFR_DB_NAME -> $old_db, $new_db -> $DFR_DB_NAME"
had_old=$(psql_admin -c "SELECT count(*) FROM pg_database WHERE datname = '$DFR_DB_NAME'")
start_odoo() { if [ -n "$odoo" ]; then docker start "$odoo"; else compose up -d odoo; fi >/dev/null; }
# $1 -> $2 and $3 -> $1 (if there is a $3) in one transaction: both or neither.
rename_databases() {
  if [ "$had_old" = 1 ]; then
    psql_admin -1 -c "ALTER DATABASE \"$1\" RENAME TO \"$2\"" -c "ALTER DATABASE \"$3\" RENAME TO \"$1\""
  else
    psql_admin -c "ALTER DATABASE \"$3\" RENAME TO \"$1\""
  fi
}
[ -z "$odoo" ] || docker stop "$odoo" >/dev/null
if ! rename_databases "$DFR_DB_NAME" "$old_db" "$new_db"; then
  start_odoo || true
  fail "renaming the databases failed (above): nothing was swapped, Odoo runs on the previous database"
fi
swapped=yes
# Each step that puts the previous state back either succeeds or stops the rollback with one
# line: what failed, where the host stands, what to do by hand. Odoo is left stopped: on the
# restored data it failed on, or on a mix of both states, it must not serve.
rollback_failed() {
  fail "ROLLBACK FAILED, the host needs a hand: $1 (above); $2, then start Odoo (cd $here && docker compose -p $DFR_PROJECT up -d odoo)"
}
rollback() {
  local previous=$old_db swap_back="rename database $DFR_DB_NAME to $new_db and $old_db to $DFR_DB_NAME"
  if [ "$had_old" != 1 ]; then
    previous="nothing (there was no $DFR_DB_NAME before)" swap_back="rename database $DFR_DB_NAME to $new_db"
  fi
  log "$1: putting the previous state back"
  compose stop odoo ||
    rollback_failed "stopping Odoo failed" "Odoo may still run on the restored data ($DFR_DB_NAME, filestore/$DFR_DB_NAME; the previous: $previous): stop it, $swap_back, and move the filestores likewise in $filestores"
  if [ "$had_old" = 1 ]; then
    rename_databases "$DFR_DB_NAME" "$new_db" "$old_db"
  else
    psql_admin -c "ALTER DATABASE \"$DFR_DB_NAME\" RENAME TO \"$new_db\""
  fi ||
    rollback_failed "renaming the databases back failed" "Odoo is stopped; database $DFR_DB_NAME is the restored one, the previous is $previous: $swap_back; in $filestores, move the restored filestore to $new_db and $old_db (if there) to $DFR_DB_NAME"
  (cd "$filestores" &&
    if [ ! -d "$new_db" ]; then mv "$DFR_DB_NAME" "$new_db"; fi &&
    if [ -d "$old_db" ]; then mv "$old_db" "$DFR_DB_NAME"; fi && sync -f .) ||
    rollback_failed "moving the filestores back failed" "Odoo is stopped; the databases are back ($DFR_DB_NAME the previous, $new_db the restored): in $filestores, move the restored filestore to $new_db and $old_db (if there) to $DFR_DB_NAME"
  compose up -d --wait odoo ||
    fail "restore rolled back, but Odoo did not come up healthy on the previous data: see docker compose -p $DFR_PROJECT logs odoo; the restored copy stays as database $new_db"
  fail "restore rolled back; the restored copy stays as database $new_db for inspection"
}
(cd "$filestores" && { [ ! -d "$DFR_DB_NAME" ] || mv "$DFR_DB_NAME" "$old_db"; } &&
  mv "$new_db" "$DFR_DB_NAME" && sync -f .) || rollback "moving the restored filestore into place failed"
{ start_odoo && odoo_serves_restored; } ||
  rollback "Odoo did not come up serving the restored database $DFR_DB_NAME"
log "Odoo serves the restored database: its login page answers, from the database restored"

if [ "$drop_old" = yes ] && [ "$had_old" = 1 ]; then
  psql_admin -c "DROP DATABASE \"$old_db\" WITH (FORCE)"
  rm -rf "${filestores:?}/$old_db"
  log "previous database and filestore removed (--drop-old)"
elif [ "$had_old" = 1 ]; then
  log "previous database kept as $old_db (filestore/$old_db); drop it when no longer needed"
fi
log "restore of $source_name complete"
