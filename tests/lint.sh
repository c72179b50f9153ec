#!/usr/bin/env bash
# Lint every Python file (ruff), shell script (shellcheck) and Dockerfile (hadolint) in git.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin

"$bin/ruff" check .
"$bin/ruff" format --check .

mapfile -t shell_files < <(git ls-files -co --exclude-standard | while read -r f; do
  case "$f" in
    *.sh) echo "$f" ;;
    .ci/*) head -n1 "$f" | grep -qE '^#!.*(ba)?sh' && echo "$f" ;;
  esac
done)
"$bin/shellcheck" "${shell_files[@]}"

mapfile -t dockerfiles < <(git ls-files -co --exclude-standard | grep -E '(^|/)Dockerfile[^/]*$')
"$bin/hadolint" --failure-threshold warning "${dockerfiles[@]}"
echo "lint: ruff, shellcheck (${#shell_files[@]} files), hadolint (${#dockerfiles[@]} files) clean"
