#!/usr/bin/env bash
# The suite as `make test` and CI run it: lint, unit, then integration in parallel workers.
# `tests/run.sh fast` (make test-fast) runs only the integration tests marked smoke.
# DFR_TEST_WORKERS sets the number of integration workers (see docs/testing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
selection=()
case "${1:-all}" in
  all) ;;
  fast) selection=(-m smoke) ;;
  *) echo "tests/run.sh: unknown mode '$1': give 'fast' or nothing" >&2; exit 2 ;;
esac

tests/lint.sh
"$bin/python" -m pytest tests/unit -q
"$bin/python" -m pytest tests/integration -q --durations=15 \
  -n "${DFR_TEST_WORKERS:-4}" --dist loadfile "${selection[@]}"
