"""The DFR platform on every host of an inventory: ``pyinfra inventories/<env>.py deploy.py``.

Settings are validated first (one line and exit 1 on bad input, nothing touched); staging and
prod then take the environment's deploy lock on each host. Then Docker, the images, the
configuration and the Compose project, gated on health; a run that changed something is
recorded in the host's release log. The inventory's backup host, if it has one, gets the
off-host repository instead of the stack (docs/offsite-backups.md).
"""

from pyinfra import host

from tasks.backup_settings import backup_settings
from tasks.deploy_lock import hold_deploy_lock
from tasks.docker import install_docker
from tasks.offsite import offsite_client, repository_host
from tasks.offsite_settings import is_backup_host, offsite_settings, repository_host_settings
from tasks.releases import ReleasePlan, release_finished, release_started
from tasks.stack import check_ports_free, deploy_stack, stack_settings

if is_backup_host():
    env = str(host.data.get("dfr_env"))
    repository_host(repository_host_settings(host.data, env), backup_settings(host.data, env))
else:
    settings = stack_settings()
    offsite = offsite_settings(host.data, settings.env)
    hold_deploy_lock(settings, "deploy.py")
    check_ports_free(settings)
    release = ReleasePlan(kind="deploy")
    release_started(name="Open the release record", settings=settings, release=release)
    install_docker()
    deploy_stack(settings, release)
    if offsite is not None:
        offsite_client(settings, offsite)
    release_finished(name="Record the release if the run changed anything", settings=settings,
                     release=release)  # fmt: skip
