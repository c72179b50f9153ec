#!/bin/bash
# dfr-offsite-prune: the off-host repository's retention, on the backup host with its own
# authority. Run as root by dfr-offsite-prune-<env>.timer and by `make offsite_prune`; borg
# runs as the account owning the repository, the passphrase reaching it on a file descriptor.
#
#   dfr-offsite-prune [--vanished-ok] [--passphrase-file FILE]
#                     [--keep-daily N] [--keep-weekly N] [--keep-monthly N]
#
# It refuses (nothing pruned) when archives that the last prune kept have vanished since: the
# stack hosts' append-only keys record a delete as a new transaction, which compacting would
# make final. Otherwise borg prune with the keep counts, borg compact to free the space, and
# the archives kept recorded for the next run's check. The outcome goes to the Prometheus
# textfile dfr_offsite_prune_<env>.prom; a failure also to backup_notify_url's /fail (a
# success pings nothing: that URL watches the stack hosts' backups).
set -uo pipefail
umask 077
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC2034 # read by dfr-common's log()
tool=dfr-offsite-prune
# shellcheck source=/dev/null
. "$here/bin/dfr-common"

passphrase=$here/offsite.passphrase vanished_ok=no
keep_daily=$DFR_KEEP_DAILY keep_weekly=$DFR_KEEP_WEEKLY keep_monthly=$DFR_KEEP_MONTHLY
while [ $# -gt 0 ]; do
  case $1 in
    --vanished-ok) vanished_ok=yes ;;
    --passphrase-file) passphrase=$2 && shift ;;
    --keep-daily) keep_daily=$2 && shift ;;
    --keep-weekly) keep_weekly=$2 && shift ;;
    --keep-monthly) keep_monthly=$2 && shift ;;
    *) fail "unknown argument $1: see the usage at the top of $0" ;;
  esac
  shift
done
repository=$DFR_OFFSITE_DIRECTORY/repo
record=$DFR_OFFSITE_DIRECTORY.archives

# borg as the repository's account, which cannot read the (root's) passphrase file itself.
borg_as_owner() {
  runuser -u "$DFR_OFFSITE_ACCOUNT" -- env BORG_PASSPHRASE_FD=3 \
    BORG_BASE_DIR="$DFR_OFFSITE_DIRECTORY.borg" BORG_RELOCATED_REPO_ACCESS_IS_OK=yes \
    borg "$@" 3<"$passphrase"
}

prune() {
  local now vanished
  [ -f "$passphrase" ] ||
    fail "no passphrase at $passphrase: set offsite_prune_schedule and deploy," \
      "or prune with make offsite_prune"
  hold_lock prune || fail "another prune of $repository is running"
  now=$(borg_as_owner list --short "$repository") ||
    fail "listing the archives of $repository failed"
  # The archives the last prune left: one that has gone since was not removed by pruning.
  vanished=$([ ! -f "$record" ] || comm -23 <(sort "$record") <(printf '%s\n' "$now" | sort))
  if [ -n "$vanished" ] && [ "$vanished_ok" = no ]; then
    fail "$(wc -l <<<"$vanished") archive(s) vanished from $repository since the last prune" \
      "without being pruned ($(head -n3 <<<"$vanished" | paste -sd, - | sed 's/,/, /g')):" \
      "deleted through a stack host's append-only key? Nothing was pruned: look at the" \
      "repository's transactions first (docs/offsite-backups.md), then run again with --data" \
      "offsite_vanished_ok=true"
  fi
  borg_as_owner prune --list --keep-daily "$keep_daily" --keep-weekly "$keep_weekly" \
    --keep-monthly "$keep_monthly" "$repository" || fail "borg prune of $repository failed"
  borg_as_owner compact "$repository" || fail "borg compact of $repository failed"
  { borg_as_owner list --short "$repository" >"$record.new" && mv "$record.new" "$record"; } ||
    fail "recording the archives kept in $record failed"
  log "kept $(sed -n '$=' "$record") archive(s) in $repository"
}

lines=$(mktemp)
trap 'rm -f "$lines"' EXIT
ok=yes
(prune) 2> >(tee -a "$lines" >&2) || ok=no
ended=$(date +%s)

write_metrics() {
  local file="$DFR_METRICS_DIR/dfr_offsite_prune_$DFR_ENV.prom" labels="{env=\"$DFR_ENV\"}"
  local success kept size
  success=$(sed -n "s/^dfr_offsite_prune_last_success_timestamp_seconds$labels \\(.*\\)$/\\1/p" \
    "$file" 2>/dev/null | tail -n1)
  [ "$ok" = no ] || success=$ended
  kept=$(sed -n '$=' "$record" 2>/dev/null)
  size=$(du -sb "$repository" 2>/dev/null | cut -f1)
  {
    echo "# HELP dfr_offsite_prune_last_result 1 if the last off-host prune succeeded, else 0."
    echo "# TYPE dfr_offsite_prune_last_result gauge"
    echo "dfr_offsite_prune_last_result$labels $([ "$ok" = yes ] && echo 1 || echo 0)"
    echo "# TYPE dfr_offsite_prune_last_run_timestamp_seconds gauge"
    echo "dfr_offsite_prune_last_run_timestamp_seconds$labels $ended"
    echo "# TYPE dfr_offsite_prune_last_success_timestamp_seconds gauge"
    echo "dfr_offsite_prune_last_success_timestamp_seconds$labels ${success:-0}"
    echo "# HELP dfr_offsite_prune_archives The archives the last successful prune kept."
    echo "# TYPE dfr_offsite_prune_archives gauge"
    echo "dfr_offsite_prune_archives$labels ${kept:-0}"
    echo "# TYPE dfr_offsite_repository_size_bytes gauge"
    echo "dfr_offsite_repository_size_bytes$labels ${size:-0}"
  } | write_metric_file "$file"
}
write_metrics ||
  log "could not write the metric file in $DFR_METRICS_DIR (the prune's result stands)"

[ "$ok" = yes ] || notify no "$lines"
[ "$ok" = yes ] || exit 1
