#!/bin/bash
# dfr-offsite: this host's backups in the off-host borg repository (docs/offsite-backups.md).
#
#   dfr-offsite init                  make the repository (repokey[-blake2]) unless it exists
#   dfr-offsite push NAME|latest      send a backup kept here (NAME.dfrbak) to the repository
#   dfr-offsite list                  the archives, oldest first
#   dfr-offsite manifest NAME|latest  an archive's manifest.json on stdout
#   dfr-offsite extract NAME|latest   unpack an archive into incoming/NAME; prints NAME
#   dfr-offsite restore NAME|latest [OPTION...]
#                                     restore an archive with dfr-restore and its OPTIONs,
#                                     its filestore streamed from the repository
#   dfr-offsite status                "NAME EPOCH REPOSITORY_BYTES" of the newest archive
#   dfr-offsite drill [NAME|latest]   restore an archive into a scratch database, check it,
#                                     start Odoo on it, remove it; result in the metric file
#   dfr-offsite --from ENV VERB ...   the same reads (list, manifest, extract, restore, status, drill)
#                                     in the repository of another environment ENV, which
#                                     this one reads (offsite_reads: offsite-ENV.env here)
#
# This host reaches the repository with its own key, which the backup host lets run nothing
# but `borg serve --append-only` in this environment's directory: it adds archives, reads
# them, and can take nothing away. The passphrase is read by borg from a root-only file
# (BORG_PASSCOMMAND): never on a command line.
set -euo pipefail
umask 077
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC2034 # read by dfr-common's log()
tool=dfr-offsite
# shellcheck source=/dev/null
. "$here/bin/dfr-common"

# The environment whose repository this run uses: this one's, or with --from another's.
source_env=""
if [ "${1:-}" = --from ]; then
  source_env=${2:-}
  shift 2 || true
  case "$source_env" in
    "" | *[!a-z0-9_-]* | "$DFR_ENV") fail "--from takes another environment's name, not '$source_env'" ;;
  esac
  [ -f "$here/offsite-$source_env.env" ] ||
    fail "$DFR_ENV does not read $source_env's off-host repository: add \"$source_env\" to offsite_reads (group_data/$DFR_ENV.py) and deploy $DFR_ENV"
  case "${1:-}" in
    list | manifest | manifest-of | extract | restore | status | drill) ;;
    *) fail "--from $source_env only reads (list, manifest, extract, restore, status, drill): ${1:-no verb} is $source_env's own to do" ;;
  esac
fi
repo_env=${source_env:-$DFR_ENV}
suffix=${source_env:+-$source_env}
# shellcheck source=/dev/null
. "$here/offsite$suffix.env"

export BORG_REPO=$DFR_OFFSITE_REPOSITORY
export BORG_PASSCOMMAND="cat $here/offsite$suffix.passphrase"
export BORG_RSH="ssh -i $DFR_OFFSITE_KEY -o IdentitiesOnly=yes -o BatchMode=yes \
-o UserKnownHostsFile=$here/offsite_known_hosts -o GlobalKnownHostsFile=/dev/null \
-o StrictHostKeyChecking=yes -o ConnectTimeout=15 -o ServerAliveInterval=30"
# Cache, key state and borg's record of the repositories it knows: this environment's own, and
# one more for each repository it reads.
export BORG_BASE_DIR=/var/lib/dfr-offsite/$DFR_ENV${source_env:+-from-$source_env}
export BORG_RELOCATED_REPO_ACCESS_IS_OK=no BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=no
export BORG_CHECK_I_KNOW_WHAT_I_AM_DOING=NO BORG_DELETE_I_KNOW_WHAT_I_AM_DOING=NO
install -d -m 0700 "$BORG_BASE_DIR"

# The dump is zstd-compressed by pg_dump and most of the filestore is JPEG, PNG and PDF:
# borg's auto mode compresses only what its lz4 probe finds compressible.
COMPRESSION=auto,zstd,3

errors=$(mktemp) out=$(mktemp)
trap 'rm -f "$errors" "$out"' EXIT

# Runs borg "$@"; on failure, one line saying what went wrong and what to do.
# Waits up to 10 minutes for the repository's lock (borg's default: 1 s): a push and a read
# (a drill, another environment's restore) may meet there.
borg_run() {
  if borg --lock-wait 600 "$@" 2>"$errors"; then return 0; fi
  borg_failed "$1"
}

