#!/bin/bash
# dfr-backup: backups of the DFR stack on this host, database and Odoo filestore together.
#
#   dfr-backup create [--format dfr|odoo-zip] [--name NAME] [--stream]
#                         make one; prints "NAME BYTES" on the last line, or with --stream
#                         writes the backup as a tar on stdout while making it
#   dfr-backup kept NAME|latest                 "NAME BYTES" of a complete backup kept here
#   dfr-backup stream NAME                      the backup as a tar on stdout
#   dfr-backup remove NAME
#   dfr-backup retention                        apply the host's GFS retention
#
# Settings come from backup.env next to this script's directory (rendered by dfr-deploy).
# A backup is built as NAME.partial and renamed only once complete, checksummed and listed
# in its manifest.json: nothing that looks complete is ever left by a failure.
set -euo pipefail

# A backup is root's alone: every file 0600, but the dump's, which stays PostgreSQL's (as
# pg_dump wrote it) so a restore's pg_restore can read it as that user, never as root.
umask 077
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC2034 # read by dfr-common's log()
tool=dfr-backup
# shellcheck source=/dev/null
. "$here/bin/dfr-common"

# zstd level 1: measured on 2.35 GB, 5.0 s and 320 MB against 7.6 s and 308 MB at level 3
# (docs/benchmarks.md); the dump is CPU-bound, the 4 % of size is not worth 50 % more time.
DUMP_COMPRESSION=zstd:1

sql() { docker exec -i -u postgres "$pg" psql -X -v ON_ERROR_STOP=1 -d "$DFR_DB_NAME" -tAq "$@"; }

# "SIZE SHA256 NAME" of every file under $1 but manifest.json, sorted by name. Sums already
# taken ("SHA256 NAME" lines in $2, if given) are not taken again.
part_sums() {
  local dir=$1 known=${2:-/dev/null}
  {
    (cd "$dir" && find . -type f ! -name manifest.json -printf 'S %s %P\n')
    sed 's/^/H /' "$known"
    (cd "$dir" && find . -type f ! -name manifest.json -printf '%P\n' |
      { LC_ALL=C grep -vxF -f <(cut -d' ' -f2- "$known") || true; } | tr '\n' '\0' | sha256_files |
      sed 's/^/H /')
  } | awk '
    $1 == "S" { size[substr($0, length($2) + 4)] = $2; next }
    { sha[substr($0, length($2) + 4)] = $2 }
    END { for (name in size) print size[name], sha[name], name }' | LC_ALL=C sort -k3
}

json_string() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }

# What the manifest says of the database, into $work: asked while pg_dump starts, not after it,
# where each `docker exec` would add to the backup's time.
read_database_facts() {
  sql -c 'SHOW server_version' >"$work/pg_version"
  sql -c "SELECT latest_version FROM ir_module_module WHERE name = 'base'" >"$work/odoo_version"
  sql -F ' ' -c "SELECT name, coalesce(latest_version, '') FROM ir_module_module
                 WHERE state = 'installed' ORDER BY name" >"$work/modules"
  sql -c "SELECT pg_database_size(current_database())" >"$work/database_bytes"
}

write_manifest() {
  local stage=$1 format=$2 created=$3 known_sums=$4
  local pg_version odoo_version major modules files
  wait "$facts_job" || fail "could not read the database's versions and modules (above)"
  facts_job=""
  pg_version=$(cat "$work/pg_version")
  odoo_version=$(cat "$work/odoo_version")
  major=$(printf '%s' "$odoo_version" | cut -d. -f1-2)
  modules=$(awk 'NF { printf "%s\"%s\": \"%s\"", sep, $1, $2; sep = ", " }' "$work/modules")
  files=$(part_sums "$stage" "$known_sums" | awk '{
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
  "database_bytes": $(cat "$work/database_bytes"),
  "odoo_dump": "1",
  "version": $(json_string "$odoo_version"),
  "major_version": $(json_string "$major"),
  "pg_version": $(json_string "$pg_version"),
  "pg_dump": {"format": "$([ "$format" = odoo-zip ] && echo plain || echo directory)", "compression": "$([ "$format" = odoo-zip ] && echo none || echo "$DUMP_COMPRESSION")", "jobs": $DFR_BACKUP_JOBS},
  "modules": {$modules},
  "files": {$files
  }
}
JSON
}

# Globals: the EXIT trap that removes an unfinished backup runs outside create().
stage="" dumping="" work="" dump_job="" facts_job="" sum_jobs=() flusher=""
discard_unfinished() {
  local job
  [ -z "$flusher" ] || kill "$flusher" 2>/dev/null || true
  # pg_dump stops by itself once its output directory is gone.
  [ -z "$dump_job" ] || kill "$dump_job" 2>/dev/null || true
  # The rest end by themselves.
  for job in $facts_job "${sum_jobs[@]}"; do wait "$job" 2>/dev/null || true; done
  [ -z "$stage" ] || rm -rf "$stage"
  [ -z "$dumping" ] || rm -rf "$dumping"
  [ -z "$work" ] || rm -rf "$work"
}

