#!/usr/bin/env bash
# Installs the Azure Storage emulator (Azurite) that the Azure integration tests run against, into
# tests/azurite/node_modules, exactly as pinned by tests/azurite/package-lock.json.
#   tools/bootstrap-azurite.sh [--force]
# It does nothing (and returns at once) when that install is present and was made from the current lock:
# `npm ci` leaves a stamp holding the lock's sha256 inside node_modules, and a changed lock, a missing
# launcher or --force triggers a clean reinstall. On success it prints nothing; it fails with a message
# that says what to do when node or npm is missing or the install fails.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir="$root/tests/azurite"
lock="$dir/package-lock.json"
modules="$dir/node_modules"
stamp="$modules/.ccr-azurite-stamp"
launcher="$modules/.bin/azurite-blob"

force=0
case "${1:-}" in
  "") ;;
  --force) force=1 ;;
  *) echo "bootstrap-azurite: unknown argument '$1' (only --force)" >&2; exit 1 ;;
esac

if [[ ! -f "$lock" ]]; then
  echo "bootstrap-azurite: $lock is missing; the checkout is incomplete" >&2
  exit 1
fi

want=$(sha256sum "$lock" | cut -d' ' -f1)
if [[ $force -eq 0 && -x "$launcher" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi

# Parallel test runs (ctest -j) may all find the install missing: one installs, the others wait and then see
# a current stamp. The lock lives outside the tree so it never shows up in git.
if command -v flock >/dev/null 2>&1; then
  lockfile="${TMPDIR:-/tmp}/ccr-azurite-bootstrap-$(printf '%s' "$dir" | sha256sum | cut -c1-16).lock"
  exec 9>"$lockfile"
  flock 9
  if [[ $force -eq 0 && -x "$launcher" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
  fi
fi

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "bootstrap-azurite: '$tool' is not installed; Azurite needs Node.js and npm." >&2
    echo "  install them with: apt-get install -y nodejs npm   (as root, or with sudo)" >&2
    exit 1
  fi
done

# Azurite's own dependencies ask for Node 20 or newer; older ones may install but are untested here.
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [[ "$major" -lt 18 ]]; then
  echo "bootstrap-azurite: node $(node --version 2>/dev/null) is too old for Azurite (need 18 or newer, 20 preferred)" >&2
  exit 1
fi

# npm ci removes node_modules first, so the stamp is written only after a complete install: an interrupted
# run leaves no stamp and the next run starts over.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >"$log" 2>&1; then
  echo "bootstrap-azurite: 'npm ci' in $dir failed:" >&2
  grep -v 'Unknown user config' "$log" >&2 || true
  echo "  (it needs the npm registry; check 'npm config get registry' and the network)" >&2
  exit 1
fi
if [[ ! -x "$launcher" ]]; then
  echo "bootstrap-azurite: npm ci succeeded but $launcher is missing" >&2
  exit 1
fi
printf '%s\n' "$want" >"$stamp"
