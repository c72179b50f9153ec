"""The DFR platform on every host of an inventory: ``pyinfra inventories/<env>.py deploy.py``.

Settings are validated first (one line and exit 1 on bad input, nothing touched); then Docker,
the images, the configuration and the Compose project, gated on health.
"""

from tasks.docker import install_docker
from tasks.stack import check_ports_free, deploy_stack, stack_settings

settings = stack_settings()
check_ports_free(settings)
install_docker()
deploy_stack(settings)
