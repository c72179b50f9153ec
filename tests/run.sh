#!/usr/bin/env bash
# The whole suite, as `make test` and CI run it: lint, unit, then integration.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin

tests/lint.sh
"$bin/python" -m pytest tests/unit -q
if ! docker info >/dev/null 2>&1; then
  echo "make test: no Docker engine answers (docker info failed): start one with 'dockerd &' or 'systemctl start docker', then run make test again" >&2
  exit 1
fi
"$bin/python" -m pytest tests/integration -q
