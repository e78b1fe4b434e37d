#!/usr/bin/env bash
# Installs whatever ccr needs that this Debian 12 machine lacks, and nothing when all is present.
#   tools/bootstrap.sh [base|bench]
# base: build and test dependencies. bench: base plus the peers the bench harness measures us against.
# As root it runs apt-get itself; otherwise it uses sudo when it can ask for nothing, and else prints the
# exact command to run and fails.
set -euo pipefail

profile=${1:-base}
base_pkgs=(
  build-essential cmake pkg-config git
  libssl-dev openssl liburing-dev libjemalloc-dev libcurl4-openssl-dev libexpat1-dev
  libfuse3-dev fuse3 libmicrohttpd-dev libsqlite3-dev libjansson-dev libyaml-dev
  libcriterion-dev clang clang-format libclang-rt-14-dev
  python3 python3-cryptography python3-azure
)
bench_pkgs=(gnuplot-nox rclone gocryptfs hyperfine time nginx-light)

pkgs=("${base_pkgs[@]}")
# Node.js and npm run Azurite for the tests. Any install will do (Debian's packages, or NodeSource's
# nodejs, which bundles npm and conflicts with Debian's npm package): ask for them only when missing.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  pkgs+=(nodejs npm)
fi
case "$profile" in
  base) ;;
  bench) pkgs+=("${bench_pkgs[@]}") ;;
  *) echo "bootstrap: unknown profile '$profile' (use base or bench)" >&2; exit 1 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "bootstrap: installing ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "bootstrap: these Debian packages are missing and I cannot install them without root:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
