"""Defaults for every environment; group_data/<env>.py and host data override them."""

# --- SSH (pyinfra's paramiko connection) ---
# AES-GCM rather than paramiko's first choice, aes128-ctr with hmac-sha2-256, whose MAC
# paramiko computes in Python for every packet: 1.5-1.6x the throughput for backups fetched
# and uploaded (docs/benchmarks.md). Every OpenSSH since 6.2 offers AES-GCM; for a host whose
# sshd does not, set ssh_paramiko_connect_kwargs = {} in its host data.
ssh_paramiko_connect_kwargs = {
    "disabled_algorithms": {
        "ciphers": [
            "aes128-ctr",
            "aes192-ctr",
            "aes256-ctr",
            "aes128-cbc",
            "aes192-cbc",
            "aes256-cbc",
            "3des-cbc",
        ]
    }
}

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

# --- The stack (deploy.py) ---
# dfr_env comes from group_data/<env>.py: the inventory file's name picks the environment.
dfr_domain = "localhost"
secrets_file = None  # default secrets/<env>.env; the DFR_* environment variables override it

# Images are built on each host from these bases; "upload" sends them from this machine
# (docker save / docker load, only when missing on the host) for air-gapped sites.
image_source = "registry"
odoo_base_image = "odoo:18.0"
postgres_base_image = "postgres:17"  # 16+ so pg_dump can compress with zstd
# postgresql.conf settings after templates/postgresql.conf.j2's own (sizes, WAL level …),
# e.g. {"shared_buffers": "4GB", "wal_level": "replica", "max_wal_senders": 10}.
postgres_options = {}
nginx_base_image = "nginx:stable"

# Odoo
odoo_db_name = "dfr"
odoo_db_user = "dfr"
odoo_modules = []  # DFR modules installed when the database is created
odoo_addons_src = "files/addons"  # the project's own addons, first on the addons path
# Addons from git (docs/addons.md), fetched on this machine with your own git credentials and
# built into the image, each repository after the own addons on the addons path, in this order:
# {"name": "oca-web", "url": "https://github.com/OCA/web.git", "ref": "18.0",
#  "addons": ["web_responsive"],  # optional: only these modules (default: all)
#  "subdir": "",                  # optional: where the modules are in the repository
#  "overrides": []}               # optional: modules it gives in place of another's copy
# Deploys use the commits of odoo_addons_lock; `make addons_update` writes it.
odoo_addons_repositories = []
odoo_addons_lock = "addons.lock"
odoo_addons_constraints = "addons-constraints.txt"  # name==version pins of the addons' Python deps
odoo_base_addons_extra = []  # modules the base image has beyond tasks/odoo18/addons.txt
# image_source = "upload": the addons' Python packages are got here as wheels for the base
# image's Python and platform (odoo:18.0: Ubuntu 24.04, CPython 3.12, glibc 2.39, x86_64).
odoo_wheels_python = "3.12"
odoo_wheels_platform = "manylinux_2_39_x86_64"
odoo_demo = False
odoo_workers = 2
odoo_max_cron_threads = 1
# Limits from Odoo's deployment guide (bytes, seconds, requests).
odoo_limit_memory_soft = 629145600
odoo_limit_memory_hard = 1677721600
odoo_limit_time_cpu = 600
odoo_limit_time_real = 1200
odoo_limit_time_real_cron = -1
odoo_limit_request = 8192
odoo_options = {}  # any other odoo.conf keys; each must be an Odoo 18 option

# Nginx / TLS: PEM files on this machine. Unset: a self-signed pair made once (not in prod).
tls_certificate = None
tls_certificate_key = None
http_port = 80
https_port = 443
publish_address = ""  # the host address 80/443 are published on; "": every interface

# --- Backups (tasks/backup.py, tasks/restore.py) ---
backup_dir = None  # on this machine; default backups/<env>/
backup_keep_on_host = True  # also keep each backup in /var/backups/dfr/<env>/ on the host
backup_keep_daily = 7  # grandfather-father-son retention of the host copies
backup_keep_weekly = 4
backup_keep_monthly = 3
backup_jobs = 2  # parallel pg_dump jobs (and sha256 processes)
# parallel pg_restore jobs: one more than the cores keeps them busy while one waits on the disk
# (2.35 GB restored on 2 cores in 10.9 s with 3 jobs, 12.6 s with 2, 11.1 s with 4)
restore_jobs = 3
# seconds Odoo gets to answer /web/health after a restore's swap, else the swap is undone
restore_health_timeout = 300
backup_schedule = None  # systemd OnCalendar of the host's daily backup; None: no timer
# Pinged by the timer's run: this URL on success, <url>/fail with the last log lines on failure
# (healthchecks.io's convention, which also notices a run that never happened). None: no ping.
backup_notify_url = None
# Pinged by every restore drill (tasks/drill.py, drill_schedule): the URL when it passed,
# <url>/fail when it failed; a check of its own, given the drill's schedule. None: only a failed
# drill pings, backup_notify_url's /fail.
drill_notify_url = None
# node_exporter's textfile collector directory: dfr_backup_<env>.prom is written there.
backup_metrics_dir = "/var/lib/node_exporter/textfile_collector"

# --- Off-host backups (docs/offsite-backups.md) ---
# The backup host: a host of the inventory in its group "backup", or the inventory host named
# here. None and no such group: backups stay on the host (and wherever you fetch them).
backup_repository = None
# On the backup host (its host data): the account owning the repositories, their directory
# (the repository of <env> is <offsite_dir>/<env>/repo), and the address and port the stack's
# hosts reach it at (default: its ssh_hostname and SSH port).
offsite_account = "dfr-offsite"
offsite_dir = "/srv/dfr-offsite"
offsite_address = None
offsite_port = None
# Retention of the off-host archives, applied by the backup host's pruning (its timer, or
# tasks/offsite_prune.py by hand), never by the stack's hosts.
offsite_keep_daily = 7
offsite_keep_weekly = 4
offsite_keep_monthly = 12
# backup_status fails when the newest off-host archive is older than this many hours.
offsite_max_age_hours = 26
# systemd OnCalendar of the backup host's own prune (dfr-offsite-prune-<env>.timer). With it the
# backup host keeps the environment's passphrase (0600, root) and so could read the backups;
# None: no timer, no passphrase kept there, prune by hand (make offsite_prune). The result goes
# to backup_metrics_dir (dfr_offsite_prune_<env>.prom) there, a failure to backup_notify_url/fail.
offsite_prune_schedule = "*-*-* 05:30:00"
# systemd OnCalendar of a restore drill of the newest off-host archive on each stack host
# (tasks/drill.py's, on a timer), e.g. "Sun *-*-* 04:00:00"; None: no timer.
drill_schedule = None
# Other environments whose off-host repositories this one's stack hosts may read (restore from,
# drill), on this inventory's backup host: staging's ["prod"] refreshes staging from
# production's off-host backups. Each one's DFR_OFFSITE_PASSPHRASE is read from its secrets
# file next to this environment's (secrets/prod.env) and kept on the hosts (0600). Their read
# key there can neither add nor delete (docs/offsite-backups.md).
offsite_reads = []
# Whose repositories the drill timer drills: None for this environment's own, or a list of it
# and/or environments of offsite_reads, e.g. ["prod"] (timer dfr-drill-<env>-from-prod).
drill_envs = None
