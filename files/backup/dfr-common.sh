# shellcheck shell=bash disable=SC2154 # $here and $tool are set by the sourcing script
# Shared by dfr-backup and dfr-restore (sourced): settings, logging, containers, sha256; on
# the backup host by dfr-offsite-prune (settings, logging, lock, notify, metric file).
# The caller sets $tool (its name in log lines) and $here (the stack directory).

# shellcheck source=/dev/null
. "$here/backup.env"

log() { printf '%s %s[%s] %s\n' "$(date -u +%FT%T.%3NZ)" "$tool" "$DFR_ENV" "$*" >&2 || true; }
fail() { log "ERROR: $*"; exit 1; }

compose() { (cd "$here" && docker compose -p "$DFR_PROJECT" "$@"); }

# The containers of compose service $1, newest first (more `docker ps` options after it). Not
# one-off `compose run` containers (an operator's `odoo shell`, say): same service label.
service_containers() {
  local service=$1
  shift
  docker ps -q "$@" --filter "label=com.docker.compose.project=$DFR_PROJECT" \
    --filter "label=com.docker.compose.service=$service" --filter label=com.docker.compose.oneoff=False
}

# The running container of a compose service, or nothing.
container() { service_containers "$1" --filter status=running; }

# The same, or one clear error when the service is not running.
running() {
  local id
  id=$(container "$1")
  [ -n "$id" ] || fail "the $1 container of $DFR_PROJECT is not running"
  echo "$id"
}

# psql as PostgreSQL's superuser in the running postgres container $pg (the caller sets it).
psql_admin() { docker exec -i -u postgres "$pg" psql -X -v ON_ERROR_STOP=1 -d postgres -tAq "$@"; }

# Ends every session on database $1 (Odoo's, a cron's, an operator's psql) but ours.
disconnect() {
  psql_admin -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE datname = '$1' AND pid <> pg_backend_pid()" >/dev/null
}

# The Odoo data volume's directory on this host (filestores; module update snapshots).
odoo_data() { docker volume inspect -f '{{.Mountpoint}}' "${DFR_PROJECT}_odoo-data"; }

# Takes /run/lock/$DFR_PROJECT-$1.lock on fd 9, or returns non-zero if another process holds
# it: one $1 (backup, restore) at a time per environment. What the caller starts inherits the
# lock, which lasts until the last of them ends. In /run/lock, not among the backups: an open
# file there would keep a filesystem mounted on the backup directory busy.
hold_lock() {
  mkdir -p /run/lock && exec 9>>"/run/lock/$DFR_PROJECT-$1.lock" && flock -n 9
}

# Removes the paths after $1 and $2, left behind by $1 (for the log line), but $2 (if given).
remove_left_behind() {
  local by=$1 keep=$2 stale
  shift 2
  for stale in "$@"; do
    [ -e "$stale" ] && [ "$stale" != "$keep" ] || continue
    log "removing ${stale#"$DFR_BACKUP_DIR"/}, left by $by"
    rm -rf "$stale"
  done
}

# Unpacks the tar of $2 bytes at the head of stdin into the new directory $1, via $1.partial,
# renamed once complete. dd reads exactly those bytes: what follows on stdin is left to the
# caller.
receive_tar() {
  rm -rf "$1.partial" "$1" && mkdir -m 700 "$1.partial" &&
    dd bs=1M iflag=count_bytes,fullblock count="$2" status=none |
    tar -x --no-same-owner -C "$1.partial" && mv "$1.partial" "$1"
}

# "SHA256 NAME" lines for the NUL-separated file names on stdin (relative to the current
# directory), hashed in parallel with openssl: several times faster than coreutils' sha256sum
# on CPUs with SHA instructions.
sha256_files() {
  if command -v openssl >/dev/null; then
    xargs -0 -r -P "$DFR_BACKUP_JOBS" -n 8 openssl dgst -sha256 -r | sed 's/^\([0-9a-f]*\) \*/\1 /'
  else
    xargs -0 -r -P "$DFR_BACKUP_JOBS" -n 8 sha256sum | sed 's/^\([0-9a-f]*\)  /\1 /'
  fi
}

# tee(1) for bulk data: stdin to stdout and to the files "$@", up to 1 MiB per system call
# where coreutils' tee moves 8 KiB. Between pipes the difference is CPU that SSH and PostgreSQL
# need: teeing a 1.1 GB filestore into a file, a hashing FIFO and a pipe took 6.7 CPU s with
# tee, 5.2-5.6 with this (docs/benchmarks.md). perl-base is Essential on Debian and Ubuntu, the
# only hosts deploy.py installs. As with tee -p, an output whose reader is gone (EPIPE) is
# dropped and the others go on; any other write error fails it.
bulk_tee() {
  perl -e '
    use strict; use warnings;
    $SIG{PIPE} = "IGNORE";
    my $chunk = 1 << 20;
    my @out = (["stdout", \*STDOUT], map { open(my $f, ">", $_) or die "$_: $!\n"; [$_, $f] } @ARGV);
    fcntl($_, 1031, $chunk) for \*STDIN, map { $_->[1] } @out;  # F_SETPIPE_SZ, where a pipe
    while (@out) {
      my $n = sysread(STDIN, my $buf, $chunk);
      defined $n or die "stdin: $!\n";
      last unless $n;
      @out = grep {
        my ($name, $f) = @$_;
        my ($off, $open) = (0, 1);
        while ($open && $off < $n) {
          my $w = syswrite($f, $buf, $n - $off, $off);
          if (defined $w) { $off += $w } elsif ($!{EPIPE}) { $open = 0 } else { die "$name: $!\n" }
        }
        $open;
      } @out;
    }
    close $_->[1] or $!{EPIPE} or die "$_->[0]: $!\n" for @out;
  ' "$@"
}

