#!/bin/bash
# dfr-order-rows DIR JOBS: puts the rows of each table's data file of the pg_dump directory DIR
# in one order that does not depend on where PostgreSQL stored them: by the first column as a
# number (Odoo's id), then by the whole row. dfr-backup runs it in the PostgreSQL container, as
# postgres, once pg_dump has ended and before the dump's sha256 are taken; JOBS files at once.
#
# Why: an UPDATE writes the row's new version wherever its table has room, and pg_dump writes
# rows in the order they are stored. Editing the newest 2 % of mail_message's rows put their new
# versions on 679 pages spread over the whole table, so its compressed file differed from its
# first 1 % on and the off-host repository took all of it again. In id order, the day's
# edits of recent records change the end of the file only (docs/offsite-backups.md).
# A restore is not affected: a table's rows have no order, pg_restore loads them as they come
# and builds the indexes afterwards.
set -euo pipefail
dir=$1 jobs=$2

# Reads COPY text on stdin to its end, and succeeds, if its rows are in order; else stops at
# the first row out of order, and fails. sort -c names the first line out of order: in a table
# in order, the end-of-data line.
in_order() {
  local disorder
  disorder=$(LC_ALL=C sort -c -t "$(printf '\t')" -k1,1n 2>&1 || true)
  [ "${disorder#*: disorder: }" = '\.' ] || return 1
  cat >/dev/null
}

# One table's NNNN.dat.zst: COPY text, a row a line (a newline inside a value is written \n),
# then the line "\." (no row can be that: its backslash would be written \\) and empty lines,
# two with PostgreSQL 17. Every file is compressed again by zstd here, ordered or not: pg_dump's
# zstd cuts its blocks elsewhere, and the same rows must make the same bytes whether or not a
# night had to order them (a table in order one night and not the next would be sent whole).
# A file that does not end so is left as it is.
order() {
  set -euo pipefail
  local file=$1 compressor trailer
  rm -f "$file.fifo" && mkfifo "$file.fifo"
  zstd -q -1 -f -o "$file.ordered" <"$file.fifo" &
  compressor=$!
  # Most tables are in order as stored (rows added at the end, edited where there was no room
  # elsewhere): read once, and compressed again as they are.
  if zstd -dcq "$file" | tee "$file.fifo" | in_order; then
    wait "$compressor"
    rm "$file.fifo" && mv "$file.ordered" "$file"
    return 0
  fi
  wait "$compressor" || true
  rm -f "$file.fifo" "$file.ordered"
  trailer=$(zstd -dcq "$file" | tail -n 5 | awk '
    { line[NR] = $0 } $0 == "\\." { at = NR }
    END { if (!at) exit; for (i = at + 1; i <= NR; i++) if (line[i] != "") exit; print NR - at + 1 }')
  [ -n "$trailer" ] || return 0
  {
    zstd -dcq "$file" | head -n "-$trailer" |
      LC_ALL=C sort -t "$(printf '\t')" -k1,1n -S 256M -T "$(dirname "$file")"
    printf '\\.\n'
    for _ in $(seq 2 "$trailer"); do echo; done
  } | zstd -q -1 -o "$file.ordered"
  mv "$file.ordered" "$file"
}
export -f in_order order

# shellcheck disable=SC2016 # $1 is bash -c's, not this script's
# The biggest first, so the last to start is a small one. Large objects (blob_*.dat.zst) are
# not rows.
find "$dir" -maxdepth 1 -regextype posix-extended -regex '.*/[0-9]+\.dat\.zst' -printf '%s %p\0' |
  sort -z -rn | sed -z 's/^[0-9]* //' | xargs -0 -r -n 1 -P "$jobs" bash -c 'order "$1"' order
