#!/usr/bin/env bash
# The import contracts of pyproject.toml ([tool.importlinter]), checked with import-linter.
# delegates/ and kernels/ are installed as accel.delegates and accel.kernels (setuptools package-dir), a
# mapping import-linter cannot follow in the source tree; so the package is installed, as a user gets it,
# into a temporary folder (from a copy of the working tree's files: no stale build/ output) and the
# contracts are checked there.  Usage: tools/lint_imports.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/src"
git ls-files -z --cached --others --exclude-standard | tar --null --ignore-failed-read -cf - -T - 2>/dev/null | tar -xf - -C "$tmp/src"
python -m pip install --quiet --no-deps --target "$tmp/site" "$tmp/src" >"$tmp/pip.log" 2>&1 \
  || { cat "$tmp/pip.log"; exit 1; }
cp pyproject.toml "$tmp/"
cd "$tmp"
PYTHONPATH="$tmp/site" lint-imports pyproject.toml