# PostgreSQL sees the backups read-only (compose.yaml) but for .dumping, where pg_dump writes
# into a directory made for this backup; moved into the backup once complete (same filesystem).
dump_database() {
  local format=$1 name=$2
  if [ "$format" = odoo-zip ]; then
    exec docker exec -u postgres "$pg" pg_dump -d "$DFR_DB_NAME" --no-owner \
      --lock-wait-timeout=120s -f "/backups/.dumping/$name.partial/dump.sql"
  fi
  exec docker exec -u postgres "$pg" pg_dump -d "$DFR_DB_NAME" --format=directory \
    --jobs="$DFR_BACKUP_JOBS" --compress="$DUMP_COMPRESSION" --no-owner --lock-wait-timeout=120s \
    -f "/backups/.dumping/$name.partial/database"
}

# Waits for pg_dump, then moves its output ($1: dump.sql or database) into the backup. With a
# backup host, a directory dump's rows are put in id order first, so that the repository finds
# last night's chunks in it again (bin/dfr-order-rows says why). Without, that would be CPU spent
# for nothing: 4-6 s on the benchmark's 2.4 GB database (docs/offsite-backups.md).
dumped() {
  wait "$dump_job" || fail "pg_dump of $DFR_DB_NAME failed"
  dump_job=""
  if [ "$1" = database ] && [ "${DFR_OFFSITE:-no}" = yes ]; then
    local started
    started=$(date +%s%N)
    docker exec -u postgres "$pg" bash -c "$(cat "$here/bin/dfr-order-rows")" dfr-order-rows \
      "/backups/.dumping/${dumping##*/}/database" "$DFR_BACKUP_JOBS" ||
      fail "could not put the dump's rows in order (above)"
    log "the dump's rows put in id order in $((($(date +%s%N) - started) / 1000000)) ms"
  fi
  { chmod -R go-rwx "$dumping/$1" && mv "$dumping/$1" "$stage/$1" && rmdir "$dumping"; } ||
    fail "could not move the dump into $stage"
  dumping=""
}

# The bytes the tar command "$@" (all but its -f) would write: GNU tar writing to /dev/null
# reads no file, and says.
tar_bytes() {
  LC_ALL=C "$@" -cf /dev/null --totals 2>&1 | sed -n 's/^Total bytes written: \([0-9]*\).*/\1/p'
}

# With --stream, the parts of $stage named in "$@" as tar on stdout, without the end-of-archive
# marker, so more can follow. Member names start with ./ as in `dfr-backup stream`
# (tar -C NAME -cf - .). Made in 1 MiB records, cut where the marker starts: the size is that
# of a tar in 512-byte records, whose only trailer is the 1 024-byte marker. 512-byte records
# cost a system call each: the 335 MB dump took 1.2-1.5 s and 2 CPU s to emit that way, 0.4 s
# now. tar's tail is read and dropped.
emit() {
  [ "$stream" = yes ] || return 0
  local size
  size=$(tar_bytes tar -C "$stage" -b 1 "$@")
  [ -n "$size" ] || fail "could not size the tar of $*"
  tar -C "$stage" -b 2048 -cf - "$@" | { head -c "$((size - 1024))"; cat >/dev/null; }
}

# The Odoo filestore of the database, seen from this host (the volume is compose's, local driver).
filestore_dir() {
  echo "$(odoo_data)/filestore/$DFR_DB_NAME"
}

