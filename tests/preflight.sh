#!/usr/bin/env bash
# What `make test` needs on this machine, checked before anything runs: one line per missing
# piece, saying what to do, then exit 1. Nothing is installed or changed here.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
python=${PYTHON:-python3}
missing=0

need() {  # need "what is wrong and what to do"
  echo "make test: $1" >&2
  missing=1
}

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  found=$("$python" --version 2>/dev/null) || found="no $python"
  need "Python >= 3.11 is needed (found: $found): install it, or run make PYTHON=python3.11 test"
elif [ ! -x .venv/bin/python ] && ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
  need "$python has no venv module: install python3-venv (Debian, Ubuntu) and run make test again"
fi
for tool in git curl tar ssh; do
  command -v "$tool" >/dev/null || need "$tool is not installed: install it (Debian: apt-get install ${tool/ssh/openssh-client}) and run make test again"
done
command -v testssl >/dev/null || need "testssl (package testssl.sh) is not installed (the TLS scan of a deployed stack): install it (Debian: apt-get install testssl.sh) and run make test again"
if ! command -v docker >/dev/null; then
  need "the docker CLI is not installed: install a Docker engine (Debian: apt-get install docker.io) and run make test again"
elif ! engine=$(docker info 2>&1 >/dev/null); then
  case "$engine" in
    *"permission denied"*) need "this user may not use the Docker engine: run make test as root, or join the docker group" ;;
    *) need "no Docker engine answers (docker info failed): start one with 'dockerd &' or 'systemctl start docker', then run make test again" ;;
  esac
elif [ -z "$(docker image ls -q 'dfr-test/base')" ] \
  && ! curl -s -o /dev/null --max-time 5 https://registry-1.docker.io/v2/; then
  # No cached base image and no registry to pull debian:bookworm from: it is bootstrapped.
  if ! command -v debootstrap >/dev/null; then
    need "debootstrap is not installed (no registry answers, so it builds the tests' base image): install debootstrap (Debian: apt-get install debootstrap) and run make test again"
  elif [ "$(id -u)" != 0 ]; then
    need "debootstrap builds the tests' base image and needs root: run make test as root once"
  fi
fi
exit "$missing"