# Fails with one line saying why borg's command $1 failed (its messages are in $errors).
borg_failed() {
  local why
  why=$(grep -v '^\s*$' "$errors" | grep -vE '^(Traceback|  |Platform|Linux|Borg|PID|sys.argv|SSH_ORIGINAL)' | tail -n1)
  if grep -q 'REMOTE HOST IDENTIFICATION HAS CHANGED\|Host key verification failed' "$errors"; then
    fail "the backup host $DFR_OFFSITE_ADDRESS answers with another SSH host key than the one recorded: nothing was sent; if it was reinstalled, record its new key (known_hosts/) and deploy again, else treat it as an attack"
  elif grep -q 'Permission denied' "$errors"; then
    fail "the backup host $DFR_OFFSITE_ADDRESS refuses this host's key: deploy again to authorize it"
  elif grep -qiE 'Connection (refused|timed out|closed)|No route to host|Could not resolve|Network is unreachable|Connection reset' "$errors"; then
    fail "the backup host $DFR_OFFSITE_ADDRESS:$DFR_OFFSITE_PORT cannot be reached ($why): check it runs and this host may connect to it"
  elif grep -qi 'passphrase supplied in BORG_PASSCOMMAND is incorrect\|passphrase.*incorrect' "$errors"; then
    fail "the off-host repository refuses DFR_OFFSITE_PASSPHRASE: secrets/$repo_env.env must hold the passphrase it was made with"
  elif grep -q 'does not exist' "$errors"; then
    fail "${why#*: }"
  fi
  fail "borg $1 failed: ${why:-no message}"
}

# An archive's name as the repository has it: NAME.dfrbak, or the newest with "latest".
archive_name() {
  local name=$1
  if [ "$name" = latest ]; then
    borg_run list --short --sort-by timestamp --last 1 >"$out"
    name=$(tail -n1 "$out")
    [ -n "$name" ] || fail "the off-host repository $DFR_OFFSITE_REPOSITORY ($repo_env) holds no archive yet"
  fi
  case "$name" in
    *[!A-Za-z0-9._-]* | .* | "") fail "bad archive name $name" ;;
  esac
  echo "$name"
}

push() {
  local name
  name=$(dfr_backup_name "${1:-latest}")
  [ -f "$DFR_BACKUP_DIR/$name/manifest.json" ] || fail "no complete backup $name in $DFR_BACKUP_DIR"
  borg_run list --short >"$out"
  if grep -qxF "$name" "$out"; then
    log "backup $name is off-host already"
    return 0
  fi
  log "sending backup $name to $DFR_OFFSITE_REPOSITORY"
  # Relative paths: every backup's parts have the same names, so their chunks are found again.
  (cd "$DFR_BACKUP_DIR/$name" && borg_run create --compression "$COMPRESSION" --stats "::$name" .)
  log "backup $name is off-host: $(grep -E '^(This archive|Duration):' "$errors" | tr -s ' ' | paste -sd ';')"
}

# A backup kept here: NAME, or the newest with "latest".
dfr_backup_name() {
  if [ "$1" = latest ]; then "$here/bin/dfr-backup" kept latest | cut -d' ' -f1; else echo "$1"; fi
}

# Unpacks the archive NAME (or the newest), or only its parts "${@:2}", into incoming/NAME.
extract() {
  local name target
  name=$(archive_name "${1:-latest}")
  target="$DFR_BACKUP_DIR/incoming/$name"
  install -d -m 0711 "$DFR_BACKUP_DIR/incoming"
  rm -rf "$target.partial" && install -d -m 0700 "$target.partial"
  log "extracting $name from $DFR_OFFSITE_REPOSITORY"
  (cd "$target.partial" && borg_run extract "::$name" "${@:2}") ||
    { rm -rf "$target.partial"; exit 1; }
  chmod 0711 "$target.partial"
  rm -rf "$target" && mv "$target.partial" "$target"
  echo "$name"
}

status() {
  local info
  info=$(mktemp)
  borg_run list --json --sort-by timestamp --last 1 >"$out"
  borg_run info --json >"$info"
  python3 - "$out" "$info" <<'PY'
import datetime, json, sys
archives = json.load(open(sys.argv[1]))["archives"]
size = json.load(open(sys.argv[2]))["cache"]["stats"]["unique_csize"]
if not archives:
    print("-", "-", size)
else:
    a = archives[-1]
    when = datetime.datetime.fromisoformat(a["time"]).replace(tzinfo=datetime.timezone.utc)
    print(a["archive"], int(when.timestamp()), size)
PY
  rm -f "$info"
}

# Restores the archive NAME (or the newest) with dfr-restore and its options "${@:2}", as an
# upload is restored: the database's part and the manifest unpacked first, then the filestore's
# tar streamed from the repository, checked and unpacked while the database is restored.
# Unpacking the whole archive first added 40 % to the restore's time (docs/benchmarks.md).
restore() {
  local name streamed
  name=$(extract "${1:-latest}" ./database ./manifest.json)
  streamed=$(mktemp)
  if { borg --lock-wait 600 extract --stdout "::$name" ./filestore.tar 2>"$errors" ||
    echo failed >"$streamed"; } | "$here/bin/dfr-restore" "incoming/$name" --filestore-on-stdin "${@:2}"; then
    rm -f "$streamed"
    return 0
  fi
  # dfr-restore said why it stopped. If the stream broke first (not because dfr-restore stopped
  # reading it), borg's reason too.
  if [ -s "$streamed" ] && ! grep -qiE 'broken ?pipe' "$errors"; then
    rm -f "$streamed"
    borg_failed extract
  fi
  rm -f "$streamed"
  exit 1
}