# The filestore as $stage/filestore.tar, a plain tar of the files listed now (files that Odoo
# adds meanwhile belong to the next backup), in 1 MiB records: its files oldest first, then its
# directories by name (tar sets their times and modes once their files are in). Odoo writes an
# attachment's file once and never changes it, so night after night the tar changes at its end
# only (and where Odoo cleaned up): in directory order new files landed all over it, and the
# off-host repository took 186 MB more a night for 8 MB of new files, 7 MB in this order
# (docs/offsite-backups.md). Not compressed:
# Odoo's attachments are mostly JPEG, PNG and PDF, which zstd shrinks by ~10 % (995 against
# 1 099 MB in the benchmark) for CPU that pg_dump, running at the same time, needs.
# With --stream it is sent while it is made, its size (tar_bytes) in the member's header
# first. Its sha256 is taken afterwards from the page cache, while the dump is sent: hashing it
# through a FIFO as it passed cost 1.5-2 CPU s more, which SSH and pg_dump need meanwhile
# (docs/benchmarks.md).
archive_filestore() {
  local src list size=""
  src=$(filestore_dir)
  list="$work/filestore.list"
  if [ -d "$src" ]; then
    (cd "$src" && {
      find . -mindepth 1 ! -type d -printf '%T@ %p\0' | LC_ALL=C sort -z -k1,1n -k2 | sed -z 's/^[^ ]* //'
      find . -mindepth 1 -type d -print0 | LC_ALL=C sort -z
    }) >"$list"
  else
    src=$work && : >"$list"
  fi
  tar_filestore() { tar -C "$src" -b 2048 --null --no-recursion -T "$list" "$@"; }
  if [ "$stream" = yes ]; then
    size=$(tar_bytes tar_filestore)
    [ -n "$size" ] || fail "could not size the filestore's tar"
    tar_header ./filestore.tar "$size" >"$work/header"
  fi
  if [ "$stream" = yes ]; then
    cat "$work/header"
    tar_filestore -cf - | bulk_tee "$stage/filestore.tar"
  else
    tar_filestore -cf "$stage/filestore.tar"
  fi || fail "the filestore could not be archived (above); if a file changed or went away meanwhile (Odoo writing or cleaning up attachments), run the backup again"
  [ -z "$size" ] || [ "$(stat -c %s "$stage/filestore.tar")" = "$size" ] ||
    fail "the filestore changed while it was archived (a file changed size): run the backup again"
  hash_parts filestore.tar
}

# The sha256 of the parts "$@" of $stage ("SHA256 NAME" lines), taken in the background into
# $work/sums.$1; collect_sums waits for them.
hash_parts() {
  (cd "$stage" && find "$@" -type f -print0 | sha256_files >"$work/sums.$1") &
  sum_jobs+=("$!")
}

# Waits for the hash_parts jobs; their sums into $work/sums.
collect_sums() {
  local job
  for job in "${sum_jobs[@]}"; do wait "$job" || fail "could not take the sha256 of the parts"; done
  sum_jobs=()
  find "$work" -maxdepth 1 -name 'sums.*' -exec cat {} + >"$work/sums"
}

# The 512-byte tar header of a member NAME of SIZE bytes, made by tar from a sparse stand-in
# (tar then stops on the closed pipe).
tar_header() {
  local name=$1 size=$2
  mkdir -p "$work/sized" && truncate -s "$size" "$work/sized/$name"
  { tar -C "$work/sized" -b 1 -cf - "$name" 2>/dev/null || true; } | head -c 512 >"$work/sized.header"
  [ "$(stat -c %s "$work/sized.header")" = 512 ] || fail "could not make the tar header of $name"
  cat "$work/sized.header"
}

# A backup is flushed to disk as it is written (a syncfs of its filesystem once a second) and
# once more before it is renamed complete: a crash must not leave a complete-looking backup
# whose files were only in memory. The kernel starts writing back only at ~10 % of memory
# dirty, so left to the end the flush of a 1.4 GB backup held it 1-1.5 s longer; flushed as it
# goes, the benchmark's backup took no longer than without (docs/benchmarks.md). It ends by
# itself once dfr-backup is gone, even killed past its EXIT trap, or the stage is.
flush_while_writing() { while sleep 1 && kill -0 $$ 2>/dev/null; do sync -f "$stage" || return 0; done; }

