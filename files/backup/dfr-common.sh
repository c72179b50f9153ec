# shellcheck shell=bash disable=SC2154 # $here and $tool are set by the sourcing script
# Shared by dfr-backup and dfr-restore (sourced): settings, logging, containers, sha256.
# The caller sets $tool (its name in log lines) and $here (the stack directory).

# shellcheck source=/dev/null
. "$here/backup.env"

log() { printf '%s %s[%s] %s\n' "$(date -u +%FT%T.%3NZ)" "$tool" "$DFR_ENV" "$*" >&2; }
fail() { log "ERROR: $*"; exit 1; }

compose() { (cd "$here" && docker compose -p "$DFR_PROJECT" "$@"); }

# The running container of a compose service, or nothing.
container() {
  docker ps -q --filter "label=com.docker.compose.project=$DFR_PROJECT" \
    --filter "label=com.docker.compose.service=$1" --filter status=running
}

# The same, or one clear error when the service is not running.
running() {
  local id
  id=$(container "$1")
  [ -n "$id" ] || fail "the $1 container of $DFR_PROJECT is not running"
  echo "$id"
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
