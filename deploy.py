"""The DFR platform on every host of an inventory: ``pyinfra inventories/<env>.py deploy.py``."""

from tasks.docker import install_docker

install_docker()