create() {
  local format=dfr name="" stream=no
  while [ $# -gt 0 ]; do
    case "$1" in
      --format) format=$2; shift 2 ;;
      --name) name=$2; shift 2 ;;
      --stream) stream=yes; shift ;;
      *) fail "unknown option $1" ;;
    esac
  done
  case "$format" in dfr | odoo-zip) ;; *) fail "format $format: use dfr or odoo-zip" ;; esac
  local suffix created pg_uid src
  suffix=$([ "$format" = odoo-zip ] && echo odoo-zip || echo dfrbak)
  created=$(date -u +%FT%TZ)
  name=${name:-$DFR_ENV-$DFR_DB_NAME-$(date -u -d "$created" +%Y%m%dT%H%M%SZ).$suffix}
  case "$name" in
    *[!A-Za-z0-9._-]* | .* | *.partial) fail "bad backup name $name" ;;
  esac
  [ ! -e "$DFR_BACKUP_DIR/$name" ] || fail "backup $name exists already"

  install -d -m 0711 "$DFR_BACKUP_DIR"
  # A second backup while one is being made (run by hand while the timer's runs) is refused,
  # not run alongside: it would double the load and find the other's NAME.partial. The lock
  # outlives this script if pg_dump does (killed outright, pg_dump writes on).
  hold_lock backup || fail "another backup is being made on this host: run this one once it has ended"
  # So a NAME.partial here was left by a backup that never finished (the host crashed, or
  # dfr-backup was killed outright): removed, or the disk fills.
  remove_left_behind "a backup that never finished" "" "$DFR_BACKUP_DIR"/*.partial \
    "$DFR_BACKUP_DIR"/.dumping/*.partial
  pg=$(running postgres)
  stage="$DFR_BACKUP_DIR/$name.partial"
  trap discard_unfinished EXIT
  work=$(mktemp -d)
  read_database_facts &
  facts_job=$!
  pg_uid=$(docker exec "$pg" id -u postgres)
  # Others may pass through a dfr backup to its dump (PostgreSQL's, 0700), and read nothing.
  install -d -m "$([ "$format" = odoo-zip ] && echo 0700 || echo 0711)" "$stage"
  install -d -m 0711 "$DFR_BACKUP_DIR/.dumping"
  dumping="$DFR_BACKUP_DIR/.dumping/$name.partial"
  install -d -m 0700 -o "$pg_uid" "$dumping"
  # Not holding the lock: its last `sleep 1` may outlive this script.
  flush_while_writing </dev/null >/dev/null 2>&1 9>&- &
  flusher=$!

  log "dumping database $DFR_DB_NAME and archiving its filestore at once ($format)"
  dump_database "$format" "$name" &
  dump_job=$!
  if [ "$format" = odoo-zip ]; then
    mkdir "$stage/filestore"
    src=$(filestore_dir)
    if [ -d "$src" ]; then cp -a "$src/." "$stage/filestore/"; fi
    dumped dump.sql
    chown -R 0:0 "$stage"
    emit ./dump.sql ./filestore
  else
    # Streamed, the filestore goes out while pg_dump runs, then the dump, manifest.json last.
    # The parts' sha256 are taken once they are complete, while the dump is sent.
    archive_filestore
    dumped database
    hash_parts database
    emit ./database
  fi
  collect_sums

  write_manifest "$stage" "$([ "$format" = odoo-zip ] && echo odoo-zip || echo dfr-backup/1)" "$created" "$work/sums"
  [ "$stream" = no ] || tar -C "$stage" -b 1 -cf - ./manifest.json
  kill "$flusher" 2>/dev/null || true  # it may have ended: a failing flush is caught below
  flusher=""
  sync -f "$stage" || fail "the backup could not be flushed to disk"
  mv "$stage" "$DFR_BACKUP_DIR/$name"
  trap - EXIT
  sync -f "$DFR_BACKUP_DIR" || fail "the backup $name is complete, but its rename could not be flushed to disk"
  rm -rf "$work"
  log "backup $name complete ($(du -sb "$DFR_BACKUP_DIR/$name" | cut -f1) bytes)"
  [ "$stream" = yes ] || echo "$name $(du -sb "$DFR_BACKUP_DIR/$name" | cut -f1)"
}

checked_name() {
  case "$1" in
    */* | .* | "") fail "bad backup name $1" ;;
  esac
  [ -d "$DFR_BACKUP_DIR/$1" ] || fail "no backup $1 in $DFR_BACKUP_DIR"
}

# The complete backup NAME, or with "latest" the newest (by the time in its name), as "NAME BYTES".
kept() {
  local name=$1 entry
  if [ "$name" = latest ]; then
    name=$(for entry in "$DFR_BACKUP_DIR"/*.dfrbak; do
        if [[ $entry =~ -([0-9]{8}T[0-9]{6}Z)\.dfrbak$ && -f $entry/manifest.json ]]; then
          echo "${BASH_REMATCH[1]} ${entry##*/}"
        fi
      done | LC_ALL=C sort | tail -n1 | cut -d' ' -f2-)
    [ -n "$name" ] || fail "no complete backup is kept in $DFR_BACKUP_DIR"
  fi
  complete "$name"
  echo "$name $(du -sb "$DFR_BACKUP_DIR/$name" | cut -f1)"
}

complete() {
  checked_name "$1"
  [ -f "$DFR_BACKUP_DIR/$1/manifest.json" ] || fail "backup $1 is not complete (no manifest.json)"
}

case "${1:-}" in
  create) shift; create "$@" ;;
  kept) kept "${2:-latest}" ;;
  stream) complete "${2:-}"; tar_read_ahead "$DFR_BACKUP_DIR/$2" ;;
  remove) checked_name "${2:-}"; rm -rf "${DFR_BACKUP_DIR:?}/$2" ;;
  retention)
    exec "$here/bin/dfr-retention" "$DFR_BACKUP_DIR" "$DFR_KEEP_DAILY" "$DFR_KEEP_WEEKLY" \
      "$DFR_KEEP_MONTHLY" ;;
  *) fail "usage: dfr-backup create|kept NAME|stream NAME|remove NAME|retention" ;;
esac