drill() {
  local started name="" ok=yes stamp age=0 lines options=(--drill) labels metrics verdict
  started=$(date +%s)
  lines=$(mktemp)
  labels="{env=\"$DFR_ENV\"}" metrics="$DFR_METRICS_DIR/dfr_drill_$DFR_ENV.prom"
  if [ -n "$source_env" ]; then
    # Another environment's data on this host: neutralized (no mail, no crons) before Odoo
    # starts on it, as a restore here would; the metric says whose backup it was, and where.
    [ "$DFR_ENV" = prod ] || options+=(--neutralize)
    labels="{env=\"$source_env\",drilled_on=\"$DFR_ENV\"}"
    metrics="$DFR_METRICS_DIR/dfr_drill_${DFR_ENV}_from_$source_env.prom"
  fi
  {
    log "drilling $repo_env's off-host backup ${1:-latest} on $DFR_ENV's host"
    if name=$(extract "${1:-latest}"); then
      "$here/bin/dfr-restore" "incoming/$name" "${options[@]}" || ok=no
    else
      ok=no
    fi
  } 2> >(tee -a "$lines" >&2)
  stamp=$(printf '%s' "$name" | sed -n 's/.*-\([0-9]\{8\}\)T\([0-9]\{2\}\)\([0-9]\{2\}\)\([0-9]\{2\}\)Z\.dfrbak$/\1 \2:\3:\4/p')
  [ -z "$stamp" ] || age=$(($(date +%s) - $(date -u -d "$stamp" +%s)))
  {
    echo "# HELP dfr_backup_drill_last_result 1 if the last drill restored, checked and started Odoo on the newest off-host backup, else 0."
    echo "# TYPE dfr_backup_drill_last_result gauge"
    echo "dfr_backup_drill_last_result$labels $([ "$ok" = yes ] && echo 1 || echo 0)"
    echo "# TYPE dfr_backup_drill_last_run_timestamp_seconds gauge"
    echo "dfr_backup_drill_last_run_timestamp_seconds$labels $(date +%s)"
    echo "# TYPE dfr_backup_drill_last_duration_seconds gauge"
    echo "dfr_backup_drill_last_duration_seconds$labels $(($(date +%s) - started))"
    echo "# TYPE dfr_backup_drill_backup_age_seconds gauge"
    echo "dfr_backup_drill_backup_age_seconds$labels $age"
  } | write_metric_file "$metrics" ||
    log "could not write the metric file in $DFR_METRICS_DIR"
  verdict="drill of $repo_env's ${name:-newest off-host backup} FAILED (above): that backup may not restore"
  # With drill_notify_url, every drill pings it (its own check: a drill that never runs is
  # noticed too). Without, only a failed one pings backup_notify_url's /fail: that check watches
  # the nightly backup, which a drill's success must not stand in for. A failed drill's ping
  # ends with whose backup it was.
  [ "$ok" = yes ] || echo "$verdict" >>"$lines"
  if [ -s "$here/drill-notify.url" ]; then
    notify "$ok" "$lines" drill-notify.url
  elif [ "$ok" != yes ]; then
    notify no "$lines"
  fi
  rm -f "$lines"
  [ "$ok" = yes ] || fail "$verdict"
  log "drill of $repo_env's $name passed ($(($(date +%s) - started)) s, the backup $((age / 3600)) h old)"
}

init() {
  if borg info >/dev/null 2>"$errors"; then return 0; fi
  grep -q 'does not exist' "$errors" || borg_run info
  # borg's advice: repokey (HMAC-SHA256) or repokey-blake2, whichever hashes faster here. SHA-256
  # is faster where the CPU computes it (x86 SHA-NI, ARMv8 SHA2): on the test bed's CPU, a push of
  # a 1.1 GB backup that was all in the repository already took 1.41 s against 1.86 s.
  local mode=repokey-blake2
  if grep -qwE 'sha_ni|sha2' /proc/cpuinfo; then mode=repokey; fi
  log "making the repository $DFR_OFFSITE_REPOSITORY ($mode)"
  borg_run init --encryption "$mode"
}

case "${1:-}" in
  init) init ;;
  push) push "${2:-latest}" ;;
  list) borg_run list --short --sort-by timestamp ;;
  manifest) name=$(archive_name "${2:-latest}") && borg_run extract --stdout "::$name" ./manifest.json ;;
  manifest-of)  # the archive's name on the first line, then its manifest
    name=$(archive_name "${2:-latest}") && echo "$name" &&
      borg_run extract --stdout "::$name" ./manifest.json ;;
  extract) extract "${2:-latest}" ;;
  restore) shift && restore "${1:-latest}" "${@:2}" ;;
  status) status ;;
  drill) drill "${2:-latest}" ;;
  *) fail "usage: dfr-offsite init|drill|push NAME|latest|list|manifest NAME|extract NAME|restore NAME|status" ;;
esac
