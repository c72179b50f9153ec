"""Build the stack's images on the inventory's hosts (the specification's build_* targets).

pyinfra inventories/staging.py tasks/build.py                      # all three
pyinfra inventories/staging.py tasks/build.py --data images=odoo   # one (comma-separated)
pyinfra inventories/staging.py tasks/build.py --data refresh_images=true   # pull bases again
"""

from pyinfra import host

from tasks.deploy_lock import hold_deploy_lock
from tasks.docker import install_docker
from tasks.images import images_on_host, refresh_requested
from tasks.offsite_settings import is_backup_host
from tasks.stack import stack_settings

if not is_backup_host():  # the off-host repository's host runs no stack
    settings = stack_settings()
    hold_deploy_lock(settings, "tasks/build.py")
    wanted = tuple(name for name in str(host.data.get("images") or "").split(",") if name)
    install_docker()
    images_on_host(settings, only=wanted, refresh=refresh_requested())
