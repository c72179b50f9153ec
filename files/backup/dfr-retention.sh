#!/usr/bin/env bash
# Grandfather-father-son retention for DFR backups kept in one directory.
#
#   dfr-retention.sh [--dry-run] DIR DAILY WEEKLY MONTHLY
#
# A backup is an entry of DIR named <anything>-YYYYmmddTHHMMSSZ.dfrbak (UTC timestamp). It is
# "good" if it is a directory holding manifest.json or a regular file (a tar). Good backups are
# taken newest first; one is kept if it is the newest good backup, or if it is the first one of
# its day (YYYY-mm-dd), ISO week (%G-W%V) or month (YYYY-mm) while that tier still has room
# (DAILY, WEEKLY, MONTHLY periods). The other good backups are removed with rm -rf.
#
# Never touched: names that do not match (*.partial among them), symbolic links, impossible
# timestamps, and matching entries that are not good (a directory without manifest.json may be
# a backup still being written).
#
# Output (stdout): "dfr-retention: removed NAME" per removal ("would remove NAME" with
# --dry-run), then "dfr-retention: kept N, removed M". Bad arguments: one line on stderr, exit 2.
# A failed removal is reported on stderr and makes the exit status 1.
# Needs bash >= 4 and GNU coreutils (date, sort).
set -euo pipefail
export LC_ALL=C

readonly prog=dfr-retention
readonly usage="usage: dfr-retention.sh [--dry-run] DIR DAILY WEEKLY MONTHLY"

die() {
  printf '%s: %s (%s)\n' "$prog" "$1" "$usage" >&2
  exit 2
}

dry_run=0
while (($#)); do
  case "$1" in
    --dry-run) dry_run=1; shift ;;
    -h | --help) printf '%s\n' "$usage"; exit 0 ;;
    --) shift; break ;;
    -*) die "unknown option '$1'" ;;
    *) break ;;
  esac
done
(($# == 4)) || die "expected 4 arguments, got $#"

dir=$1
[[ -d $dir ]] || die "'$dir' is not a directory"

count() { # count NAME VALUE -> prints VALUE as a plain decimal integer
  local value=$2
  [[ $value =~ ^[0-9]+$ ]] || die "$1 must be a non-negative integer, got '$value'"
  value=${value#"${value%%[!0]*}"} # strip leading zeros (bash would read 08 as octal)
  ((${#value} <= 9)) || die "$1 is too large: '$2'"
  printf '%d\n' "${value:-0}"
}
daily=$(count DAILY "$2") || exit 2
weekly=$(count WEEKLY "$3") || exit 2
monthly=$(count MONTHLY "$4") || exit 2

name_re='^[^[:cntrl:]/]*-([0-9]{8}T[0-9]{6}Z)\.dfrbak$'

# Collect good backups: names[i], and "STAMP<TAB>i" records to sort (names never go through sort).
shopt -s nullglob dotglob
names=()
paths=()
days=()
weeks=()
months=()
records=""
for path in "$dir"/*; do
  name=${path##*/}
  [[ $name =~ $name_re ]] || continue
  stamp=${BASH_REMATCH[1]}
  [[ -L $path ]] && continue
  if [[ -d $path ]]; then
    [[ -f $path/manifest.json ]] || continue
  elif [[ ! -f $path ]]; then
    continue
  fi
  # One date call per backup; the round trip rejects impossible dates such as 20260230.
  periods=$(date -u -d "${stamp:0:4}-${stamp:4:2}-${stamp:6:2} ${stamp:9:2}:${stamp:11:2}:${stamp:13:2}" \
    +'%Y%m%dT%H%M%SZ %Y-%m-%d %G-W%V %Y-%m' 2>/dev/null) || continue
  read -r check day week month <<<"$periods"
  [[ $check == "$stamp" ]] || continue
  i=${#names[@]}
  names+=("$name")
  paths+=("$path")
  days+=("$day")
  weeks+=("$week")
  months+=("$month")
  records+="$stamp"$'\t'"$i"$'\n'
done

# Newest first; equal timestamps by name, descending (the glob above is sorted by name).
order=()
if [[ -n $records ]]; then
  mapfile -t order < <(printf '%s' "$records" | sort -t $'\t' -k1,1r -k2,2nr | cut -f2)
fi

declare -A seen_day=() seen_week=() seen_month=()
kept=0
removed=0
failed=0
first=1
for i in "${order[@]}"; do
  keep=$first
  first=0
  if ((${#seen_day[@]} < daily)) && [[ -z ${seen_day[${days[i]}]:-} ]]; then
    seen_day[${days[i]}]=1
    keep=1
  fi
  if ((${#seen_week[@]} < weekly)) && [[ -z ${seen_week[${weeks[i]}]:-} ]]; then
    seen_week[${weeks[i]}]=1
    keep=1
  fi
  if ((${#seen_month[@]} < monthly)) && [[ -z ${seen_month[${months[i]}]:-} ]]; then
    seen_month[${months[i]}]=1
    keep=1
  fi
  if ((keep)); then
    kept=$((kept + 1))
  elif ((dry_run)); then
    printf '%s: would remove %s\n' "$prog" "${names[i]}"
    removed=$((removed + 1))
  elif rm -rf -- "${paths[i]}"; then
    printf '%s: removed %s\n' "$prog" "${names[i]}"
    removed=$((removed + 1))
  else
    printf '%s: failed to remove %s\n' "$prog" "${names[i]}" >&2
    failed=$((failed + 1))
  fi
done

if ((dry_run)); then
  printf '%s: kept %d, removed 0 (dry run: would remove %d)\n' "$prog" "$kept" "$removed"
else
  printf '%s: kept %d, removed %d\n' "$prog" "$kept" "$removed"
fi
((failed == 0)) || exit 1
