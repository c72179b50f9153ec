"""Only the Docker install, as every entry runs it."""

from tasks.docker import install_docker

install_docker()