# A new FIFO $1 whose bytes are hashed in the background: "SHA256 $2" goes into $3. Tee a
# stream into it to hash it as it passes; $! is the hashing job, to wait for.
sha256_fifo() {
  mkfifo "$1"
  {
    if command -v openssl >/dev/null; then
      openssl dgst -sha256 -r <"$1" | cut -d' ' -f1
    else
      sha256sum <"$1" | cut -d' ' -f1
    fi | sed "s/\$/ $2/" >"$3"
  } &
}

# Reads the files named on stdin (NUL-terminated "SIZE PATH" records, as `find -printf '%s
# %p\0'` writes them) into the page cache just ahead of process $1, which reads the same files
# in the same order, never more than 256 MiB ahead of it. A tar reading cold files alone
# leaves the disk idle while it writes to SSH and SSH idle while it waits on the disk; read
# ahead, both work at once (a kept backup's download, 1.4 GB: 5.6-6.5 s -> 4.3-4.6 s). The
# bound keeps a large backup from pushing PostgreSQL's working set out of the page cache.
# Waits without forking (the CPU is SSH's), and ends when $1 does.
read_ahead() {
  local reader=$1 lead=$((256 << 20)) step=$((32 << 20)) queued=0 batched=0 size path offset idle
  local -a batch=()
  exec {idle}<> <(:)
  # true once $reader has read all but $lead of what was queued; false when it is gone
  caught_up() {
    local value
    while { read -r _ value </proc/"$reader"/io; } 2>/dev/null; do  # rchar: io's first line
      (( queued - value > lead )) || return 0
      read -rt 0.02 -u "$idle" || true
    done
    return 1
  }
  while IFS=' ' read -r -d '' size path; do
    if (( size < step )); then
      batch+=("$path") && batched=$((batched + size))
      (( batched < step )) && continue
    fi
    if (( ${#batch[@]} )); then  # small files, a step's worth at a time
      caught_up || return 0
      cat -- "${batch[@]}" >/dev/null 2>&1 || true
      queued=$((queued + batched)) && batched=0 && batch=()
    fi
    for ((offset = 0; size >= step && offset < size; offset += step)); do
      caught_up || return 0
      dd if="$path" of=/dev/null bs=128K skip=$((offset >> 17)) count=$((step >> 17)) \
        status=none 2>/dev/null || return 0
      queued=$((queued + step))
    done
  done
}

# The directory $1 as a tar on stdout, its files read ahead of the tar. 128 KiB records, not
# tar's 10 KiB: SSH gets the bytes in fewer, larger writes (1.4 GB over SSH: 2.1 s against 2.5).
tar_read_ahead() {
  local dir=$1 reader
  tar -C "$dir" -b 256 -cf - . &
  reader=$!
  (cd "$dir" && find . -type f -printf '%s %p\0' | read_ahead "$reader") </dev/null >/dev/null 2>&1 &
  wait "$reader"
}

# Pings backup_notify_url (the 0600 notify.url here, if set; $3 names another such file) after
# a scheduled run: the URL when $1 is yes, <url>/fail otherwise, with the last 20 lines of the
# file $2 as the body (healthchecks.io's convention). The URL reaches curl in a 0600 config
# file, never its command line. A URL that does not answer is logged, never fatal: the run's
# own result stands.
notify() {
  local url config answer file=$here/${3:-notify.url} setting=backup_notify_url
  [ "${3:-}" != drill-notify.url ] || setting=drill_notify_url
  [ -s "$file" ] || return 0
  url=$(sed -n 1p "$file")
  [ "$1" = yes ] || url="${url%/}/fail"
  config=$(mktemp)
  printf 'url = "%s"\n' "$url" >"$config"
  if ! answer=$(tail -n 20 "$2" | curl -fsS --max-time 10 --retry 2 -o /dev/null -K "$config" \
    --data-binary @- 2>&1 | head -n1) || [ -n "$answer" ]; then
    log "could not reach ${setting} (${answer:-no answer}): the run's own result stands"
  fi
  rm -f "$config"
}

# Stdin into the Prometheus textfile $1 (node_exporter reads *.prom): written aside, then
# renamed, so it is never read half-written.
write_metric_file() {
  install -d -m 0755 "$(dirname "$1")" && cat >"$1.partial" && chmod 0644 "$1.partial" &&
    mv "$1.partial" "$1"
}
