#!/bin/sh
# The official nginx image's templates convention: each $NGINX_ENVSUBST_TEMPLATE_DIR/**/*.template
# (default /etc/nginx/templates) becomes the same path without the suffix under
# $NGINX_ENVSUBST_OUTPUT_DIR (default /etc/nginx/conf.d), with only the variables that are set in
# the environment (and match $NGINX_ENVSUBST_FILTER) substituted: nginx's own $host etc. stay.
set -e

ME=$(basename "$0")
template_dir="${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}"
suffix="${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}"
output_dir="${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}"
filter="${NGINX_ENVSUBST_FILTER:-}"

log() {
    if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then
        echo "$ME: $*"
    fi
}

[ -d "$template_dir" ] || exit 0
if [ ! -w "$output_dir" ]; then
    log "ERROR: $template_dir exists, but $output_dir is not writable"
    exit 0
fi

# "${A} ${B} ...": envsubst replaces these and leaves every other $word alone.
defined_envs=$(awk "END { for (n in ENVIRON) if (n ~ /${filter}/) printf \"\${%s} \", n }" </dev/null)

find "$template_dir" -follow -type f -name "*$suffix" -print | while read -r template; do
    relative_path="${template#"$template_dir/"}"
    output_path="$output_dir/${relative_path%"$suffix"}"
    mkdir -p "$(dirname "$output_path")"
    log "info: Running envsubst on $template to $output_path"
    envsubst "$defined_envs" <"$template" >"$output_path"
done
