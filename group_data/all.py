"""Defaults for every environment; group_data/<env>.py and host data override them."""

# --- Docker engine (tasks/docker.py) ---
# "docker-ce": Docker's apt repository (key pinned by fingerprint) with docker-ce and plugins.
# "distro": the distribution's docker.io plus a Compose v2 binary given below (offline sites).
docker_install_mode = "docker-ce"
# Compose v2 plugin binary for "distro" mode: a path on the controller or an http(s) URL.
docker_compose_plugin_src = None
docker_compose_plugin_sha256 = None
# /etc/docker/daemon.json: json-file logs rotated at this size and count; containers keep
# running while the daemon restarts (live-restore).
docker_log_max_size = "10m"
docker_log_max_file = 3
docker_live_restore = True
# Any other daemon.json keys, merged last.
docker_daemon_extra = {}
