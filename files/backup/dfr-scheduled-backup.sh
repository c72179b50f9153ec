#!/bin/bash
# dfr-scheduled-backup: what the daily timer runs. A backup, sent off-host when a repository is
# configured, then the host's retention; the outcome goes to the Prometheus textfile metric
# file and, when backup_notify_url is set, to that URL (healthchecks.io's convention: the URL
# on success, <url>/fail with the last log lines on failure). Notifying never fails the backup.
# Exits non-zero when any step failed, so the unit shows it too.
set -uo pipefail
umask 077
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC2034 # read by dfr-common's log()
tool=dfr-scheduled-backup
# shellcheck source=/dev/null
. "$here/bin/dfr-common"

lines=$(mktemp)
trap 'rm -f "$lines"' EXIT

# Runs "$@", its log lines shown and kept for the notification.
step() { "$@" 2> >(tee -a "$lines" >&2); }

started=$(date +%s)
ok=yes offsite="" size=0
if answer=$(step "$here/bin/dfr-backup" create); then
  read -r name size <<<"$(printf '%s\n' "$answer" | tail -n1)"
  if [ "${DFR_OFFSITE:-no}" = yes ]; then
    if step "$here/bin/dfr-offsite" push "$name"; then offsite=1; else offsite=0 ok=no; fi
  fi
  step "$here/bin/dfr-backup" retention || ok=no
else
  ok=no
  [ "${DFR_OFFSITE:-no}" = no ] || offsite=0
fi
ended=$(date +%s)

# node_exporter's textfile collector reads *.prom files: written aside, then renamed in place,
# so it never reads half a file. The last success's time survives a failed run.
write_metrics() {
  local file="$DFR_METRICS_DIR/dfr_backup_$DFR_ENV.prom" labels="{env=\"$DFR_ENV\"}"
  local success offsite_success
  install -d -m 0755 "$DFR_METRICS_DIR" || return 1
  previous() { sed -n "s/^$1$labels \\([0-9]*\\)$/\\1/p" "$file" 2>/dev/null | tail -n1; }
  success=$(previous dfr_backup_last_success_timestamp_seconds)
  offsite_success=$(previous dfr_backup_offsite_last_success_timestamp_seconds)
  [ "$ok" = no ] || success=$ended
  [ "$offsite" != 1 ] || offsite_success=$ended
  {
    echo "# HELP dfr_backup_last_result 1 if the last scheduled backup succeeded (every step), else 0."
    echo "# TYPE dfr_backup_last_result gauge"
    echo "dfr_backup_last_result$labels $([ "$ok" = yes ] && echo 1 || echo 0)"
    echo "# TYPE dfr_backup_last_run_timestamp_seconds gauge"
    echo "dfr_backup_last_run_timestamp_seconds$labels $ended"
    echo "# TYPE dfr_backup_last_success_timestamp_seconds gauge"
    echo "dfr_backup_last_success_timestamp_seconds$labels ${success:-0}"
    echo "# TYPE dfr_backup_last_duration_seconds gauge"
    echo "dfr_backup_last_duration_seconds$labels $((ended - started))"
    echo "# TYPE dfr_backup_last_size_bytes gauge"
    echo "dfr_backup_last_size_bytes$labels ${size:-0}"
    if [ -n "$offsite" ]; then
      echo "# HELP dfr_backup_offsite_last_result 1 if the last backup reached the off-host repository, else 0."
      echo "# TYPE dfr_backup_offsite_last_result gauge"
      echo "dfr_backup_offsite_last_result$labels $offsite"
      echo "# TYPE dfr_backup_offsite_last_success_timestamp_seconds gauge"
      echo "dfr_backup_offsite_last_success_timestamp_seconds$labels ${offsite_success:-0}"
    fi
  } | write_metric_file "$file"
}
write_metrics || log "could not write the metric file in $DFR_METRICS_DIR (the backup's result stands)"

notify "$ok" "$lines"

[ "$ok" = yes ] || exit 1
