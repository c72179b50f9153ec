#!/bin/bash
# dfr-switch-odoo: put the Odoo of the current compose.yaml (a new image or configuration) in
# place of the running one without dropping a request (blue/green, as Kamal does):
#   1. the new container starts next to the old one (compose scales odoo to 2, recreating
#      nothing) and must become healthy; if it does not, it is removed and the old one serves on;
#   2. nginx is routed to the new container by its name (route/odoo.conf, included by the site)
#      and reloaded gracefully; once its old workers stopped accepting, no new request reaches
#      the old container;
#   3. the old container stops (its stop_grace_period lets its running requests end) and is
#      removed; websocket and long-polling clients reconnect, to the new one;
#   4. the route file goes and nginx reloads: the service name again, which now names the new
#      container only.
# Prints "switched", or "unchanged" when there is nothing to switch (the running Odoo is the
# compose file's) or compose up must do it (PostgreSQL is replaced in the same deploy).
# With --fall-back (the deploy kept the running release's files in previous/ before writing
# new ones), a new Odoo that does not become healthy also puts those files back: the one that
# serves on, restarted, or the next compose up, reads what it ran on, not what failed.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck disable=SC2034 # read by dfr-common's log()
tool=dfr-switch-odoo
# shellcheck source=/dev/null
. "$here/bin/dfr-common"
fall_back=
[ "${1-}" != --fall-back ] || fall_back=1

old=$(container odoo)
if [ -z "$old" ] || [ "$(printf '%s\n' "$old" | grep -c .)" != 1 ]; then
  echo unchanged  # nothing running to switch from (or a switch in progress): compose up decides
  exit 0
fi
# Whether container $2 runs service $1 as compose.yaml now describes it.
as_described() {
  [ "$(docker inspect -f '{{index .Config.Labels "com.docker.compose.config-hash"}}' "$2")" = \
    "$(compose config --hash "$1" | cut -d' ' -f2)" ]
}
wanted_image=$(docker image inspect -f '{{.Id}}' "$(compose config --images odoo | sed -n 1p)")
if as_described odoo "$old" && [ "$(docker inspect -f '{{.Image}}' "$old")" = "$wanted_image" ]; then
  echo unchanged
  exit 0
fi
# PostgreSQL replaced in the same deploy (a rotated password, a new configuration): the new
# Odoo may need the new one, so compose up replaces both, in order.
if ! as_described postgres "$(running postgres)"; then
  echo unchanged
  exit 0
fi
nginx=$(running nginx)

# The nginx workers that accept connections (not those shutting down after a reload).
accepting_workers() {
  # shellcheck disable=SC2016 # expanded by the container's shell
  docker exec "$nginx" sh -c 'for p in /proc/[0-9]*; do
      title=$(tr "\0" " " <"$p/cmdline" 2>/dev/null) || continue
      case $title in *"shutting down"*) ;; "nginx: worker process"*) echo "${p#/proc/}" ;; esac
    done' | sort
}

# A graceful reload; done once every worker of the old configuration stopped accepting (until
# then an old worker may still take a connection to the old upstream).
reload_nginx() {
  local before now
  before=$(accepting_workers)
  docker exec "$nginx" nginx -s reload
  for _ in $(seq 100); do
    now=$(accepting_workers)
    if [ -n "$now" ] && [ -z "$(comm -12 <(printf '%s\n' "$before") <(printf '%s\n' "$now"))" ]; then
      return 0
    fi
    sleep 0.1
  done
  log "nginx's old workers still accept connections 10 s after its reload: going on"
}

log "starting the new Odoo next to the running one ($old)"
if ! compose up -d --no-deps --no-recreate --scale odoo=2 --wait \
  --wait-timeout "$DFR_RESTORE_HEALTH_TIMEOUT" odoo >/dev/null 2>&1; then
  logs=$(mktemp)
  for id in $(service_containers odoo -a); do
    [ "$id" = "$old" ] || { docker logs --tail 200 "$id" >"$logs" 2>&1; docker rm -f -v "$id" >/dev/null; }
  done
  mv "$logs" "$here/switch-failed.log"
  if [ -n "$fall_back" ]; then
    cp -a "$here/previous/compose.yaml" "$here/compose.yaml" &&
      cp -a "$here/previous/config/." "$here/config/" && cp -a "$here/previous/config/." "$here/next/"
  fi
  fail "the new Odoo exited or was not healthy within ${DFR_RESTORE_HEALTH_TIMEOUT}s; the running one serves on${fall_back:+ with the files it ran on put back}: the new one's last log lines are in $here/switch-failed.log"
fi
new=$(container odoo | grep -vx "$old" | sed -n 1p)
new_name=$(docker inspect -f '{{.Name}}' "$new")
log "the new Odoo (${new_name#/}) is healthy: routing nginx to it"
route="$here/route/odoo.conf"
# Never left behind: a route naming a container compose later replaces would keep nginx on it.
trap '[ ! -e "$route" ] || { rm -f "$route"; docker exec "$nginx" nginx -s reload; }' EXIT
# shellcheck disable=SC2016 # nginx's variable, written as it is
printf 'set $odoo_host %s;\n' "${new_name#/}" >"$route.partial" && mv "$route.partial" "$route"
reload_nginx
# Its anonymous volumes (the base image's VOLUMEs; the named odoo-data stays): by name, because
# one compose carried over from the container it replaced is mounted by name, which rm -v keeps.
anonymous=$(docker inspect -f '{{range .Mounts}}{{.Name}} {{end}}' "$old" | tr ' ' '\n' |
  grep -xE '[0-9a-f]{64}' || true)
docker stop "$old" >/dev/null
docker rm "$old" >/dev/null
for volume in $anonymous; do docker volume rm "$volume" >/dev/null || log "volume $volume stays"; done
rm -f "$route"
reload_nginx
log "switched: the old Odoo stopped and was removed"
echo switched
